"""The Textual app: five screens (switched with 1-5), training in a thread worker owned by the app so it
survives screen switches, and watch mode for runs written by another process. A run on several processes (GPUs > 1)
is such a process: the app launches it detached (ddp_job) and follows it on the Train screen as watch mode does.

Run it under `App.run_test()` to train headless inside the app (the benchmark does):

    app = ResNetApp(mode="train", config=cfg, run_dir=path)
    async with app.run_test(size=(120, 40)):
        end = await app.wait_for_run_end(timeout=600)

or simply `asyncio.run(train_in_app(cfg, path))`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from textual import events, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.reactive import var
from textual.screen import Screen
from textual.widgets import Input, Select, TextArea
from textual.worker import Worker, WorkerState, get_current_worker

from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.errors import UserError
from resnet_tui.core.operations import run_dir_of
from resnet_tui.app.ddp_job import DdpJob
from resnet_tui.app.messages import SweepDone, SweepEvents, TrainingEvents, TrainingFinished
from resnet_tui.app.relay import EventRelay
from resnet_tui.app.screens.data import DataScreen
from resnet_tui.app.screens.dialogs import ConfirmQuit, ConfirmQuitLeavingRun, HelpScreen, binding_rows
from resnet_tui.app.screens.evaluate import EvaluateScreen
from resnet_tui.app.screens.model import ModelScreen
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.app.screens.run_view import POLL_SECONDS, RunViewScreen
from resnet_tui.app.screens.train import TrainScreen
from resnet_tui.app.job import STARTING, UI_ANSWER_SECONDS, TrainingJob, install_signal_handlers, restore_signal_handlers
from resnet_tui.app.state import FormState, ReportError, ResumeRun, Session, ToggleTraining
from resnet_tui.headless import say
from resnet_tui.plain_text import plain

SCREEN_NAMES = {"train": "Train", "model": "Model", "data": "Data", "evaluate": "Evaluate", "runs": "Runs"}
APP_MODES = ("idle", "train", "evaluate", "watch", "sweep")


class ResNetApp(App[Any]):
    """mode: idle (the form), train (start `config` into `run_dir` at once), evaluate (evaluate `checkpoint`),
    watch (follow the run in `run_dir`), sweep (train every run of `plan`, a sweep.SweepPlan, into its folder).
    `device_label` replaces device detection (tests, screenshots). What the screens share is `session`."""

    CSS_PATH = "app.tcss"
    TITLE = "resnet-tui"
    SUB_TITLE = "ResNet on CIFAR-10"
    SCREENS = {"train": TrainScreen, "model": ModelScreen, "data": DataScreen, "evaluate": EvaluateScreen, "runs": RunsScreen}
    MODES = {name: name for name in SCREENS}  # one mode per screen: each keeps its state while another is shown
    DEFAULT_MODE = "train"
    HORIZONTAL_BREAKPOINTS = [(0, "-too-narrow"), (80, "-normal-width"), (120, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-too-short"), (24, "-normal-height"), (40, "-tall")]
    BINDINGS = [
        # The bar at the top names the five screens with their numbers, so the footer shows them as one item.
        Binding("1", "switch_mode('train')", "Screens", key_display="1-5", tooltip="Train screen"),
        Binding("2", "switch_mode('model')", "Model screen", show=False),
        Binding("3", "switch_mode('data')", "Data screen", show=False),
        Binding("4", "switch_mode('evaluate')", "Evaluate screen", show=False),
        Binding("5", "switch_mode('runs')", "Runs screen", show=False),
        Binding("s", "toggle_training", "Start/stop"),
        Binding("question_mark", "help", "Keys"),
        Binding("q", "quit", "Quit"),
        Binding("escape", "leave_field", "Leave field",
                tooltip="leave a text field or a select, so that 1-5, s and q work again (also closes dialogs, and goes back from a run)"),
    ]
    EXTRA_KEYS = [  # keys that belong to widgets rather than to a BINDINGS list, for the help screen
        ("tab, shift+tab", "next / previous field or control"),
        ("enter", "open a select list, press a button, open a run, submit a path"),
        ("up, down", "move in lists, the tree and the runs table"),
        ("up, down, home, end", "in the log panel (Tab to it): older / newer lines, the oldest, follow the newest"),
        ("ctrl+p", "command palette: start/stop, evaluate, screens, theme"),
        ("ctrl+q", "quit (asks first while training)"),
    ]

    training: var[bool] = var(False)

    def __init__(self, mode: str = "idle", config: TrainConfig | None = None, run_dir: str | Path | None = None,
                 resume: bool = False, checkpoint: str | None = None, runs_root: str | Path = "runs",
                 device_label: str | None = None, exit_when_done: bool = False, best_by: str | None = None,
                 splits: tuple[Any, Any] | None = None, handle_signals: bool = False, plan: Any = None,
                 notify: bool = True) -> None:
        super().__init__()
        if mode not in APP_MODES:
            raise ValueError(f"mode: got {mode!r}, expected one of {', '.join(APP_MODES)}")
        self.start_mode = mode
        if mode == "sweep" and plan is None:
            raise ValueError("mode 'sweep' needs plan (a resnet_tui.core.sweep.SweepPlan)")
        self.sweep_plan = plan
        self.sweep_end: Any = None  # the sweep's SweepFinished
        if mode == "sweep" and config is None and plan.points:
            config = plan.points[0].config
        self.initial_config = config or TrainConfig()
        self.initial_run_dir = Path(run_dir) if run_dir is not None else None
        self.session = Session(FormState(self.initial_config), Path(runs_root), device_label=device_label,
                               current_run_dir=self.initial_run_dir if mode == "train" else None)
        self.resume = resume
        self.checkpoint = checkpoint
        self.best_by = best_by  # evaluate mode: with "eval_loss", `checkpoint` is a run directory to choose in
        self.exit_when_done = exit_when_done
        self.splits = splits  # train mode: data already loaded (the benchmark passes the same splits to both sides)
        self.handle_signals = handle_signals  # SIGHUP detaches a run (a dropped SSH connection), SIGTERM stops and saves
        self._previous_signals: dict[int, Any] = {}
        self.job = TrainingJob()  # the one owner of the training state
        self.ddp_job: DdpJob | None = None  # a run on several processes, in a subprocess this app follows (ddp_job)
        self._ddp_timer: Any = None
        self._ui_answered = threading.Event()  # the UI took a finished run's last message
        self.run_end: ev.RunEnd | None = None
        self.last_error = ""
        self._run_done = asyncio.Event()
        self._quit_when_stopped = False
        self.notify_when_done = notify  # ring the bell and send a desktop notification when a run or sweep ends
        self.notification_stream: Any = None  # where they go; None: the app's terminal, through its driver

    # The session's fields the app itself uses (and tests read), under their old names.

    @property
    def current_run_dir(self) -> Path | None:
        return self.session.current_run_dir

    @current_run_dir.setter
    def current_run_dir(self, path: Path | None) -> None:
        self.session.current_run_dir = path

    @property
    def runs_root(self) -> Path:
        return self.session.runs_root

    @property
    def form_config(self) -> TrainConfig:
        """The form's last valid config (the Model, Data and Evaluate screens follow it)."""
        return self.session.form.last_valid

    # ---------------------------------------------------------------- start-up

    def on_mount(self) -> None:
        if self.handle_signals:
            self._install_signal_handlers()
        if self.start_mode == "train":
            self.call_after_refresh(self.start_training, self.initial_config, self.initial_run_dir, self.resume, self.splits)
        elif self.start_mode == "evaluate":
            self.call_after_refresh(self._open_evaluate, self.checkpoint, self.best_by)
        elif self.start_mode == "sweep":
            self.call_after_refresh(self.start_sweep, self.sweep_plan)
        elif self.start_mode == "watch":
            assert self.initial_run_dir is not None, "watch mode needs run_dir"
            self.call_after_refresh(self.watch_run, self.initial_run_dir)

    def _install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            if signum == getattr(signal, "SIGHUP", None):
                self._release_terminal()
            self.job.on_signal(signum, quit_ui=lambda code: loop.call_soon_threadsafe(self.exit, None, code))

        # Process-level handlers: they run even while the event loop is stuck writing to a dead terminal.
        self._previous_signals = install_signal_handlers(on_signal)

    def _release_terminal(self) -> None:
        """The terminal is gone. Textual would spin on it (its input thread reads EOF without end, and the
        kernel's SIGCONT after the hang-up restarts it) and block on writes to it, starving the training
        thread: stop reading, send all output to /dev/null, and keep SIGCONT from restarting the driver."""
        for name in ("SIGCONT", "SIGTSTP"):
            if hasattr(signal, name):
                signal.signal(getattr(signal, name), signal.SIG_DFL)
        exit_event = getattr(self._driver, "exit_event", None)
        if exit_event is not None:
            exit_event.set()  # the driver's input threads end
        try:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.close(devnull)
        except OSError:
            pass

    def on_unmount(self) -> None:
        restore_signal_handlers(self._previous_signals)
        self._previous_signals = {}

    async def _open_evaluate(self, checkpoint: str | None, best_by: str | None = None) -> None:
        await self.switch_mode("evaluate")
        if checkpoint:
            run = run_dir_of(checkpoint)
            if run is not None:  # its epoch checkpoints become the choices
                self.current_run_dir = run
            self.evaluate_screen.open_source(checkpoint, best_by)

    async def watch_run(self, run_dir: Path) -> None:
        await self.switch_mode("runs")
        await self.push_screen(RunViewScreen(run_dir))

    @property
    def train_screen(self) -> TrainScreen:
        return self.get_screen("train")  # type: ignore[return-value]

    @property
    def evaluate_screen(self) -> EvaluateScreen:
        return self.get_screen("evaluate")  # type: ignore[return-value]

    # ---------------------------------------------------------------- training

    def on_toggle_training(self, message: ToggleTraining) -> None:
        self.action_toggle_training()

    async def on_resume_run(self, message: ResumeRun) -> None:
        from resnet_tui.core.operations import resume_config

        try:
            cfg = resume_config(message.run_dir, {"epochs": message.epochs} if message.epochs else None)
        except UserError as e:
            self.report_error(str(e), title="Cannot resume")
            return
        if self.start_training(cfg, message.run_dir, resume=True):
            await self.switch_mode("train")

    def on_report_error(self, message: ReportError) -> None:
        self.report_error(message.message, message.title)

    def action_toggle_training(self) -> None:
        if isinstance(self.screen, RunViewScreen) and not self._is_ddp_run(self.screen.run_dir):
            self.screen.explain_owner()  # a watched run belongs to the process that trains it
        elif self.ddp_job is not None:
            self.stop_training()
        elif not self.job.active:
            self.start_training()
        elif not self.stop_training() and self.job.state == STARTING:
            self.notify("The run is starting (loading data); s stops it once it trains, q quits at once.", title="Training")

    def start_training(self, config: TrainConfig | None = None, run_dir: Path | None = None, resume: bool = False,
                       splits: tuple[Any, Any] | None = None) -> bool:
        """Start a run with `config` (default: the form's) into `run_dir` (default: runs/<timestamp>): in this app's
        training thread, or, with several processes (its gpus), as a subprocess that the app follows."""
        if self.job.active or self.ddp_job is not None:
            self.notify("A run is already training; s stops it.", severity="warning")
            return False
        screen = self.train_screen
        if config is None:
            errors = screen.form.errors
            if errors:
                self.notify("\n".join(errors.values()), title="Fix the invalid fields first", severity="error")
                return False
            config = screen.form.config
            assert config is not None
        else:
            screen.form.load(config)
        from resnet_tui.core.runs import default_run_dir

        path = Path(run_dir) if run_dir is not None else default_run_dir(self.runs_root)
        processes = self._processes(config)
        if processes is None:
            return False
        if processes > 1:
            return self._start_ddp(config, path, resume, processes)
        self.current_run_dir = path
        self.run_end = None
        self.last_error = ""
        self._run_done.clear()
        screen.monitor.reset()
        self.job.begin(config.on_hangup)
        self.training = True
        self._train(config, path, resume, splits)
        return True

    def stop_training(self, force: bool = False) -> bool:
        """Stop after the current batch (a key stops only a run that trains; force: a quit, also one that is starting)."""
        if self.ddp_job is not None:
            return self._stop_ddp()
        if self.job.request_stop(force):
            self.notify("Stopping after this batch; a resumable state is being saved.", title="Training")
            return True
        return False

    def _should_stop(self, worker: Worker[Any]) -> bool:
        # The app's shutdown cancels its workers; a detached run (the terminal is gone) goes on regardless.
        return self.job.should_stop() or (worker.is_cancelled and not self.job.detached)

    def _post_unless_detached(self, message: Any) -> None:
        if not self.job.detached:  # with no terminal nobody sees it: do not pile messages up for hours
            self.post_message(message)

    @work(thread=True, exit_on_error=False, name="training", group="training")
    def _train(self, config: TrainConfig, run_dir: Path, resume: bool, splits: tuple[Any, Any] | None = None) -> ev.RunEnd | None:
        # This thread only trains: events go to a buffer that is posted about 4 times a second.
        worker = get_current_worker()
        relay = EventRelay(lambda events: self._post_unless_detached(TrainingEvents(events)))

        def emit(e: ev.Event) -> None:
            if isinstance(e, ev.TrainStart):
                self.job.started()
            relay(e)

        end: ev.RunEnd | None = None
        error = ""
        try:
            from resnet_tui.core.train import Trainer

            end = Trainer(config, run_dir, emit, should_stop=lambda: self._should_stop(worker), resume=resume, splits=splits).run_training()
        except UserError as e:
            error = str(e)
        except Exception as e:  # out of memory outside the loop, unreadable files, bugs: report them, keep the app
            error = f"training failed: {type(e).__name__}: {e}"
        finally:
            relay.flush()
            self._end_of_run(end.status if end is not None else None, TrainingFinished(end, error))
        return end

    def _end_of_run(self, status: str | None, finished: Any) -> None:
        """In the training thread, once its run is over: tell the UI; end the process if a signal asked for it,
        or if the UI does not answer (its terminal is gone): a process never outlives its run."""
        if self.job.run_ended(status) is not None:
            self.post_message(finished)
            return
        self._ui_answered.clear()
        self.post_message(finished)
        if not self._ui_answered.wait(UI_ANSWER_SECONDS):
            self.job.ui_gone(status)

    def on_training_events(self, message: TrainingEvents) -> None:
        self.train_screen.apply_events(message.events)
        for e in message.events:
            if isinstance(e, ev.Notice):
                self.notify(e.text, title="Training", severity="warning" if e.level != "error" else "error")
            elif isinstance(e, ev.RunEnd):
                self._announce_end(e)

    def _announce_end(self, end: ev.RunEnd) -> None:
        if end.status == "finished":
            acc = self.train_screen.eval_result
            extra = f"; accuracy {acc.accuracy:.2%}" if acc is not None else ""  # type: ignore[attr-defined]
            self.notify(f"{end.images_per_sec:,.0f} images/s{extra}", title="Training finished")
        elif end.status == "interrupted":
            self.notify(end.message or "stopped", title="Training interrupted", severity="warning")
        else:  # diverged, failed (out of memory)
            self.report_error(end.message or end.status, title=f"Training {end.status}")

    def on_training_finished(self, message: TrainingFinished) -> None:
        self.run_end = message.end
        from resnet_tui.notify import run_end_text

        status, why = (message.end.status, message.end.message) if message.end is not None else ("failed", message.error)
        acc = self.train_screen.eval_result
        self._notify_terminal(run_end_text(str(self.current_run_dir), status, why, acc.accuracy if acc is not None else None))
        self._worker_done(message.error, "Training could not run", message.end)

    def _notify_terminal(self, text: str | None) -> None:
        """The bell and a desktop notification through the terminal (resnet_tui.notify), when on and there is news."""
        from resnet_tui.notify import DriverOutput, notify_terminal

        stream = self.notification_stream
        if stream is None and not self.is_headless and self._driver is not None:
            stream = DriverOutput(self._driver)
        if self.notify_when_done and text is not None and stream is not None:
            notify_terminal(stream, text)

    def _worker_done(self, error: str | None, title: str, end: Any) -> None:
        """A training or sweep worker has ended: report its error, wake waiters, quit if that was asked for."""
        self._ui_answered.set()
        self.job.ended()
        self.training = False
        if error:
            self.report_error(error, title=title)
        self._run_done.set()
        if self.job.final_code is not None:  # a signal ended or detached the run: the process ends with it
            self.exit(return_code=self.job.final_code)
        elif self._quit_when_stopped:
            self.exit()
        elif self.exit_when_done:
            self.exit(end)

    async def wait_for_run_end(self, timeout: float | None = None) -> ev.RunEnd | None:
        """Wait until the current training thread has finished; its RunEnd (None if it raised)."""
        await asyncio.wait_for(self._run_done.wait(), timeout)
        return self.run_end

    # ---------------------------------------------------------------- a run on several processes (ddp_job)

    def _processes(self, config: TrainConfig) -> int | None:
        """The processes `config` trains with here (1: in this app's thread), or None after reporting why it cannot
        (gpus "all" with no GPU, a batch smaller than the processes, ...), as a run that cannot start is reported."""
        from resnet_tui.core.operations import run_processes

        try:
            return run_processes(config)
        except UserError as e:
            self.report_error(str(e), title="Training could not run")
            return None

    def _start_ddp(self, config: TrainConfig, run_dir: Path, resume: bool, processes: int) -> bool:
        """Launch the run as `resnet-tui --no-ui train` in a subprocess of its own (it outlives the app), and follow
        its metrics.jsonl on the Train screen as watch mode follows a run."""
        try:
            job = DdpJob.start(config, run_dir, processes, resume)
        except OSError as e:
            self.report_error(f"cannot start the {processes}-process run ({e.strerror or e})", title="Training could not run")
            return False
        self.ddp_job = job
        self.current_run_dir = run_dir
        self.run_end = None
        self.last_error = ""
        self._run_done.clear()
        screen = self.train_screen
        screen.monitor.reset()
        screen.write_log(f"[LOG] training {run_dir} as {processes} processes (torch.distributed), launcher pid "
                         f"{job.process.pid}: s stops them after the same batch; quitting this app leaves them training")
        screen.show_job(f"{processes} processes (torch.distributed), launcher pid {job.process.pid}: "
                        f"following {run_dir}; s stops it, q leaves it training")
        self.training = True
        self._ddp_timer = self.set_interval(POLL_SECONDS, self._follow_ddp)
        return True

    def _is_ddp_run(self, run_dir: Path) -> bool:
        return self.ddp_job is not None and Path(run_dir).resolve() == self.ddp_job.run_dir.resolve()

    def _follow_ddp(self) -> None:
        """Show what the run has written since the last look; once its launcher has ended, end it here."""
        job = self.ddp_job
        if job is None:
            return
        code = job.exit_code()  # before reading: every record written before the exit is read below
        if job.rank0_pid is None:
            self._show_rank0(job)
        update = job.follower.read_new()
        if update.restart:  # the file was replaced: show it again from its start
            self.train_screen.monitor.reset()
        if update.events:
            self.on_training_events(TrainingEvents(update.events))
        if code is not None:
            self._ddp_ended(job, code)

    def _ddp_ended(self, job: DdpJob, code: int) -> None:
        if self._ddp_timer is not None:
            self._ddp_timer.stop()
            self._ddp_timer = None
        self.ddp_job = None
        self._system_panel_follows(None)
        self.train_screen.show_job("")
        end = job.follower.records.end
        error = "" if end is not None else job.failure(code)
        if end is not None and end.status in ("finished", "interrupted"):
            job.clean_up()  # else its output stays, for the error that names it
        self.on_training_finished(TrainingFinished(end, error))

    def _show_rank0(self, job: DdpJob) -> None:
        """The machine panel shows rank 0's process (the one that holds the run's lock) once it trains here."""
        from resnet_tui.core.lock import holder

        who = holder(job.run_dir)
        if who is not None and who.here and who.pid is not None:
            job.rank0_pid = who.pid
            self._system_panel_follows(who.pid)

    def _system_panel_follows(self, pid: int | None) -> None:
        from resnet_tui.app.widgets.system_panel import SystemPanel

        for panel in self.train_screen.query(SystemPanel):
            follow = getattr(panel.monitor.sampler, "follow", None)  # a test's fixed sampler has none
            if follow is not None:
                follow(pid)

    def _stop_ddp(self) -> bool:
        job = self.ddp_job
        assert job is not None
        if job.stop_requested:  # a second SIGTERM would abort the run without saving
            self.notify("Stopping: the processes finish their batch and save.", title="Training")
            return False
        try:
            who = job.stop()
        except UserError:
            self.notify(f"The {job.processes} processes are starting (loading data); s stops them once they train.",
                        title="Training")
            return False
        self.notify(f"Asked {who.describe()} (rank 0) to stop; every process stops after the same batch and saves.",
                    title="Training", markup=False)
        return True

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Errors are caught inside the workers; this catches what slips through (a bug), so it is seen.
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.report_error(f"{type(event.worker.error).__name__}: {event.worker.error}", title=f"{event.worker.name} failed")

    def report_error(self, message: str, title: str = "Error") -> None:
        """A notification plus a line in the training log; the app stays usable."""
        self.last_error = message
        self.notify(message, title=title, severity="error", timeout=10, markup=False)  # text from errors and files
        try:
            self.train_screen.write_log(f"[ERROR] {title}: {message}")
        except Exception:
            pass  # before the Train screen is composed

    # ---------------------------------------------------------------- sweeps

    async def start_sweep(self, plan: Any) -> None:
        """Train every run of `plan` in a thread worker; the Sweep screen (on screen 5) shows them."""
        from resnet_tui.app.screens.sweep import SweepScreen

        if self.job.active or self.ddp_job is not None:
            self.notify("A run is already training; s stops it.", severity="warning")
            return
        await self.switch_mode("runs")
        self.sweep_screen = SweepScreen(plan)
        await self.push_screen(self.sweep_screen)
        self.sweep_end = None
        self.last_error = ""
        self._run_done.clear()
        self.job.begin(plan.points[0].config.on_hangup if plan.points else "continue")
        self.job.started()
        self.training = True
        self._sweep(plan)

    @work(thread=True, exit_on_error=False, name="sweep", group="training")
    def _sweep(self, plan: Any) -> Any:
        from resnet_tui.core import sweep as sw

        worker = get_current_worker()
        # Per-batch events wait in the buffer (posted about 4 times a second); the rest are posted at once.
        relay = EventRelay(lambda events: self._post_unless_detached(SweepEvents(events)),
                           frequent=lambda e: isinstance(e, sw.RunEvent) and isinstance(e.event, ev.BatchEnd))
        end = None
        error = ""
        try:
            end = sw.run_sweep(plan, relay, should_stop=lambda: self._should_stop(worker))
        except UserError as e:
            error = str(e)
        except Exception as e:  # a bug, or files that cannot be written: report it, keep the app
            error = f"sweep failed: {type(e).__name__}: {e}"
        finally:
            relay.flush()
            self._end_of_run(end.status if end is not None else None, SweepDone(end, error))
        return end

    def on_sweep_events(self, message: SweepEvents) -> None:
        from resnet_tui.core import sweep as sw

        self.sweep_screen.apply(message.events)
        for e in message.events:
            if isinstance(e, sw.RunEvent) and isinstance(e.event, ev.Notice) and e.event.level != "info":
                self.notify(e.event.text, title="Sweep", severity="warning" if e.event.level != "error" else "error")
            elif isinstance(e, sw.SweepFinished):
                self.notify(f"{sum(r.status == 'finished' for r in e.results)}/{len(e.results)} runs finished",
                            title=f"Sweep {e.status}", severity="information" if e.status == "finished" else "warning")

    def on_sweep_done(self, message: SweepDone) -> None:
        self.sweep_end = message.end
        end: Any = message.end
        if end is not None and end.status == "finished":
            done = sum(r.status == "finished" for r in end.results)
            self._notify_terminal(f"sweep {self.sweep_plan.out} finished: {done}/{len(end.results)} runs finished")
        self._worker_done(message.error, "Sweep could not run", message.end)

    # ---------------------------------------------------------------- keys, quitting, commands

    async def on_event(self, event: events.Event) -> None:
        # A key comes back here, after the focused widget, to be offered to the bindings of the focused widget's
        # ancestors, its screen and the app. Characters typed into a text field or a select are the field's: none of
        # them starts training (s), evaluates (e) or switches screens (1-5). Space still opens a select; keys that are
        # no characters (enter, arrows, escape, tab), priority bindings (ctrl+q, ctrl+p) and clicks on the footer
        # (keys with no character) work as everywhere.
        if isinstance(event, events.Key) and event.is_forwarded and event.is_printable and event.key != "space" \
                and _in_field(self.focused):
            return
        await super().on_event(event)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "leave_field":  # only offered (and shown in the footer) while a text field or a select has the keys
            return _in_field(self.screen.focused)
        return True

    def action_leave_field(self) -> None:
        if self.screen.focused is not None:
            self.screen.set_focus(None)

    async def action_quit(self) -> None:
        if self.ddp_job is not None:
            self.push_screen(ConfirmQuitLeavingRun(f"A {self.ddp_job.processes}-process run is training.",
                                                   plain(f"Quit now? The run is not this app's process: {self.ddp_job.goes_on_text()}.")),
                             callback=lambda yes: self.exit() if yes else None)
        elif self.training and self.start_mode == "sweep" and self.sweep_end is None:
            self.push_screen(ConfirmQuit("A sweep is running.", "Quit now? The current run stops after its batch and saves a resumable state;\n"
                                         "finished runs are kept, and the same sweep command continues the rest."),
                             callback=self._quit_confirmed)
        elif self.training:
            self.push_screen(ConfirmQuit(), callback=self._quit_confirmed)
        else:
            self.exit()

    def _quit_confirmed(self, yes: bool | None) -> None:
        if yes:
            self._quit_when_stopped = True
            if not self.stop_training(force=True) and not self.job.active:
                self.exit()

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            self.pop_screen()
            return
        self.push_screen(HelpScreen(self.help_sections()))

    def help_sections(self) -> list[tuple[str, list[tuple[str, str]]]]:
        sections = [("Everywhere", binding_rows(self.BINDINGS) + self.EXTRA_KEYS)]
        from resnet_tui.app.screens.compare import CompareScreen
        from resnet_tui.app.screens.eval_diff import EvalDiffScreen
        from resnet_tui.app.screens.lens import LensScreen
        from resnet_tui.app.screens.sweep import SweepScreen

        for name, cls in (("Train", TrainScreen), ("Data", DataScreen), ("Evaluate", EvaluateScreen), ("Runs", RunsScreen), ("A run", RunViewScreen),
                          ("Comparing runs", CompareScreen), ("Diff of two evaluations", EvalDiffScreen), ("Lens", LensScreen), ("A sweep", SweepScreen),
                          ("Model", ModelScreen)):
            rows = binding_rows(cls.BINDINGS)
            if rows:
                sections.append((name, rows))
        return sections

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if self.training:
            yield SystemCommand("Stop training", "Stop after this batch and save a resumable state", self.stop_training)
        else:
            yield SystemCommand("Start training", "Train with the form's hyperparameters", self.action_toggle_training)
        yield SystemCommand("Evaluate checkpoint", "Evaluate the checkpoint chosen on the Evaluate screen",
                            self._command_evaluate)
        yield SystemCommand("Evaluate the lab's published checkpoint", "Download and evaluate the 200-epoch checkpoint",
                            self._command_evaluate_pretrained)
        for i, (mode, title) in enumerate(SCREEN_NAMES.items(), start=1):
            yield SystemCommand(f"Screen: {title}", f"Switch to the {title} screen (key {i})",
                                lambda mode=mode: self.switch_mode(mode))
        yield SystemCommand("Keys", "Show every key", self.action_help)
        yield from super().get_system_commands(screen)

    async def _command_evaluate(self) -> None:
        await self.switch_mode("evaluate")
        self.evaluate_screen.action_evaluate()

    async def _command_evaluate_pretrained(self) -> None:
        from resnet_tui.core.checkpoint import PRETRAINED_URL

        await self.switch_mode("evaluate")
        self.evaluate_screen.action_evaluate(PRETRAINED_URL)


def _in_field(widget: Any) -> bool:
    """Whether `widget` is a text field or part of a select (the select itself, or its open list)."""
    return widget is not None and any(isinstance(w, (Input, TextArea, Select)) for w in (widget, *widget.ancestors))


def run_app(mode: str = "idle", **kwargs: Any) -> Any:
    """The CLI's entry point: `run_app(mode="idle"|"train"|"evaluate"|"watch"|"sweep", ...)`; see ResNetApp."""
    if mode not in APP_MODES:
        raise UserError(f"the app has no {mode} view; run it headless: resnet-tui --no-ui {mode} ...")
    app = ResNetApp(mode=mode, handle_signals=True, **kwargs)
    app.run()
    if app.ddp_job is not None:  # detached: it trains on without the app
        say(app.ddp_job.goes_on_text())
    end = app.run_end
    if end is not None and end.status == "interrupted" and end.message:
        say(end.message)  # the way back, on the terminal the app has just given back
    return app.return_code or 0


async def settled(pilot: Any, quiet_seconds: float = 0.3, timeout: float = 10.0) -> None:
    """Wait until the app's thread has used no CPU for `quiet_seconds` (its start-up is drawn), or `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = time.thread_time()
        await pilot.pause(quiet_seconds)
        if time.thread_time() - before < 0.02 * quiet_seconds:
            return


async def train_in_app(config: TrainConfig, run_dir: str | Path, size: tuple[int, int] = (120, 40),
                       timeout: float | None = None, **kwargs: Any) -> ev.RunEnd | None:
    """Train inside the app, headless, as a user does: the app opens on the Train screen, and once it has drawn
    itself the run starts, as `s` starts it (for the throughput benchmark). Returns the RunEnd. Started at mount
    with `splits` already loaded, the loop's first second would share the CPU with the app's start-up (compose,
    layout and first draw: about 0.6 s of CPU here), which a real start spends loading the data."""
    splits = kwargs.pop("splits", None)
    app = ResNetApp(mode="idle", config=config, **kwargs)
    async with app.run_test(size=size) as pilot:
        await settled(pilot)
        if not app.start_training(config, Path(run_dir), splits=splits):
            return None
        return await app.wait_for_run_end(timeout)

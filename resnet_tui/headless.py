"""The headless front end: prints training events for pipes (the lab's log lines) or terminals (a rich
progress bar), and never lets a dead terminal or a closed pipe stop training.

The same lines always go to RUN/train.log too (the trainer writes it), so output that could not be
printed is not lost.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import IO, Any, Callable

from resnet_tui.core import events as ev
from resnet_tui.core.progress import RunProgress
from resnet_tui.core.lablog import fmt_duration, lab_lines, lab_time
from resnet_tui.core.runs import RunDir

__all__ = ["HeadlessPrinter", "SafeStream", "SignalStop", "fmt_duration", "lab_time", "say"]


class SafeStream:
    """A text stream whose failed writes (a closed pipe, a hung-up terminal: EPIPE, EIO, ...) end this stream's
    output and never the caller. After the first failure everything written is dropped, and the file
    descriptor is pointed at /dev/null so the interpreter's own flush at exit cannot fail either."""

    def __init__(self, stream: IO[str], on_lost: Callable[[str], None] | None = None) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self.lost = ""  # why output stopped ("" while it works)

    def write(self, text: str) -> int:
        if not self.lost:
            try:
                self._stream.write(text)
            except (OSError, ValueError) as e:  # ValueError: the stream was closed
                self.lose(e)
        return len(text)

    def flush(self) -> None:
        if not self.lost:
            try:
                self._stream.flush()
            except (OSError, ValueError) as e:
                self.lose(e)

    def isatty(self) -> bool:
        try:
            return not self.lost and self._stream.isatty()
        except (OSError, ValueError):
            return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"

    def lose(self, why: BaseException | str) -> None:
        if self.lost:
            return
        self.lost = why if isinstance(why, str) else (os.strerror(why.errno) if getattr(why, "errno", None) else str(why) or type(why).__name__)
        try:
            fd = self._stream.fileno()
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
        except (OSError, ValueError, AttributeError):
            pass
        if self._on_lost is not None:
            self._on_lost(self.lost)


_stderr = SafeStream(sys.stderr)


def say(text: str) -> None:
    """A line on stderr, dropped if stderr is gone (the terminal hung up)."""
    _stderr.write(text + "\n")
    _stderr.flush()


class HeadlessPrinter:
    """Consumes training events. `live` (stdout is a terminal) shows a progress bar instead of a line per batch.
    Output that fails (EPIPE, EIO) stops, with one notice on stderr; the run goes on. `notify`: when the run finishes,
    fails or diverges, ring the bell and send a desktop notification (resnet_tui.notify), if the output is a terminal."""

    def __init__(self, out: IO[str] | None = None, live: bool | None = None, notify: bool = False):
        self.out = SafeStream(out or sys.stdout, on_lost=self._lost)
        self.notify = notify
        self.last_eval: ev.EvalResult | None = None
        self.live = self.out.isatty() if live is None else live
        self.progress: Any = None
        self.task: Any = None
        self.start: ev.TrainStart | None = None
        self.total_batches = 0
        self.done_batches = 0
        self.system: ev.SystemSample | None = None  # the machine's last sample, shown on each epoch's line
        self.rates = RunProgress()  # the rate of the last few seconds for the progress bar (not the run's average)

    def _lost(self, why: str) -> None:
        log = RunDir(self.start.run_dir).log_path if self.start is not None else "the run's train.log"
        say(f"[NOTICE] output stopped ({why}); training goes on to its end, and its log is in {log}")

    def detach(self, why: str = "the terminal hung up") -> None:
        """The terminal is gone: print nothing more (writes to it would fail or block)."""
        self.out.lose(why)
        _stderr.lose(why)

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def __call__(self, e: ev.Event) -> None:
        if self.live:  # only the progress bar shows the recent rate (the app's log printer is not live: no work twice)
            self.rates.apply(e)
        if isinstance(e, ev.TrainStart):
            self.start = e
            self.total_batches = int(e.config["epochs"]) * e.batches_per_epoch
            self.done_batches = (e.start_epoch - 1) * e.batches_per_epoch + (e.start_batch - 1)
        elif isinstance(e, ev.BatchEnd):
            self.done_batches += 1
            if self.progress is not None:
                self.progress.update(self.task, completed=self.done_batches, loss=e.loss, epoch=e.epoch,
                                     ips=self.rates.recent_images_per_sec)
                return
        elif isinstance(e, ev.EvalEnd):
            self.last_eval = e.result
        elif isinstance(e, ev.SystemSample):
            self.system = e
        elif isinstance(e, ev.RunEnd):
            self._stop_progress()
        for text in lab_lines(e, int(self.start.config["epochs"]) if self.start is not None else None, self.system):
            self.line(text)
        if isinstance(e, ev.TrainStart) and self.live and not self.out.lost:
            self._start_progress()
        if isinstance(e, ev.RunEnd) and self.notify:
            self._notify_end(e)

    def _notify_end(self, end: ev.RunEnd) -> None:
        from resnet_tui.notify import notify_terminal, run_end_text

        accuracy = self.last_eval.accuracy if self.last_eval is not None else None
        text = run_end_text(self.start.run_dir if self.start is not None else "", end.status, end.message, accuracy)
        if text is not None:
            notify_terminal(self.out, text)  # type: ignore[arg-type]

    def _start_progress(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[ips]:,.0f} img/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.out),  # type: ignore[arg-type]
            transient=False,
        )
        self.progress.start()
        assert self.start is not None
        self.task = self.progress.add_task("train", total=self.total_batches, completed=self.done_batches,
                                           loss=float("nan"), epoch=self.start.start_epoch, ips=0.0)

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        self._stop_progress()


class SignalStop:
    """How a headless process answers signals while it trains (a context manager).

    SIGINT and SIGTERM ask the run to stop after the current batch and save a resumable state; a second
    one aborts at once. SIGHUP (the terminal or the SSH connection went away) does the same with
    on_hangup="stop"; with "continue" (the default) the run detaches instead, like nohup: output stops
    and training goes on to its end. `stop_requested()` is the trainer's should_stop."""

    def __init__(self, on_hangup: str = "continue", what: str = "the run", on_detach: Callable[[], None] | None = None,
                 quiet: bool = False):
        self.on_hangup = on_hangup
        self.quiet = quiet  # a rank > 0 of a distributed run: rank 0 says it
        self.what = what
        self.on_detach = on_detach
        self.received: list[int] = []
        self.detached = False
        self._previous: dict[int, Any] = {}

    def stop_requested(self) -> bool:
        return bool(self.received)

    @property
    def exit_code(self) -> int | None:
        return 128 + self.received[0] if self.received else None

    def _handle(self, signum: int, frame: Any) -> None:
        if signum == getattr(signal, "SIGHUP", None) and self.on_hangup == "continue":
            if not self.detached:
                self.detached = True
                if self.on_detach is not None:
                    self.on_detach()
            return
        if self.received:  # a second signal: stop now, without saving
            signal.signal(signum, signal.SIG_DFL)
            raise KeyboardInterrupt
        self.received.append(signum)
        if not self.quiet:
            say(f"\n[LOG] {signal.Signals(signum).name} received: stopping {self.what} after this batch and saving (again to abort)")

    def __enter__(self) -> "SignalStop":
        handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
        self._previous = {s: signal.signal(s, self._handle) for s in handled}
        return self

    def __exit__(self, *exc: Any) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)


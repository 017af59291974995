"""A run read from its metrics.jsonl: curves, progress, log and evaluation. While the run has no "end"
record it is followed: new complete lines are read every half second (watch mode). Under the curves, the
machine the app runs on, live: its GPUs and host, and the trainer's process when it trains here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane

from resnet_tui.core import events as ev
from resnet_tui.core.lock import holder
from resnet_tui.core.system import SystemSampler
from resnet_tui.core.records import METRICS_NAME
from resnet_tui.app.metrics_follow import MetricsFollower
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.widgets.confusion import EvalReport
from resnet_tui.app.widgets.loss_chart import CHART_BINDINGS
from resnet_tui.app.widgets.run_monitor import RunMonitor
from resnet_tui.app.widgets.system_panel import SystemPanel
from resnet_tui.plain_text import printable

POLL_SECONDS = 0.5


class RunViewScreen(AppScreen):
    NAV = "runs"
    DEFAULT_CSS = """
    #run-system { border-top: solid $primary 40%; border-title-color: $text-muted; }
    """
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to runs"),
                Binding("l", "lens", "Lens", tooltip="the residual lens of this run, followed while it trains"),
                *CHART_BINDINGS]

    def __init__(self, run_dir: str | Path) -> None:
        super().__init__()
        self.run_dir = Path(run_dir)
        self.follower = MetricsFollower(self.run_dir / METRICS_NAME, self.run_dir)
        self.ended: ev.RunEnd | None = None
        self.eval_result: Any = None
        self.records_read = 0
        self._timer: Any = None
        self._started_utc: datetime | None = None  # from the last "start" record
        self._train_seconds = 0.0  # of the last record that had them

    def compose_body(self) -> ComposeResult:
        yield Static("", id="run-title")
        with TabbedContent(initial="run-curves", id="run-tabs"):
            with TabPane("Curves and log", id="run-curves"):
                yield RunMonitor(idle_text="Waiting for the run to start…", event_time=self._event_time, id="watch-monitor")
                yield self._system_panel()
            with TabPane("Evaluation", id="run-evaluation"):
                with VerticalScroll():
                    yield Static("No evaluation yet: it is written when training finishes.", id="run-eval-none")
                    yield EvalReport(id="run-eval-report")

    def on_mount(self) -> None:
        self.sub_title = f"run {printable(self.run_dir.name)}"
        self.poll()
        if self.ended is None:
            self._timer = self.set_interval(POLL_SECONDS, self.poll)
        self._render_title()

    def _system_panel(self) -> SystemPanel:
        """This machine; its process line is the trainer's when the run trains here, else this app's."""
        who = holder(self.run_dir)
        if who is not None and who.here and who.pid is not None:
            panel = SystemPanel(SystemSampler(pid=who.pid), id="run-system")
            panel.border_title = f"this machine · trainer pid {who.pid}"
        else:
            panel = SystemPanel(id="run-system")
            panel.border_title = "this machine · this app"
        return panel

    def action_lens(self) -> None:
        from resnet_tui.app.screens.lens import LensScreen

        self.app.push_screen(LensScreen([(self.run_dir, self.run_dir.name)]))

    def action_chart(self, toggle: str) -> None:
        self.monitor.chart.toggle(toggle)

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    def poll(self) -> None:
        try:
            self._poll()
        except Exception as e:  # a record this version cannot show must not take the app down
            if self._timer is not None:
                self._timer.stop()
                self._timer = None
            self.app.notify(f"stopped following {self.run_dir}: {type(e).__name__}: {e}", severity="error")

    def _poll(self) -> None:
        update = self.follower.read_new()
        if update.restart:  # a resumed run superseded records shown already (or the file was replaced): show it again
            self._restart()
        events = update.events
        if not events:
            if self.ended is None and self.records_read:
                self._render_title()  # its trainer may have died: the lock says so
            return
        self.records_read += len(events)
        for e in events:
            if isinstance(e, ev.TrainStart):
                self._started_utc = _utc(e.time_utc)
        self.monitor.apply(events)
        for e in events:
            if isinstance(e, ev.EvalEnd):
                self.eval_result = e.result
                self.query_one("#run-eval-none").display = False
                self.query_one(EvalReport).show(e.result)
            elif isinstance(e, ev.TrainStart):
                self.ended = None  # a resumed run starts again
            elif isinstance(e, ev.RunEnd):
                self.ended = e
        if self.ended is not None and self._timer is not None:
            self._timer.stop()  # the writer is done: nothing more will come
            self._timer = None
        self._render_title()

    def explain_owner(self) -> None:
        """What `s` says here: this run is not the app's to start or stop."""
        who = holder(self.run_dir)
        if who is not None:
            self.notify(f"This run belongs to {who.describe()}. Stop it with: resnet-tui stop {self.run_dir} "
                        f"(or x on the Runs screen).", title="Not this app's run", markup=False)
        else:
            self.notify("No process trains this run. To continue it: R on the Runs screen, or "
                        f"resnet-tui --no-ui train --resume {self.run_dir}", title="Not training", markup=False)

    def _restart(self) -> None:
        self.monitor.reset()
        self.ended, self.eval_result, self.records_read, self._started_utc = None, None, 0, None
        self.query_one("#run-eval-none").display = True
        if self._timer is None:
            self._timer = self.set_interval(POLL_SECONDS, self.poll)

    def _event_time(self, e: ev.Event) -> str | None:
        """When the event happened, near enough for the log: the start time plus the training seconds
        (data loading and evaluation are not counted in them). None before a start record is seen."""
        if isinstance(e, ev.TrainStart):
            self._train_seconds = 0.0
        elif isinstance(e, ev.BatchEnd):
            self._train_seconds = e.time
        elif isinstance(e, ev.RunEnd):
            self._train_seconds = max(self._train_seconds, e.train_seconds)
        if self._started_utc is None:
            return None
        return (self._started_utc + timedelta(seconds=self._train_seconds)).strftime("%Y%m%d-%H:%M:%S")

    def _render_title(self) -> None:
        t = Text()
        t.append("Run ", style="bold")
        t.append(printable(str(self.run_dir)))
        t.append("  ")
        if self.ended is not None:
            style = {"finished": "bold green", "interrupted": "bold yellow"}.get(self.ended.status, "bold red")
            t.append(printable(self.ended.status), style=style)
        elif self.records_read:
            who = holder(self.run_dir)
            if who is not None:
                t.append("● running: following metrics.jsonl", style="bold cyan")
                t.append(f" ({printable(who.describe())})", style="dim")
            else:  # no end record and nobody holds its lock: the trainer died (killed, out of memory, power loss)
                t.append("crashed: no process trains it; R on the Runs screen resumes it", style="bold red")
        else:
            t.append("waiting for metrics.jsonl", style="dim")
        t.append("   Esc: back", style="dim")
        self.query_one("#run-title", Static).update(t)


def _utc(time_utc: str) -> datetime | None:
    try:
        return datetime.strptime(time_utc, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None

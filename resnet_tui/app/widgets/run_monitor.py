"""The live view of one training run: device, run dir and the settings that differ from the lab's, progress
(at the recent speed), optionally the machine (SystemPanel), the loss chart and the lab-style log.

Fed with lists of engine events (from the training thread's relay, or read back from metrics.jsonl).
Folding events in is cheap and immediate; the widgets are redrawn at most every UI_SECONDS (at once
for a start, an epoch's end or the run's end), so the UI's share of the CPU (and of the GIL, which a
GPU run's Python needs) stays small however fast the batches come.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Callable, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ProgressBar, Static

from resnet_tui.core import events as ev
from resnet_tui.core.config_checks import differences_from_lab
from resnet_tui.headless import HeadlessPrinter, fmt_duration
from resnet_tui.core.progress import RunProgress
from resnet_tui.app.widgets.log_tail import LogTail
from resnet_tui.app.widgets.loss_chart import LossChart
from resnet_tui.plain_text import printable

LOG_LINES = 1000
LOG_STAMP = re.compile(r"^\[LOG \d{8}-\d\d:\d\d:\d\d\]")
UI_SECONDS = 0.5


class _LineSink:
    """A file-like object collecting what HeadlessPrinter prints, so the log shows exactly the headless lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        parts = (self._partial + text).split("\n")
        self._partial = parts.pop()
        self.lines.extend(parts)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def setting_text(value: Any) -> str:
    """A config value as the header names it: on/off, 2,2,2, 0.0005."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return printable(str(value))


def settings_line(config: dict[str, Any]) -> Text:
    """`Settings vs lab: epochs 5 · batch_size 64 · lr 0.05`: each learning setting that is not the lab preset's
    (or `the lab preset`)."""
    line = Text("Settings ", style="bold")
    changed = differences_from_lab(config)
    if not changed:
        line.append("the lab preset")
        return line
    line.append("vs lab: ", style="dim")
    line.append(" · ".join(f"{name} {setting_text(value)}" for name, value, _ in changed))
    return line


class RunMonitor(Vertical):
    DEFAULT_CSS = """
    RunMonitor { height: 1fr; }
    RunMonitor > #run-header, RunMonitor > #progress-text, RunMonitor > #epoch-losses { height: auto; }
    RunMonitor > ProgressBar { height: 1; }
    RunMonitor > LogTail { height: 5; border-top: solid $primary 40%; }
    """

    def __init__(self, idle_text: str = "", stop_hint: str = "",
                 event_time: Callable[[ev.Event], str | None] | None = None, system: bool = False,
                 system_sampler: Any = None, **kwargs: Any) -> None:
        """system: show the machine (a SystemPanel, sampling `system_sampler`, default this process and host)
        between the progress and the chart."""
        super().__init__(**kwargs)
        self.system = system
        self.system_sampler = system_sampler
        self.stop_hint = stop_hint
        # The log's times are "now", which is right live; a run read back gives its events' own times here.
        self.event_time = event_time
        self.progress = RunProgress()
        self.idle_text = idle_text
        self.device_text = ""
        self._sink = _LineSink()
        self._printer = HeadlessPrinter(out=self._sink, live=False)  # type: ignore[arg-type]
        self._last_flush = 0.0
        self._flush_pending = False
        self._header_dirty = True

    def compose(self) -> ComposeResult:
        yield Static(Text(""), id="run-header")
        yield Static(Text(self.idle_text), id="progress-text")
        yield ProgressBar(total=1, show_eta=False, id="progress-bar")  # total=None would animate (and cost CPU)
        yield Static(Text(""), id="epoch-losses")
        if self.system:
            from resnet_tui.app.widgets.system_panel import SystemPanel  # psutil: only where the machine is shown

            yield SystemPanel(self.system_sampler, id="system-panel")
        yield LossChart(id="loss-chart")
        yield LogTail(max_lines=LOG_LINES, id="run-log")

    def on_mount(self) -> None:
        self._render_header()

    @property
    def chart(self) -> LossChart:
        return self.query_one(LossChart)

    @property
    def log_widget(self) -> LogTail:
        return self.query_one(LogTail)

    def set_device(self, text: str) -> None:
        self.device_text = text
        self._render_header()

    def reset(self) -> None:
        """Forget the previous run (a new one is starting)."""
        self.progress = RunProgress()
        self._sink = _LineSink()
        self._printer = HeadlessPrinter(out=self._sink, live=False)  # type: ignore[arg-type]
        self.chart.clear()
        self.log_widget.clear()
        self._header_dirty = True
        self.query_one("#epoch-losses", Static).update(Text(""))
        self.query_one(ProgressBar).update(total=1, progress=0)
        self._render_header()

    def write_log(self, line: str) -> None:
        """Add a line of the app's own (an error) after the run's lines so far."""
        self._sink.lines.append(line)
        self.flush()

    def apply(self, events: Sequence[ev.Event]) -> None:
        """Fold a list of events into the view; the widgets follow within UI_SECONDS (the chart on its own clock)."""
        p = self.progress
        before = len(p.losses)
        p.apply_all(events)
        self._format_log(events)
        if len(p.losses) > before:
            self.chart.add_points(p.xs[before:], p.losses[before:], p.epochs, p.lrs[before:])
        elif any(isinstance(e, ev.TrainStart) for e in events):
            self.chart.set_points(p.xs, p.losses, p.epochs, p.lrs)
        if any(isinstance(e, ev.EvalEnd) for e in events):
            self.chart.set_evals(p.evals)
        milestone = any(isinstance(e, (ev.TrainStart, ev.EpochEnd, ev.EvalEnd, ev.RunEnd, ev.Notice)) for e in events)
        if any(isinstance(e, (ev.TrainStart, ev.RunEnd)) for e in events):
            self._header_dirty = True
        self._schedule_flush(now=milestone)

    def _schedule_flush(self, now: bool = False) -> None:
        if now:
            self.flush()
            return
        if self._flush_pending:
            return
        self._flush_pending = True
        wait = self._last_flush + UI_SECONDS - time.monotonic()
        if wait <= 0:
            self.call_later(self.flush)
        else:
            self.set_timer(wait, self.flush)

    def flush(self) -> None:
        """Bring the widgets up to date with what has been applied."""
        self._flush_pending = False
        self._last_flush = time.monotonic()
        lines = self._sink.take()
        if lines:
            self.log_widget.write_lines(lines[-LOG_LINES:])
        self._render_progress()
        if self._header_dirty:
            self._header_dirty = False
            self._render_header()

    def _format_log(self, events: Sequence[ev.Event]) -> None:
        # A watched run read from the start can hold tens of thousands of batches: only the last
        # LOG_LINES batch lines could be shown, so only those are formatted.
        batch_positions = [i for i, e in enumerate(events) if isinstance(e, ev.BatchEnd)]
        skip_before = batch_positions[-LOG_LINES] if len(batch_positions) > LOG_LINES else -1
        for i, e in enumerate(events):
            if i < skip_before and isinstance(e, ev.BatchEnd):
                continue
            first = len(self._sink.lines)
            try:
                self._printer(e)
                stamp = self.event_time(e) if self.event_time is not None else None
                if stamp:
                    for j in range(first, len(self._sink.lines)):
                        self._sink.lines[j] = LOG_STAMP.sub(f"[LOG {stamp}]", self._sink.lines[j], count=1)
            except (KeyError, TypeError, ValueError) as error:  # a record from another version: say so, go on
                self._sink.write(f"[WARNING] cannot show a {type(e).__name__} event ({type(error).__name__}: {error})\n")

    def _set_text(self, selector: str, text: Text) -> None:
        """Update a Static; skip it when unchanged, and re-layout only when its line count changes
        (a layout pass re-renders much of the screen, which is time the training thread could use)."""
        widget = self.query_one(selector, Static)
        old = widget.content
        if isinstance(old, Text) and old.plain == text.plain and old.spans == text.spans:
            return
        lines = text.plain.count("\n")
        relayout = not isinstance(old, Text) or old.plain.count("\n") != lines
        widget.update(text, layout=relayout)

    def _render_header(self) -> None:
        p = self.progress
        text = Text()
        device = p.start.device if p.start is not None else self.device_text
        if device:
            text.append("Device ", style="bold")
            text.append(device)
        if p.start is not None:
            c = p.start.config
            text.append(f" · layers {','.join(map(str, c.get('layers', [])))} · {p.start.param_count:,} params")
            text.append("\nRun ", style="bold")
            text.append(p.start.run_dir)
            text.append(f" · {p.start.n_train:,} train / {p.start.n_test:,} test images")
            text.append("\n")
            text.append_text(settings_line(c))
        self._set_text("#run-header", text)
        # below 40 rows the lines are cut to fit (TrainScreen's CSS): the mouse shows them whole
        self.query_one("#run-header", Static).tooltip = text if p.start is not None else None

    def _render_progress(self) -> None:
        p = self.progress
        bar = self.query_one(ProgressBar)
        if p.total_batches:
            bar.update(total=p.total_batches, progress=p.batches_done)
        text = Text()
        if p.start is not None:
            text.append(f"Epoch {max(p.epoch, 1)}/{p.epochs}", style="bold")
            text.append(f" · batch {p.batch}/{p.batches_per_epoch}")
            if p.end is None:  # the speed of the last few seconds, and the time left at it
                eta = p.eta_seconds
                eta_text = fmt_duration(eta) if math.isfinite(eta) else "?"
                text.append(f" · {p.recent_images_per_sec:,.0f} img/s · ETA {eta_text}")
                if self.stop_hint:
                    text.append(f"   {self.stop_hint}", style="dim")
            if p.evaluating and p.end is None:  # in the line of the evaluation it will replace
                text.append(f"\nEvaluating: {p.eval_done:,}/{p.eval_total:,} test images")
            elif p.eval_result is not None:
                r: Any = p.eval_result
                text.append("\nEval ", style="bold")
                if p.eval_epoch is not None:
                    text.append(f"epoch {p.eval_epoch} ", style="bold")
                text.append(f"NLL {r.nll:.4f} · accuracy ")
                text.append(f"{r.accuracy:.2%}", style="bold green")  # of the header's test images
            if p.end is not None:  # the run's average, as its end record says
                style = {"finished": "bold green", "interrupted": "bold yellow"}.get(p.end.status, "bold red")
                text.append("\n")
                text.append(p.end.status.upper(), style=style)
                text.append(f" · {p.end.images_per_sec:,.1f} img/s over {fmt_duration(p.end.train_seconds)}")
                if p.end.message:
                    text.append(f"\n{p.end.message}")
        else:
            text.append(self.idle_text)
        self._set_text("#progress-text", text)
        self.set_class(p.end is not None, "-ended")
        if p.epoch_losses:
            losses = Text("Epoch loss ", style="bold")
            losses.append("  ".join(f"{e}: {v:.4f}" for e, v in sorted(p.epoch_losses.items())[-8:]))
            self._set_text("#epoch-losses", losses)

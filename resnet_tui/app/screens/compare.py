"""Comparing runs (opened from the Runs screen with c): their per-batch loss curves overlaid in one chart,
smoothed (m toggles the smoothing), with a legend of the run names, and a table of their final numbers.

The runs are read from their metrics.jsonl in a worker thread (a long run has tens of thousands of lines);
every curve is smoothed over its own length and downsampled to at most MAX_POINTS before plotting.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import math

import numpy as np
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from resnet_tui.core.records import read_run
from resnet_tui.core.runs import RunSummary, summarize
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.widgets.loss_chart import MAX_POINTS, bucket
from resnet_tui.plain_text import plain, printable

COLORS = ("cyan", "orange", "green", "magenta", "yellow", "red", "blue", "white")


def smooth(ys: Sequence[float]) -> np.ndarray:
    """An exponential moving average whose span grows with the curve: about 1/50 of its length, at least 2
    points (so that even a short curve is visibly smoothed), started from the first value (no bias to 0)."""
    y = np.asarray(ys, dtype=np.float64)
    if len(y) == 0:
        return y
    span = max(2, len(y) // 50)
    alpha = 2.0 / (span + 1)
    out = np.empty_like(y)
    acc = y[0]
    for i, v in enumerate(y):
        acc = alpha * v + (1 - alpha) * acc
        out[i] = acc
    return out


@dataclass
class RunCurve:
    """One run as the comparison shows it: its per-batch losses (x in epochs) and its final numbers."""

    path: Path
    label: str
    summary: RunSummary
    xs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    train_loss: float | None = None  # the last epoch's mean training loss
    nll: float | None = None

    @property
    def layers(self) -> str:
        layers = self.summary.config.get("layers")
        return ",".join(str(n) for n in layers) if isinstance(layers, (list, tuple)) else "?"

    @property
    def skip(self) -> str:
        skip = self.summary.config.get("skip", True)
        return "on" if skip else "off (plain)"


def load_curve(path: Path, label: str) -> RunCurve:
    """Read a run directory: per-batch losses at their position in epochs, the last epoch's loss, the last eval.
    Damaged lines and the batches a resumed run trained again (its earlier tries) are left out (records.read_run)."""
    records = read_run(path)
    curve = RunCurve(path, label, summarize(path, records))
    batches = [b for b in records.batches if math.isfinite(b.loss)]
    start = records.start
    per_epoch = (start.batches_per_epoch if start is not None else 0) or max((b.batch for b in batches), default=1)
    curve.xs = [(b.epoch - 1) + b.batch / per_epoch for b in batches]
    curve.losses = [b.loss for b in batches]
    if records.epochs:
        curve.train_loss = _finite(records.epochs[-1].train_loss)
    if records.last_eval is not None:
        curve.nll = _finite(records.last_eval.result.nll)
    return curve


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def final_row(c: RunCurve) -> tuple[Any, ...]:
    s = c.summary
    epochs = f"{s.epochs_done}/{s.epochs}" if s.epochs is not None else str(s.epochs_done)
    from resnet_tui.app.screens.runs import status_text

    return (  # strings from the runs' files are Text: a DataTable would read a str as markup
        plain(c.label), plain(s.optimizer or "?"), f"{s.lr:g}" if isinstance(s.lr, (int, float)) else "?", c.layers, c.skip, epochs,
        f"{c.train_loss:.4f}" if c.train_loss is not None else "-",
        f"{s.accuracy:.2%}" if isinstance(s.accuracy, (int, float)) else "-",
        f"{c.nll:.4f}" if c.nll is not None else "-",
        status_text(s.status),
    )


class CompareChart(PlotextPlot):
    """Every run's curve in one plot, with a legend. `series` is what was drawn last: (label, xs, ys)."""

    DEFAULT_CSS = "CompareChart { height: 1fr; min-height: 6; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.curves: list[RunCurve] = []
        self.smoothed = True
        self.series: list[tuple[str, list[float], list[float]]] = []

    def show(self, curves: list[RunCurve], smoothed: bool) -> None:
        self.curves, self.smoothed = curves, smoothed
        self._replot()
        self.refresh()

    def _replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel("epoch · train NLL per batch" + (" (smoothed; m: raw)" if self.smoothed else " (raw; m: smoothed)"))
        self.series = []
        right = 0.0
        for i, c in enumerate(self.curves):
            if not c.losses:
                continue
            ys = smooth(c.losses) if self.smoothed else np.asarray(c.losses)
            x, mean, _ = bucket(c.xs, ys.tolist(), MAX_POINTS)
            xs, vals = x.tolist(), mean.tolist()
            self.series.append((c.label, xs, vals))
            plt.plot(xs, vals, marker="braille", color=COLORS[i % len(COLORS)], label=printable(c.label))
            right = max(right, xs[-1])
        if self.series:
            plt.xlim(0, right or 1.0)


class CompareScreen(AppScreen):
    NAV = "runs"
    AUTO_FOCUS = "#compare-table"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back to runs"),
        Binding("m", "toggle_smoothing", "Smoothing"),
    ]

    def __init__(self, runs: list[tuple[Path, str]]) -> None:
        """runs: (run directory, its name in the legend and the table)."""
        super().__init__()
        self.runs = runs
        self.curves: list[RunCurve] = []
        self.smoothed = True
        self.loaded = False

    def compose_body(self) -> ComposeResult:
        yield Static(f"Comparing {len(self.runs)} runs… (reading their metrics)", id="compare-title")
        yield CompareChart(id="compare-chart")
        yield DataTable(id="compare-table", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("Run", "Optimizer", "LR", "Layers", "Skip", "Epochs", "Train loss", "Accuracy", "NLL", "Status"):
            table.add_column(label, key=label)
        self._load(self.runs)

    @property
    def chart(self) -> CompareChart:
        return self.query_one(CompareChart)

    @work(thread=True, exclusive=True, exit_on_error=False, group="compare")
    def _load(self, runs: list[tuple[Path, str]]) -> None:
        curves = []
        for path, label in runs:
            try:
                curves.append(load_curve(path, label))
            except OSError as e:
                self.app.call_from_thread(self.notify, printable(f"{path}: {e}"), severity="error", markup=False)
        self.app.call_from_thread(self._show, curves)

    def _show(self, curves: list[RunCurve]) -> None:
        self.curves = curves
        table = self.query_one(DataTable)
        table.clear()
        for c in curves:
            table.add_row(*final_row(c), key=str(c.path))
        self.chart.show(curves, self.smoothed)
        self.loaded = True
        self._title()

    def _title(self) -> None:
        t = Text()
        t.append(f"Comparing {len(self.curves)} runs", style="bold")
        t.append(" · train loss per batch, " + ("smoothed (exponential moving average)" if self.smoothed else "raw"))
        t.append("   m: smoothing · Esc: back", style="dim")
        self.query_one("#compare-title", Static).update(t)

    def action_toggle_smoothing(self) -> None:
        self.smoothed = not self.smoothed
        self.chart.show(self.curves, self.smoothed)
        self._title()

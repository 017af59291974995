"""Comparing runs (opened from the Runs screen with c): their per-batch loss curves overlaid in one chart,
smoothed (m toggles the smoothing), with a legend of the run names, and above it a table with a column per run: the
hyperparameters that differ between them (only those), then each run's final numbers (accuracy, NLL, epochs, img/s).

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
from resnet_tui.app.screens.runs import status_text
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


# The chart's colours (plotext names) as Rich colours, so that a run's column header has its curve's colour
RICH_COLORS = {"orange": "dark_orange"}
MAX_LABEL = 20  # a run's column header, in cells: the runs' columns fit 80 columns for 3 runs


def config_text(field: str, value: Any) -> str:
    """A config value as the diff table shows it: on/off, layers as 2,2,2, numbers as short as they read."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return ("on" if value else "off (plain)") if field == "skip" else "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(map(str, value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def differing_fields(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The config fields whose values are not the same in every config (FIELDS' order, then other keys by name)."""
    from resnet_tui.core.config import FIELDS

    names = [f.name for f in FIELDS]
    names += sorted({k for c in configs for k in c} - set(names))
    return [n for n in names if len({config_text(n, c.get(n)) for c in configs}) > 1]


# The final numbers of a run: (row key, label, its text)
RESULT_ROWS: tuple[tuple[str, str, Any], ...] = (
    ("accuracy", "Accuracy", lambda c: f"{c.summary.accuracy:.2%}" if isinstance(c.summary.accuracy, (int, float)) else "-"),
    ("nll", "NLL", lambda c: f"{c.nll:.4f}" if c.nll is not None else "-"),
    ("epochs", "Epochs done", lambda c: f"{c.summary.epochs_done}/{c.summary.epochs}" if c.summary.epochs is not None else str(c.summary.epochs_done)),
    ("images_per_sec", "img/s", lambda c: f"{c.summary.images_per_sec:.0f}" if c.summary.images_per_sec is not None else "-"),
    ("train_loss", "Train loss", lambda c: f"{c.train_loss:.4f}" if c.train_loss is not None else "-"),
    ("status", "Status", lambda c: status_text(c.summary.status)),
)


def column_labels(curves: Sequence[RunCurve]) -> list[str]:
    """Each run's column header: its folder's name where that tells the runs apart (skip=on, not sweep-.../skip=on),
    else its whole name; a long one keeps its start and end."""
    from resnet_tui.app.screens.runs import shorten

    names = [c.path.name for c in curves]
    if len(set(names)) < len(names):
        names = [c.label for c in curves]
    return [shorten(n, MAX_LABEL) for n in names]


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
    AUTO_FOCUS = "#compare-diff"
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
        self.diff_fields: list[str] = []  # the config fields that differ between the runs: the table's first rows

    DEFAULT_CSS = """
    CompareScreen #compare-diff { height: auto; max-height: 50%; }
    """

    def compose_body(self) -> ComposeResult:
        yield Static(f"Comparing {len(self.runs)} runs… (reading their metrics)", id="compare-title")
        yield DataTable(id="compare-diff", cursor_type="none", zebra_stripes=True)
        yield CompareChart(id="compare-chart")

    def on_mount(self) -> None:
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
        self.diff_fields = differing_fields([c.summary.config for c in curves])
        table = self.query_one(DataTable)
        table.clear(columns=True)
        table.add_column("", key="field")
        for i, (c, label) in enumerate(zip(curves, column_labels(curves))):
            color = COLORS[i % len(COLORS)]
            table.add_column(Text(label, style=f"bold {RICH_COLORS.get(color, color)}"), key=str(c.path))
        for name in self.diff_fields:
            table.add_row(Text(name, style="bold"), *(plain(config_text(name, c.summary.config.get(name))) for c in curves), key=f"config:{name}")
        for key, label, text in RESULT_ROWS:
            table.add_row(Text(label, style="dim"), *(text(c) for c in curves), key=f"result:{key}")
        self.chart.show(curves, self.smoothed)
        self.loaded = True
        self._title()

    def _title(self) -> None:
        t = Text()
        t.append(f"Comparing {len(self.curves)} runs", style="bold")
        n = len(self.diff_fields)
        t.append(f" · {n} hyperparameter{'s differ' if n != 1 else ' differs'}" if n else " · the same hyperparameters")
        t.append(" · train loss per batch, " + ("smoothed" if self.smoothed else "raw"))
        t.append("   m: smoothing · Esc: back", style="dim")
        self.query_one("#compare-title", Static).update(t)

    def action_toggle_smoothing(self) -> None:
        self.smoothed = not self.smoothed
        self.chart.show(self.curves, self.smoothed)
        self._title()

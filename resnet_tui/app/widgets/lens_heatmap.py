"""The residual lens as heatmaps: blocks as rows (stem at the top, fc at the bottom) over training time as columns,
one heatmap per run, side by side on one colour scale, with the scale as a legend.

Each cell is a shade character and a colour, so the map still reads without colour (NO_COLOR). Positive quantities
(ratio, gradient norm, std) are coloured on a log scale: gradient norms span orders of magnitude across depth.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.widget import Widget

from resnet_tui.core.lens_series import QUANTITY_LABELS, LensSeries, fmt, value_range
from resnet_tui.plain_text import printable

# dark blue (low) to yellow (high), readable on dark and light backgrounds; 8 steps
RAMP = ("#30123b", "#4145ab", "#4675ed", "#1bd0d5", "#3ef98a", "#a4fc3c", "#f9ba38", "#fa7d20")
SHADES = "░░▒▒▓▓██"  # the same 8 steps without colour
LOG_QUANTITIES = ("ratio", "grad", "std")
LABEL_WIDTH = 9  # "layer3.63" fits
GAP = 3  # between two runs' heatmaps
NOW_WIDTH = 11  # one run: the latest values in a column at the right ("  -1.23e-04")


def scaled(x: float, low: float, high: float, log: bool) -> float | None:
    """x in [low, high] as [0, 1] (log or linear), None when it is not finite (or not positive on a log scale)."""
    if not math.isfinite(x) or (log and x <= 0):
        return None
    if log:
        x, low, high = math.log10(x), math.log10(low), math.log10(high)
    return 0.5 if high <= low else min(1.0, max(0.0, (x - low) / (high - low)))


def cell(level: float | None) -> tuple[str, str]:
    if level is None:
        return " ", ""
    i = min(len(RAMP) - 1, int(level * len(RAMP)))
    return SHADES[i], RAMP[i]


class LensHeatmap(Widget):
    """runs: (label, LensSeries) pairs; quantity: one of the lens quantities. The colour scale (`scale`) spans every
    measured value of the quantity in all the runs, so it is the same at any terminal size; `legend()` draws it."""

    DEFAULT_CSS = "LensHeatmap { height: auto; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runs: list[tuple[str, LensSeries]] = []
        self.quantity = "grad"
        self.scale: tuple[float, float] | None = None
        self.matrices: list[list[list[float]]] = []

    def show(self, runs: list[tuple[str, LensSeries]], quantity: str) -> None:
        self.runs, self.quantity = runs, quantity
        log = quantity in LOG_QUANTITIES
        values = [[[v for m in s.measures for v in m.values[quantity] if math.isfinite(v) and (v > 0 or not log)]] for _, s in runs]
        self.scale = value_range(values)
        self.refresh(layout=True)

    def _columns(self, width: int) -> int:
        n = max(1, len(self.runs))
        now = NOW_WIDTH if n == 1 else 0
        return max(4, (width - now - n * (LABEL_WIDTH + 1) - GAP * (n - 1)) // n)

    def get_content_height(self, container: Any, viewport: Any, width: int) -> int:
        return 1 + max((len(s.blocks) for _, s in self.runs), default=0) if self.scale is not None else 1

    def render(self) -> Text:
        if not self.runs or self.scale is None:
            return Text("No lens measurements yet (runs trained with --lens-every 0 have none).", style="dim")
        cols = self._columns(self.size.width or 80)
        log = self.quantity in LOG_QUANTITIES
        self.matrices = [s.matrix(self.quantity, cols) for _, s in self.runs]
        low, high = self.scale
        widths = [len(m[0]) if m and m[0] else cols for m in self.matrices]
        t = Text(no_wrap=True, overflow="crop")
        for i, ((label, series), w) in enumerate(zip(self.runs, widths)):  # one header line: each run's name and steps
            first, last = series.measures[0], series.measures[-1]
            head = f"{printable(label)} · step {first.step}-{last.step}, epoch {last.epoch}"[: LABEL_WIDTH + 1 + w]
            t.append(head.ljust(LABEL_WIDTH + 1 + w), style="bold")
            t.append(" " * GAP if i + 1 < len(self.runs) else self._now_head() + "\n")
        for r in range(max(len(s.blocks) for _, s in self.runs)):
            for i, ((_, series), m, w) in enumerate(zip(self.runs, self.matrices, widths)):
                name = series.blocks[r] if r < len(series.blocks) else ""
                t.append(printable(name)[:LABEL_WIDTH].ljust(LABEL_WIDTH) + " ", style="dim")
                for v in (m[r] if r < len(m) else [math.nan] * w):
                    char, colour = cell(scaled(v, low, high, log))
                    t.append(char, style=colour)
                if i + 1 < len(self.runs):
                    t.append(" " * GAP)
            t.append(self._now(r) + "\n")
        t.rstrip()
        return t

    def _now_head(self) -> str:
        return "now".rjust(NOW_WIDTH) if len(self.runs) == 1 else ""

    def _now(self, row: int) -> str:
        """One run: the row's value at the latest measurement (beside its cells)."""
        if len(self.runs) != 1:
            return ""
        last = self.runs[0][1].measures[-1].values[self.quantity]
        return fmt(last[row] if row < len(last) else float("nan")).rjust(NOW_WIDTH)

    def legend(self) -> Text:
        """`gradient norm, log scale  0.06 ░░▒▒▓▓██ 64.8  blank: none  (columns: training, left to right)`"""
        t = Text()
        if self.scale is None:
            return t
        log = self.quantity in LOG_QUANTITIES
        t.append(f"{QUANTITY_LABELS[self.quantity]}, {'log' if log else 'linear'} scale  ", style="bold")
        t.append(fmt(self.scale[0]) + " ")
        for char, colour in zip(SHADES, RAMP):
            t.append(char * 2, style=colour)
        t.append(" " + fmt(self.scale[1]))
        t.append("  blank: none", style="dim")
        return t

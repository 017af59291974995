"""The live chart of every batch's training loss (NLL), with epoch boundaries marked.

Drawing costs the UI thread time that training could use (on a GPU the training thread needs the GIL
to launch its kernels), so: points are bucketed down to at most MAX_POINTS (the mean of each bucket is
the line; its minimum a second, dimmer line); the chart redraws only when there is new data, at most
REDRAW_HZ times a second, and less often when a drawing is slow, so that drawing takes at most
CPU_SHARE of the time (plotext needs ~20 ms for a large chart, so that is about every 2 seconds).
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
from textual_plotext import PlotextPlot

MAX_POINTS = 300
REDRAW_HZ = 10
CPU_SHARE = 0.01


def bucket(xs: Sequence[float], ys: Sequence[float], max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(x, mean, min) of at most `max_points` contiguous buckets; min is None when nothing was merged."""
    x = np.asarray(xs, dtype=np.float64)
    y = np.asarray(ys, dtype=np.float64)
    n = len(y)
    if n <= max_points:
        return x, y, None
    edges = np.linspace(0, n, max_points + 1).astype(np.int64)[:-1]
    counts = np.diff(np.append(edges, n))
    bx = np.add.reduceat(x, edges) / counts
    mean = np.add.reduceat(y, edges) / counts
    low = np.minimum.reduceat(y, edges)
    return bx, mean, low


class LossChart(PlotextPlot):
    """Call `set_points` (or `add_points`) with the run's positions in epochs and losses; drawing is throttled."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, title: str = "epoch · train NLL per batch", **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart_title = title
        self._xs: list[float] = []
        self._ys: list[float] = []
        self._epochs = 0
        self._last_draw = 0.0
        self._draw_cost = 0.0  # seconds the last plot build and render took
        self._pending = False
        self.draws = 0  # how many times the plot was rebuilt (tests check the throttle with it)
        self._replot()

    @property
    def point_count(self) -> int:
        return len(self._ys)

    def set_points(self, xs: Sequence[float], ys: Sequence[float], epochs: int) -> None:
        """Replace the data (the lists are copied by reference-free slicing only when drawn)."""
        self._xs, self._ys, self._epochs = list(xs), list(ys), epochs
        self._schedule()

    def add_points(self, xs: Sequence[float], ys: Sequence[float], epochs: int) -> None:
        self._xs.extend(xs)
        self._ys.extend(ys)
        self._epochs = epochs
        self._schedule()

    def clear(self) -> None:
        self._xs, self._ys, self._epochs = [], [], 0
        self._schedule()

    def _schedule(self) -> None:
        if self._pending:
            return
        interval = max(1 / REDRAW_HZ, self._draw_cost / CPU_SHARE)
        wait = self._last_draw + interval - time.monotonic()
        self._pending = True
        if wait <= 0 and self.is_mounted:
            self.call_later(self._draw)
        else:
            self.set_timer(max(wait, 0.0), self._draw)

    def _draw(self) -> None:
        self._pending = False
        self._last_draw = time.monotonic()
        start = time.perf_counter()
        self._replot()
        self._draw_cost = time.perf_counter() - start  # the render adds to it (see render)
        self.refresh()

    def render(self):
        start = time.perf_counter()
        try:
            return super().render()
        finally:
            self._draw_cost += time.perf_counter() - start

    def _replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.xlabel(self.chart_title)  # a title row would cost the plot a row at 80x24
        self.draws += 1
        if not self._ys:
            return
        x, mean, low = bucket(self._xs, self._ys)
        if low is not None:
            plt.plot(x.tolist(), low.tolist(), marker="braille", color="gray", label="min")
        plt.plot(x.tolist(), mean.tolist(), marker="braille", color="cyan", label="mean" if low is not None else None)
        last = float(x[-1])
        every = max(1, math.ceil(self._epochs / 20))  # with many epochs, every n-th boundary (else a yellow wall)
        for e in range(every, self._epochs, every):  # a boundary after each finished epoch the data reaches
            if e <= last:
                plt.vline(e, "yellow")
        right = max(float(self._epochs), last) or 1.0
        plt.xlim(0, right)
        step = max(1, math.ceil(right / 8))  # whole epochs, at most about 8 ticks
        plt.xticks(list(range(0, math.ceil(right) + 1, step)))

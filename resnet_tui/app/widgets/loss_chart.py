"""The live chart of a run: every batch's training loss (NLL) with epoch boundaries marked, each epoch's eval NLL
(orange dots, same axis) and test accuracy (green, on a right-hand axis in percent), or the learning rate there instead.

Toggles (the Train screen's keys; the x label names the ones that are on, e.g. `train NLL · log · last 500 · EMA`):
a log scale on the loss axis, a window on the last WINDOW_BATCHES batches instead of the whole run, smoothing
(an exponential moving average drawn bright, the raw series gray behind it), and the learning rate on the right axis.

Drawing costs the UI thread time that training could use (on a GPU the training thread needs the GIL
to launch its kernels), so: points are bucketed down to at most MAX_POINTS (the mean of each bucket is
the line; its minimum a second, dimmer line); the chart redraws only when there is new data, at most
REDRAW_HZ times a second, and less often when a drawing is slow, so that drawing takes at most
CPU_SHARE of the time (plotext needs ~20 ms for a large chart, so that is about every 2 seconds).
A toggle redraws at once: it is a key press, not a stream.
"""

from __future__ import annotations

import math
import time
from typing import Mapping, Sequence

import numpy as np
from textual.binding import Binding
from textual_plotext import PlotextPlot

MAX_POINTS = 300
REDRAW_HZ = 10
CPU_SHARE = 0.01
WINDOW_BATCHES = 500  # the window's length, in batches (about an epoch and a quarter of the lab's 391)
LOG_FLOOR = 1e-6  # a loss of 0 has no place on a log axis: it is drawn here

TRAIN_COLOR, EVAL_COLOR, ACCURACY_COLOR, LR_COLOR, FAINT = "cyan", "orange", "green", "magenta", "gray"


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


def ema(ys: Sequence[float]) -> list[float]:
    """An exponential moving average whose span is about 1/50 of the series (at least 2 points, so that even a
    short series is visibly smoothed), started from the first value (no bias towards 0), as on the Compare screen."""
    if not len(ys):
        return []
    alpha = 2.0 / (max(2, len(ys) // 50) + 1)
    out, acc = [], float(ys[0])
    for y in ys:
        acc += alpha * (y - acc)
        out.append(acc)
    return out


def log_ticks(low: float, high: float, max_ticks: int = 6) -> list[float]:
    """Round values for a log axis from `low` to `high`: 1, 2 and 5 times the powers of ten, or more of them
    when the range is too narrow for three; a narrow range gets evenly spaced values of 2 significant digits."""
    low, high = max(low, LOG_FLOOR), max(high, LOG_FLOOR)
    decades = range(math.floor(math.log10(low)), math.floor(math.log10(high)) + 1)
    for mantissas in ((1, 2, 5), (1, 1.5, 2, 3, 4, 5, 6, 7, 8, 9)):
        ticks = [m * 10.0 ** d for d in decades for m in mantissas if low <= m * 10.0 ** d <= high]
        if len(ticks) >= 3:
            return ticks[::math.ceil(len(ticks) / max_ticks)]
    return sorted({float(f"{low * (high / low) ** (i / 3):.2g}") for i in range(4)})


def epoch_ticks(left: float, right: float, max_ticks: int = 8) -> list[float]:
    """Ticks at round positions in epochs (whole epochs when the span allows, else halves, fifths, tenths...)."""
    span = max(right - left, 1e-9)
    step = 10.0 ** math.floor(math.log10(span / max_ticks))
    for factor in (1, 2, 2.5, 5, 10):
        if span / (step * factor) <= max_ticks:
            step *= factor
            break
    first = math.ceil(left / step - 1e-9)
    return [round(i * step, 6) for i in range(first, int(math.floor(right / step + 1e-9)) + 1)]


class LossChart(PlotextPlot):
    """Call `set_points` (or `add_points`) with the run's positions in epochs, losses and learning rates, and
    `set_evals` with its evaluations per epoch; drawing is throttled. `series` is what was plotted last
    (name -> (xs, ys)) and `x_label` the label under it: tests read them."""

    DEFAULT_CSS = """
    LossChart { height: 1fr; min-height: 6; }
    """

    def __init__(self, title: str = "train NLL", **kwargs) -> None:
        super().__init__(**kwargs)
        self.chart_title = title
        self.log_y = False
        self.windowed = False
        self.smoothing = False
        self.show_lr = False
        self._xs: list[float] = []
        self._ys: list[float] = []
        self._lrs: list[float] = []
        self._evals: dict[int, tuple[float, float]] = {}
        self._epochs = 0
        self._last_draw = 0.0
        self._draw_cost = 0.0  # seconds the last plot build and render took
        self._pending = False
        self.draws = 0  # how many times the plot was rebuilt (tests check the throttle with it)
        self.series: dict[str, tuple[list[float], list[float]]] = {}
        self.x_label = ""
        self._replot()

    @property
    def point_count(self) -> int:
        return len(self._ys)

    def set_points(self, xs: Sequence[float], ys: Sequence[float], epochs: int, lrs: Sequence[float] = ()) -> None:
        """Replace the data (copied)."""
        self._xs, self._ys, self._lrs, self._epochs = list(xs), list(ys), list(lrs), epochs
        self._schedule()

    def add_points(self, xs: Sequence[float], ys: Sequence[float], epochs: int, lrs: Sequence[float] = ()) -> None:
        self._xs.extend(xs)
        self._ys.extend(ys)
        self._lrs.extend(lrs)
        self._epochs = epochs
        self._schedule()

    def set_evals(self, evals: Mapping[int, tuple[float, float]]) -> None:
        """Each evaluated epoch's (eval NLL, accuracy), drawn at the end of that epoch."""
        self._evals = dict(evals)
        self._schedule()

    def clear(self) -> None:
        self._xs, self._ys, self._lrs, self._evals, self._epochs = [], [], [], {}, 0
        self._schedule()

    # ---------------------------------------------------------------- the toggles (each redraws at once)

    TOGGLES = {"log": "log_y", "window": "windowed", "smoothing": "smoothing", "lr": "show_lr"}  # key name -> flag

    def toggle(self, name: str) -> None:
        """One of the CHART_BINDINGS' toggles by name (log, window, smoothing or lr): flip its flag and redraw."""
        flag = self.TOGGLES[name]
        setattr(self, flag, not getattr(self, flag))
        self._draw()

    def label(self, width: int = 0) -> str:
        """The x label: what the axes show and which toggles are on; shorter when `width` (columns) is too narrow
        for it (plotext leaves out a label that does not fit)."""
        what = self.chart_title.replace("train", "train/eval", 1) if self._evals else self.chart_title
        toggles = [name for name, on in (("log", self.log_y), (f"last {WINDOW_BATCHES}", self.windowed),
                                         ("EMA", self.smoothing)) if on]
        right = ["lr →"] if self.show_lr else ["acc % →"] if self._evals else []
        for parts in (["epoch", what, *toggles, *right], [what, *toggles, *right], ["NLL", *toggles, *right]):
            text = " · ".join(parts)
            if not width or len(text) <= width:
                break
        return text

    # ---------------------------------------------------------------- drawing

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

    def on_resize(self) -> None:
        self._replot()  # the label's length follows the width
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
        self.x_label = self.label(self.size.width)
        plt.xlabel(self.x_label)  # a title row would cost the plot a row at 80x24
        self.series = {}
        self._left_range = (math.inf, -math.inf)  # of the log10 values drawn on the left axis
        self.draws += 1
        if not self._ys:
            return
        first = max(0, len(self._ys) - WINDOW_BATCHES) if self.windowed else 0
        xs, ys = self._xs[first:], self._ys[first:]
        self._plot_train(xs, ys)
        left = xs[0] if self.windowed else 0.0
        last = xs[-1]
        self._plot_evals(left)
        if self.show_lr:
            lrs = self._lrs[first:first + len(xs)]
            if lrs:
                x, mean, _ = bucket(xs[:len(lrs)], lrs)
                self._series("lr", x.tolist(), mean.tolist(), LR_COLOR, yside="right")
        self._plot_epochs(left, last)
        if self.log_y:
            self._log_axis()

    def _log_axis(self) -> None:
        low, high = self._left_range
        ticks = log_ticks(10 ** low, 10 ** high)
        self.plt.yticks([math.log10(t) for t in ticks], [f"{t:g}" for t in ticks])

    def _series(self, name: str, xs: list[float], ys: list[float], color: str, yside: str = "left",
                points: bool = False) -> None:
        """Plot one series (and remember it in `series`); points: a dot at each value, joined by a line."""
        self.series[name] = (xs, ys)
        if self.log_y and yside == "left":
            # plotext's own log scale transforms its data in place at every build, and a widget is rendered more
            # often than it is plotted: the data goes in as log10 here, and the ticks name the values (_log_axis)
            ys = [math.log10(max(y, LOG_FLOOR)) for y in ys]
            self._left_range = (min(self._left_range[0], min(ys)), max(self._left_range[1], max(ys)))
        if not points or len(xs) > 1:
            self.plt.plot(xs, ys, marker="braille", color=color, yside=yside)
        if points:  # over the line
            self.plt.scatter(xs, ys, marker="●", color=color, yside=yside)

    def _plot_train(self, xs: list[float], ys: list[float]) -> None:
        x, mean, low = bucket(xs, ys)
        if self.smoothing:  # the raw series faint behind its moving average
            self._series("raw", x.tolist(), mean.tolist(), FAINT)
            sx, smoothed, _ = bucket(xs, ema(ys))
            self._series("ema", sx.tolist(), smoothed.tolist(), TRAIN_COLOR)
            return
        if low is not None:
            self._series("min", x.tolist(), low.tolist(), FAINT)
        self._series("train", x.tolist(), mean.tolist(), TRAIN_COLOR)

    def _plot_evals(self, left: float) -> None:
        shown = sorted((e, v) for e, v in self._evals.items() if e >= left and all(map(math.isfinite, v)))
        if not shown:
            return
        epochs = [float(e) for e, _ in shown]
        self._series("eval_nll", epochs, [v[0] for _, v in shown], EVAL_COLOR, points=True)
        if not self.show_lr:  # the right axis holds one of the two
            self._series("accuracy", epochs, [100 * v[1] for _, v in shown], ACCURACY_COLOR, yside="right", points=True)

    def _plot_epochs(self, left: float, last: float) -> None:
        plt = self.plt
        every = max(1, math.ceil(self._epochs / 20))  # with many epochs, every n-th boundary (else a yellow wall)
        for e in range(every, self._epochs, every):  # a boundary after each finished epoch the data reaches
            if left < e <= last:
                plt.vline(e, "yellow")
        if self.windowed:
            right = max(last, left + 1e-3, *(e for e in self._evals if e >= left))
            plt.xlim(left, right)
            plt.xticks(epoch_ticks(left, right))
            return
        right = max(float(self._epochs), last, *self._evals.keys()) or 1.0
        plt.xlim(0, right)
        step = max(1, math.ceil(right / 8))  # whole epochs, at most about 8 ticks
        plt.xticks(list(range(0, math.ceil(right) + 1, step)))


# The chart's keys, for every screen that shows a run's chart (Train, and a watched run): each screen's
# action_chart(name) calls LossChart.toggle(name).
CHART_BINDINGS = [
    Binding("g", "chart('log')", "Log", tooltip="chart: log or linear loss axis"),
    Binding("w", "chart('window')", "Window", tooltip=f"chart: the last {WINDOW_BATCHES} batches, or the whole run"),
    Binding("m", "chart('smoothing')", "Smooth", tooltip="chart: smoothing on/off (an exponential moving average; the raw loss gray behind it)"),
    Binding("r", "chart('lr')", "LR", tooltip="chart: the learning rate on the right axis instead of the test accuracy"),
]

"""The Lens view (l on the Runs screen, for the highlighted run or the marked ones): the residual lens of one run,
or of two side by side on one colour scale, as heatmaps of blocks (stem to fc) over training time. n cycles the
quantity: ||F(x)||/||x||, gradient norm, output mean, output std. A run still being written is re-read every
second (watch mode); the records are read in a worker thread."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from resnet_tui.core.lens_series import QUANTITY_LABELS, LensSeries
from resnet_tui.core.records import LENS_QUANTITIES, read_run
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.widgets.lens_heatmap import LensHeatmap
from resnet_tui.plain_text import printable

POLL_SECONDS = 1.0
MAX_RUNS = 2  # side by side; more would leave too few columns at 80x24


class LensScreen(AppScreen):
    NAV = "runs"
    AUTO_FOCUS = "#lens-scroll"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back to runs"),
        Binding("n", "next_quantity", "Next quantity", tooltip="ratio, gradient norm, output mean, output std"),
    ]

    def __init__(self, runs: list[tuple[Path, str]], quantity: str = "grad") -> None:
        """runs: (run directory, its name above its heatmap); the first MAX_RUNS are shown."""
        super().__init__()
        self.runs = runs[:MAX_RUNS]
        self.quantity = quantity
        self.series: list[tuple[str, LensSeries]] = []
        self.live = True  # until every run has an end record
        self.loaded = False

    def compose_body(self) -> ComposeResult:
        yield Static("Reading the lens records…", id="lens-title")
        with VerticalScroll(id="lens-scroll"):  # a deep network's rows scroll; the scale below stays in view
            yield LensHeatmap(id="lens-heatmap")
        yield Static("", id="lens-legend")

    def on_mount(self) -> None:
        self._load()
        self._timer = self.set_interval(POLL_SECONDS, self._poll)

    @property
    def heatmap(self) -> LensHeatmap:
        return self.query_one(LensHeatmap)

    def _poll(self) -> None:
        if self.live:
            self._load()
        else:
            self._timer.stop()

    @work(thread=True, exclusive=True, exit_on_error=False, group="lens")
    def _load(self) -> None:
        series, live = [], False
        for path, label in self.runs:
            records = read_run(path)
            live = live or records.end is None
            series.append((label, LensSeries.of(records)))
        self.app.call_from_thread(self._show, series, live)

    def _show(self, series: list[tuple[str, LensSeries]], live: bool) -> None:
        self.series, self.live, self.loaded = series, live, True
        self._redraw()

    def _redraw(self) -> None:
        self.heatmap.show(self.series, self.quantity)
        self.query_one("#lens-legend", Static).update(self.heatmap.legend())
        self._title()

    def _title(self) -> None:
        t = Text()
        t.append("Residual lens", style="bold")
        t.append(f" · {QUANTITY_LABELS[self.quantity]} · rows: stem to fc · columns: training")
        if self.live:
            t.append(" · following", style="bold cyan")
        missing = [label for label, s in self.series if not s]
        if missing:
            t.append(" · no lens records in " + ", ".join(printable(m) for m in missing), style="yellow")
        self.query_one("#lens-title", Static).update(t)

    def action_next_quantity(self) -> None:
        self.quantity = LENS_QUANTITIES[(LENS_QUANTITIES.index(self.quantity) + 1) % len(LENS_QUANTITIES)]
        self._redraw()

"""A sweep (`resnet-tui sweep` without --no-ui): every combination of the grid in a table (status, epoch,
batch, loss, accuracy), the current run's live view (the same monitor as the Train screen), and at the end
the runs ranked by test accuracy. The sweep trains in the app's thread worker; events arrive in coalesced
SweepEvents messages (about 4 a second), and the table's cells are updated once per message."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from resnet_tui.core import events as ev
from resnet_tui.core import sweep as sw
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.screens.runs import status_text
from resnet_tui.app.widgets.run_monitor import RunMonitor
from resnet_tui.plain_text import plain, printable

COLUMNS = ("#", "Run", "Status", "Epoch", "Batch", "Loss", "Accuracy", "NLL")
# The widest cell each column can get as its runs progress ("#" becomes "Rank"; "interrupted"; 391/391; 12.3456;
# 100.00%), so that the columns that fit are chosen once and no cell is ever cut; the least telling give way first.
WIDEST = {"#": 4, "Status": 11, "Batch": 7, "Loss": 7, "Accuracy": 8, "NLL": 7}
GIVE_WAY = ("NLL", "Loss", "Batch")
CELL_PADDING = 2


def fit_columns(names: list[str], epochs: int, width: int) -> tuple[list[str], int | None]:
    """The columns that fit `width` cells, and the width the run names are shortened to if even those do not (None: full)."""
    widths = {**WIDEST, "Run": max([3, *map(len, names)]), "Epoch": max(5, 2 * len(str(epochs)) + 1)}
    shown = list(COLUMNS)
    total = sum(widths[c] + CELL_PADDING for c in shown)
    for column in GIVE_WAY:
        if total <= width:
            break
        shown.remove(column)
        total -= widths[column] + CELL_PADDING
    return shown, (None if total <= width else max(12, widths["Run"] - (total - width)))


class RowState:
    def __init__(self, index: int, name: str) -> None:
        self.index, self.name = index, name
        self.status = "pending"
        self.epoch = 0
        self.epochs = 0
        self.batch = 0
        self.batches = 0
        self.loss: float | None = None
        self.accuracy: float | None = None
        self.nll: float | None = None

    def cells(self, rank: int | None = None) -> tuple[Any, ...]:
        return (
            str(rank if rank is not None else self.index + 1), plain(self.name), status_text(self.status),
            f"{self.epoch}/{self.epochs}" if self.epochs else "-",
            f"{self.batch}/{self.batches}" if self.batches else "-",
            f"{self.loss:.4f}" if self.loss is not None else "-",
            f"{self.accuracy:.2%}" if self.accuracy is not None else "-",
            f"{self.nll:.4f}" if self.nll is not None else "-",
        )


class SweepScreen(AppScreen):
    NAV = "runs"
    AUTO_FOCUS = "#sweep-table"
    BINDINGS = [Binding("escape", "back", "Back to runs")]

    def __init__(self, plan: "sw.SweepPlan") -> None:
        super().__init__()
        self.plan = plan
        self.rows = [RowState(p.index, p.name) for p in plan.points]
        self.current: int | None = None
        self.end: sw.SweepFinished | None = None
        self.ranked: list[sw.SweepResult] = []
        self.shown: list[str] = list(COLUMNS)  # the columns that fit (fit_columns)
        self.run_width: int | None = None

    def compose_body(self) -> ComposeResult:
        yield Static("", id="sweep-title")
        yield DataTable(id="sweep-table", cursor_type="row", zebra_stripes=True)
        yield RunMonitor(idle_text="Waiting for the first run…", stop_hint="s stops the sweep", id="sweep-monitor")

    def on_mount(self) -> None:
        self._build_table()
        self.query_one(RunMonitor).border_title = "Current run"
        self._title()

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        if self.is_mounted:
            self._build_table()

    def _build_table(self) -> None:
        """The columns that fit the screen, and every row (ranked once the sweep has ended)."""
        table = self.query_one(DataTable)
        epochs = max((p.config.epochs for p in self.plan.points), default=1)
        width = self.app.size.width - (table.styles.scrollbar_size_vertical if len(self.rows) + 1 > 8 else 0)  # max-height: 8
        self.shown, self.run_width = fit_columns([r.name for r in self.rows], epochs, width)
        table.clear(columns=True)
        for label in self.shown:
            table.add_column("Rank" if label == "#" and self.end is not None else label, key=label)
        order = [(r.index, rank) for rank, r in enumerate(self.ranked, start=1)] if self.end is not None else [(r.index, None) for r in self.rows]
        for index, rank in order:
            table.add_row(*self._cells(index, rank), key=str(index))

    def _cells(self, index: int, rank: int | None = None) -> list[Any]:
        """The row's cells of the columns shown; a long run name keeps its start and end."""
        from resnet_tui.app.screens.runs import shorten

        cells = dict(zip(COLUMNS, self.rows[index].cells(rank)))
        if self.run_width is not None:
            cells["Run"] = plain(shorten(self.rows[index].name, self.run_width))
        return [cells[c] for c in self.shown]

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    def _title(self) -> None:
        t = Text()
        t.append("Sweep ", style="bold")
        t.append(printable(self.plan.out))
        axes = " × ".join(f"{k} ({len(v)})" for k, v in self.plan.axes.items())
        t.append(f" · {len(self.rows)} runs" + (f": {axes}" if axes else ""))
        done = sum(r.status in sw.DONE_STATUSES for r in self.rows)
        if self.end is None:
            t.append(f"\n{done}/{len(self.rows)} done", style="bold cyan")
            if self.current is not None:
                t.append(f" · training {printable(self.rows[self.current].name)}")
            t.append("   s stops the sweep (the run saves; the same command continues it)", style="dim")
        else:
            style = "bold green" if self.end.status == "finished" else "bold yellow"
            t.append(f"\nSweep {self.end.status}", style=style)
            t.append(f" · {done}/{len(self.rows)} done · ranked by test accuracy · Esc: the runs list (c compares)", style="")
        self.query_one("#sweep-title", Static).update(t)

    def apply(self, events: list[Any]) -> None:
        """Fold sweep events in: the current run's training events go to the monitor in one list."""
        changed: set[int] = set()
        batch: list[ev.Event] = []

        def flush_batch() -> None:
            if batch:
                self.monitor.apply(list(batch))
                batch.clear()

        for e in events:
            if isinstance(e, sw.SweepStarted):
                for i in e.skipped:
                    self.rows[i].status = "finished"  # done in an earlier start; RunFinished does not come for it
                    r = sw.read_result(self.plan.points[i])
                    self._from_result(r)
                    changed.add(i)
            elif isinstance(e, sw.RunStarted):
                flush_batch()
                self.current = e.index
                row = self.rows[e.index]
                row.status = "running"
                changed.add(e.index)
                self.monitor.reset()
            elif isinstance(e, sw.RunEvent):
                row = self.rows[e.index]
                te = e.event
                if isinstance(te, ev.TrainStart):
                    row.epochs, row.batches = int(te.config.get("epochs", 0)), te.batches_per_epoch
                elif isinstance(te, ev.BatchEnd):
                    row.epoch, row.batch = te.epoch, te.batch
                    row.loss = te.loss
                elif isinstance(te, ev.EvalEnd):
                    row.accuracy, row.nll = te.result.accuracy, te.result.nll
                changed.add(e.index)
                if e.index == self.current:
                    batch.append(te)
            elif isinstance(e, sw.RunFinished):
                flush_batch()
                self._from_result(e.result)
                changed.add(e.result.index)
            elif isinstance(e, sw.SweepFinished):
                flush_batch()
                self.end = e
                for r in e.results:
                    self._from_result(r)
                self.current = None
        flush_batch()
        if self.end is not None:
            self._show_ranked()
        else:
            table = self.query_one(DataTable)
            for i in changed:
                for label, cell in zip(self.shown, self._cells(i)):
                    table.update_cell(str(i), label, cell, update_width=True)
        self._title()

    def _from_result(self, r: "sw.SweepResult") -> None:
        row = self.rows[r.index]
        row.status = r.status
        if r.accuracy is not None:
            row.accuracy = r.accuracy
        if r.nll is not None:
            row.nll = r.nll
        if r.epochs_done:
            row.epoch = r.epochs_done

    def _show_ranked(self) -> None:
        assert self.end is not None
        self.ranked = self.end.ranked()
        self._build_table()

    def action_back(self) -> None:
        if self.end is None:
            self.notify("The sweep is running: s stops it. 1-5 switch screens; 5 comes back here.", severity="warning")
            return
        self.app.pop_screen()

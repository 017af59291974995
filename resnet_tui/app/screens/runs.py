"""Screen 5, Runs: the run directories under the runs root. Opening one shows its curves and evaluation,
and follows it live while it is still being written (the same viewer as `resnet-tui watch`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from resnet_tui.runs import RunSummary, list_runs
from resnet_tui.app.screens.base import AppScreen

if TYPE_CHECKING:
    from resnet_tui.app.app import ResNetApp

STATUS_STYLE = {"finished": "green", "running": "bold cyan", "interrupted": "yellow", "diverged": "red", "failed": "red",
                "stale": "dim", "unknown": "dim"}


def status_text(status: str) -> Text:
    mark = "● " if status == "running" else ""
    return Text(mark + status, style=STATUS_STYLE.get(status, ""))


def run_row(s: RunSummary) -> tuple[Any, ...]:
    epochs = f"{s.epochs_done}/{s.epochs}" if s.epochs is not None else str(s.epochs_done)
    return (
        s.started[:16],
        s.optimizer or "?",
        f"{s.lr:g}" if isinstance(s.lr, (int, float)) else "?",
        epochs,
        f"{s.last_loss:.4f}" if isinstance(s.last_loss, (int, float)) else "-",
        f"{s.accuracy:.2%}" if isinstance(s.accuracy, (int, float)) else "-",
        status_text(s.status),
    )


class RunsScreen(AppScreen):
    NAV = "runs"
    AUTO_FOCUS = "#runs-table"
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("enter", "open", "Open", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[RunSummary] = []

    @property
    def resnet_app(self) -> "ResNetApp":
        return cast("ResNetApp", self.app)

    def compose_body(self) -> ComposeResult:
        yield Static("", id="runs-info")
        table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-selected")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("Date (UTC)", "Optimizer", "LR", "Epochs", "Last loss", "Accuracy", "Status"):
            table.add_column(label, key=label)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_refresh()

    def action_refresh(self) -> None:
        root = self.resnet_app.runs_root
        table = self.query_one(DataTable)
        keep = table.cursor_row
        self.summaries = list_runs(root)
        table.clear()
        for s in self.summaries:
            table.add_row(*run_row(s), key=str(s.path))
        running = sum(1 for s in self.summaries if s.status == "running")
        self.query_one("#runs-info", Static).update(
            f"[b]{len(self.summaries)} run{'s' if len(self.summaries) != 1 else ''}[/] in {root}" + (f" · [b cyan]{running} running[/]" if running else "")
            + " · Enter opens (and follows a running one) · r refreshes"
            if self.summaries else f"No runs in {root} yet: train one on screen 1, or start the app where runs/ is."
        )
        if self.summaries:
            table.move_cursor(row=min(keep, len(self.summaries) - 1))
            self._show_selected(table.cursor_row)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected(event.cursor_row)

    def _show_selected(self, row: int) -> None:
        if 0 <= row < len(self.summaries):
            self.query_one("#runs-selected", Static).update(f"[dim]{self.summaries[row].path}[/]")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_run(Path(str(event.row_key.value)))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.summaries):
            self.open_run(self.summaries[table.cursor_row].path)

    def open_run(self, path: Path) -> None:
        from resnet_tui.app.screens.run_view import RunViewScreen

        self.app.push_screen(RunViewScreen(path))

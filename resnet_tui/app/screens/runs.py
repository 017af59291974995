"""Screen 5, Runs: the run directories under the runs root, and the runs inside its sweep folders. Opening one
shows its curves and evaluation, and follows it live while it is still being written (the same viewer as
`resnet-tui watch`). Space marks runs, c compares the marked ones (their loss curves in one chart, and a table
of their final numbers); o opens another folder of runs (a --runs-dir, or one sweep folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.content import Content
from textual.widgets import DataTable, Static

from resnet_tui.core.runs import RunSummary, list_runs
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.state import ResumeRun
from resnet_tui.plain_text import plain, printable

STATUS_STYLE = {"finished": "green", "running": "bold cyan", "interrupted": "yellow", "diverged": "red", "failed": "red",
                "crashed": "bold red", "unknown": "dim", "unreadable": "red"}


def status_text(status: str) -> Text:
    mark = "● " if status == "running" else ""
    return plain(mark + status, style=STATUS_STYLE.get(status, ""))


def run_name(s: RunSummary, root: Path) -> str:
    """The run's folder below the runs root (sweep-.../optimizer=adam,lr=0.01 for a run of a sweep)."""
    try:
        return str(s.path.relative_to(root))
    except ValueError:
        return s.path.name


def run_row(s: RunSummary, root: Path | None = None, marked: bool = False) -> tuple[Any, ...]:
    epochs = f"{s.epochs_done}/{s.epochs}" if s.epochs is not None else str(s.epochs_done)
    return (  # strings from the run's files are Text: a DataTable would read a str as markup
        Text("✓", style="bold green") if marked else Text(""),
        plain(s.started[:16]),
        plain(s.optimizer or "?"),
        f"{s.lr:g}" if isinstance(s.lr, (int, float)) else "?",
        epochs,
        f"{s.last_loss:.4f}" if isinstance(s.last_loss, (int, float)) else "-",
        f"{s.accuracy:.2%}" if isinstance(s.accuracy, (int, float)) else "-",
        status_text(s.status),
        plain(run_name(s, root) if root is not None else s.path.name),
    )


class RunsScreen(AppScreen):
    NAV = "runs"
    AUTO_FOCUS = "#runs-table"
    BINDINGS = [
        Binding("r", "refresh", "Refresh"),
        Binding("enter", "open", "Open", show=False),
        Binding("space", "mark", "Mark"),
        Binding("c", "compare", "Compare marked"),
        Binding("l", "lens", "Lens", tooltip="residual lens: 2 marked runs side by side, or the highlighted"),
        Binding("o", "open_folder", "Folder"),
        Binding("R", "resume", "Resume", tooltip="resume the highlighted interrupted or crashed run here (asks for the epochs)"),
        Binding("x", "stop", "Stop run", tooltip="stop the highlighted live run (any process) after its batch; it saves"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.summaries: list[RunSummary] = []
        self.marked: set[Path] = set()

    def compose_body(self) -> ComposeResult:
        yield Static("", id="runs-info")
        table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-selected")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for label in ("✓", "Date (UTC)", "Optimizer", "LR", "Epochs", "Last loss", "Accuracy", "Status", "Run"):
            table.add_column(label, key=label)

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_refresh()

    def action_refresh(self) -> None:
        root = self.session.runs_root
        table = self.query_one(DataTable)
        keep = table.cursor_row
        self.summaries = list_runs(root, include_sweeps=True)
        self.marked &= {s.path for s in self.summaries}
        table.clear()
        for s in self.summaries:
            table.add_row(*run_row(s, root, s.path in self.marked), key=str(s.path))
        self._render_info()
        if self.summaries:
            table.move_cursor(row=min(keep, len(self.summaries) - 1))
            self._show_selected(table.cursor_row)

    def _render_info(self) -> None:
        root = self.session.runs_root
        running = sum(1 for s in self.summaries if s.status == "running")
        # Content parts are text, not markup (the root comes from the user); styles as the rest of the app's markup
        parts: list[str | tuple[str, str]] = []
        if not self.summaries:
            parts.append(f"No runs in {printable(root)} yet: train one on screen 1, or o opens another folder.")
        else:
            parts += [(f"{len(self.summaries)} run{'s' if len(self.summaries) != 1 else ''}", "bold"), f" in {printable(root)}"]
            skipped = sum(s.skipped for s in self.summaries)
            for count, what, style in ((running, "running", "bold cyan"), (len(self.marked), "marked", "bold green"),
                                       (skipped, f"damaged line{'s' if skipped != 1 else ''} skipped", "yellow")):
                if count:
                    parts += [" · ", (f"{count} {what}", style)]
            parts.append(" · Enter opens · Space marks, c compares, l: lens · R resumes, x stops · o: folder")
        info = Content.assemble(*parts)
        self.query_one("#runs-info", Static).update(info)

    def action_mark(self) -> None:
        """Mark or unmark the highlighted run for comparing, and move to the next one."""
        table = self.query_one(DataTable)
        row = table.cursor_row
        if not 0 <= row < len(self.summaries):
            return
        s = self.summaries[row]
        self.marked.symmetric_difference_update({s.path})
        table.update_cell(str(s.path), "✓", Text("✓", style="bold green") if s.path in self.marked else Text(""))
        self._render_info()
        if row + 1 < len(self.summaries):
            table.move_cursor(row=row + 1)

    def action_compare(self) -> None:
        """Compare the marked runs (in the list's order); with none marked, say how to mark them."""
        chosen = [s for s in self.summaries if s.path in self.marked]
        if not chosen:
            self.notify("Mark runs with Space first, then press c.", severity="warning")
            return
        from resnet_tui.app.screens.compare import CompareScreen

        root = self.session.runs_root
        self.app.push_screen(CompareScreen([(s.path, run_name(s, root)) for s in chosen]))

    def action_lens(self) -> None:
        """The Lens view of the marked runs (the first two, side by side), or of the highlighted run."""
        chosen = [s for s in self.summaries if s.path in self.marked] or [s for s in [self._highlighted()] if s is not None]
        if not chosen:
            return
        from resnet_tui.app.screens.lens import MAX_RUNS, LensScreen

        if len(chosen) > MAX_RUNS:
            self.notify(f"The lens shows {MAX_RUNS} runs side by side: the first {MAX_RUNS} marked.", severity="warning")
        root = self.session.runs_root
        self.app.push_screen(LensScreen([(s.path, run_name(s, root)) for s in chosen]))

    def action_open_folder(self) -> None:
        from resnet_tui.app.screens.dialogs import AskPath

        self.app.push_screen(AskPath("Open a folder of runs (a --runs-dir, or a sweep folder)", str(self.session.runs_root)),
                             callback=self._folder_chosen)

    def _folder_chosen(self, folder: str | None) -> None:
        if not folder:
            return
        path = Path(folder).expanduser()
        if not path.is_dir():
            self.notify(f"{printable(folder)}: not a folder", severity="error", markup=False)
            return
        self.session.runs_root = path
        self.marked.clear()
        self.action_refresh()

    def _highlighted(self) -> RunSummary | None:
        row = self.query_one(DataTable).cursor_row
        return self.summaries[row] if 0 <= row < len(self.summaries) else None

    def action_resume(self) -> None:
        s = self._highlighted()
        if s is None:
            return
        if not s.resumable:
            why = "it is running" if s.status == "running" else f"it is {s.status}" if s.status not in ("interrupted", "crashed", "failed") \
                else "it has no resume state (it stopped before its first save)"
            self.notify(f"{printable(s.path.name)} cannot be resumed: {why}.", severity="warning", markup=False)
            return
        from resnet_tui.app.screens.dialogs import AskPath

        self.app.push_screen(AskPath(f"Resume {printable(s.path.name)}: train to how many epochs in all?",
                                     str(s.epochs or ""), hint="Enter resumes · Esc cancels"),
                             callback=lambda epochs: self._resume_chosen(s, epochs))

    def _resume_chosen(self, s: RunSummary, epochs: str | None) -> None:
        if epochs is not None:
            self.post_message(ResumeRun(s.path, None if epochs == str(s.epochs) else epochs))

    def action_stop(self) -> None:
        from resnet_tui.core.errors import UserError
        from resnet_tui.core.lock import request_stop

        s = self._highlighted()
        if s is None:
            return
        try:
            who = request_stop(s.path)
        except UserError as e:
            self.notify(str(e), severity="warning", markup=False)
            return
        self.notify(f"Asked {who.describe()} to stop after its batch and save.", title="Stopping", markup=False)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_selected(event.cursor_row)

    def _show_selected(self, row: int) -> None:
        if 0 <= row < len(self.summaries):
            s = self.summaries[row]
            hint = "  (x stops it)" if s.status == "running" else "  (R resumes it)" if s.resumable else ""
            self.query_one("#runs-selected", Static).update(plain(f"{s.path}{hint}", style="dim"))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.open_run(Path(str(event.row_key.value)))

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if 0 <= table.cursor_row < len(self.summaries):
            self.open_run(self.summaries[table.cursor_row].path)

    def open_run(self, path: Path) -> None:
        from resnet_tui.app.screens.run_view import RunViewScreen

        self.app.push_screen(RunViewScreen(path))

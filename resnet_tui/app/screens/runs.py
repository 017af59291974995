"""Screen 5, Runs: the run directories under the runs root, and the runs inside its sweep folders, newest first. Opening one
shows its curves and evaluation, and follows it live while it is still being written (the same viewer as
`resnet-tui watch`). Space marks runs, c compares the marked ones (their loss curves in one chart, and a table
of what differs between them and their final numbers); o opens another folder of runs (a --runs-dir, or one sweep folder).
/ filters the list (core.run_filter: words and expressions like optimizer=adam lr<0.01 acc>0.8), < and > choose the
column it is sorted by (a click on a header too), i reverses it; the header marks it with ▲ or ▼.

The table fits its width: columns give way by priority (the least telling first; a few first take a shorter form), so
that no cell is cut and the Run column always shows. The sorted column stays."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import DataTable, Input, Static

from resnet_tui.core.errors import UserError
from resnet_tui.core.run_filter import RunFilter, parse_filter
from resnet_tui.core.run_filter import run_name as core_run_name
from resnet_tui.core.runs import RunSummary, default_descending, list_runs, sort_runs
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
    return core_run_name(s.path, root)


def _fmt(x: Any, spec: str) -> str:
    return format(x, spec) if isinstance(x, (int, float)) else "-"


# Cells: strings from the run's files are Text (a DataTable would read a str as markup).
Cell = Callable[[RunSummary, str], Any]


@dataclass(frozen=True)
class Column:
    """A column of the runs table: its key (also its full label), the core.runs sort column, its cell, and optionally a
    shorter label and cell it takes before it gives way."""

    key: str
    sort: str | None
    cell: Cell
    short_label: str | None = None
    short_cell: Cell | None = None

    def label(self, short: bool = False) -> str:
        return self.short_label if short and self.short_label else self.key

    def cell_of(self, short: bool = False) -> Cell:
        return self.short_cell if short and self.short_cell else self.cell


COLUMNS = (
    Column("✓", None, lambda s, name: Text("")),  # the mark: filled in by run_row
    Column("Date (UTC)", "started", lambda s, name: plain(s.started[:16]), "Date", lambda s, name: plain(s.started[5:16])),
    Column("Optimizer", "optimizer", lambda s, name: plain(s.optimizer or "?"), "Opt"),
    Column("LR", "lr", lambda s, name: _fmt(s.lr, "g") if s.lr is not None else "?"),
    Column("Epochs", "epochs", lambda s, name: f"{s.epochs_done}/{s.epochs}" if s.epochs is not None else str(s.epochs_done)),
    Column("Last loss", "last_loss", lambda s, name: _fmt(s.last_loss, ".4f")),
    Column("Accuracy", "accuracy", lambda s, name: _fmt(s.accuracy, ".2%"), "Acc"),
    Column("NLL", "nll", lambda s, name: _fmt(s.nll, ".4f")),
    Column("img/s", "images_per_sec", lambda s, name: _fmt(s.images_per_sec, ".0f")),
    Column("Status", "status", lambda s, name: status_text(s.status)),
    Column("Run", "name", lambda s, name: plain(name)),
)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
SORTABLE = [c.key for c in COLUMNS if c.sort is not None]
# How the table gives way when it is narrower than its columns, in order: the least telling columns go first; a few
# first take a shorter form. The Run column never goes, nor the sorted one (it may take its shorter form).
GIVE_WAY = (("img/s", "drop"), ("NLL", "drop"), ("Last loss", "drop"), ("Date (UTC)", "short"), ("Optimizer", "short"),
            ("Accuracy", "short"), ("Epochs", "drop"), ("LR", "drop"), ("Date (UTC)", "drop"), ("Optimizer", "drop"),
            ("Accuracy", "drop"), ("Status", "drop"))
MIN_RUN_WIDTH = 12
CELL_PADDING = 2  # a DataTable cell's padding, left and right


def _plain(cell: Any) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def sort_arrow(descending: bool) -> str:
    return "▼" if descending else "▲"


@dataclass
class TableLayout:
    """The columns shown (key -> whether in their short form) and the width the run names are shortened to (None: full)."""

    shown: dict[str, bool]
    run_width: int | None = None


def fit_columns(rows: list[tuple[RunSummary, str]], width: int, sort_key: str, descending: bool) -> TableLayout:
    """The columns that fit `width` cells (GIVE_WAY's order), measured on the rows' cells and the labels (the sorted
    one with its arrow); if even the fewest do not fit, the run names are shortened to the rest."""

    def column_width(key: str, short: bool) -> int:
        col = COLUMN_BY_KEY[key]
        label = col.label(short) + (f" {sort_arrow(descending)}" if key == sort_key else "")
        cell = col.cell_of(short)
        return max([cell_len(label), 1, *(cell_len(_plain(cell(s, name))) for s, name in rows)]) + CELL_PADDING

    shown = {c.key: False for c in COLUMNS}
    total = sum(column_width(k, short) for k, short in shown.items())
    for key, step in GIVE_WAY:
        if total <= width:
            break
        if key not in shown or (step == "drop" and key == sort_key) or (step == "short" and shown[key]):
            continue
        total -= column_width(key, shown[key])
        if step == "drop":
            del shown[key]
        else:
            shown[key] = True
            total += column_width(key, True)
    if total <= width:
        return TableLayout(shown)
    rest = width - (total - column_width("Run", False)) - CELL_PADDING
    return TableLayout(shown, max(MIN_RUN_WIDTH, rest))


def shorten(name: str, width: int) -> str:
    """A run name in `width` cells: its start and its end (where sweep runs differ), an ellipsis between."""
    if cell_len(name) <= width:
        return name
    tail = (width - 1) * 2 // 3
    return name[: width - 1 - tail] + "…" + name[len(name) - tail:]


def run_row(s: RunSummary, root: Path | None = None, marked: bool = False, layout: TableLayout | None = None) -> tuple[Any, ...]:
    """The table's cells of a run, for the columns `layout` shows (all of them, in full, without one)."""
    name = run_name(s, root) if root is not None else s.path.name
    shown = layout.shown if layout is not None else {c.key: False for c in COLUMNS}
    cells: list[Any] = []
    for key, short in shown.items():
        col = COLUMN_BY_KEY[key]
        if key == "✓":
            cells.append(Text("✓", style="bold green") if marked else Text(""))
        elif key == "Run" and layout is not None and layout.run_width is not None:
            cells.append(plain(shorten(name, layout.run_width)))
        else:
            cells.append(col.cell_of(short)(s, name))
    return tuple(cells)


class RunsScreen(AppScreen):
    NAV = "runs"
    AUTO_FOCUS = "#runs-table"
    # The footer shows the few keys that matter most, so that it fits 80 columns (the info line names the others);
    # ? lists them all.
    BINDINGS = [
        Binding("c", "compare", "Compare"),
        Binding("/", "filter", "Filter", tooltip="filter: words, or optimizer=adam lr<0.01 acc>0.8; Esc clears"),
        Binding(">", "sort(1)", "Sort", tooltip="next sort column (< previous, i reverses; a header click sorts too)"),
        # no description: the help lists these under / and >
        Binding("<", "sort(-1)", "", show=False),
        Binding("i", "reverse_sort", "", show=False),
        Binding("escape", "clear_filter", "", show=False),
        Binding("space", "mark", "Mark", show=False, tooltip="mark a run for comparing (c) or the lens (l)"),
        Binding("r", "refresh", "Refresh", show=False),
        Binding("enter", "open", "Open", show=False),
        Binding("l", "lens", "Lens", show=False, tooltip="residual lens: 2 marked runs side by side, or the highlighted"),
        Binding("o", "open_folder", "Folder", show=False),
        Binding("R", "resume", "Resume", show=False, tooltip="resume the highlighted interrupted or crashed run here (asks for the epochs)"),
        Binding("x", "stop", "Stop run", show=False, tooltip="stop the highlighted live run (any process) after its batch; it saves"),
    ]
    DEFAULT_CSS = """
    RunsScreen #runs-top { height: auto; }
    RunsScreen #runs-filter-bar { height: 1; padding: 0 1; display: none; }
    RunsScreen #runs-filter-bar.-shown { display: block; }
    RunsScreen #runs-filter-label { width: auto; color: $text-muted; }
    RunsScreen #runs-filter { width: 1fr; }
    RunsScreen #runs-filter-status { height: auto; padding: 0 1; display: none; }
    RunsScreen #runs-filter-status.-error { color: $error; text-style: bold; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.all_runs: list[RunSummary] = []  # every run of the runs root, as listed
        self.summaries: list[RunSummary] = []  # the table's rows: the runs the filter keeps, in the order shown
        self.marked: set[Path] = set()
        self.sort_key = "Date (UTC)"  # a key of COLUMNS
        self.descending = default_descending("started")
        self.filter = RunFilter()
        self.filter_error = ""
        self.table_layout: TableLayout | None = None

    def compose_body(self) -> ComposeResult:
        with Vertical(id="runs-top"):
            yield Static("", id="runs-info")
            with Horizontal(id="runs-filter-bar"):
                yield Static("Filter / ", id="runs-filter-label")
                yield Input(placeholder="optimizer=adam lr<0.01 acc>0.8 status=crashed, or words of a name", id="runs-filter",
                            compact=True)
            yield Static("", id="runs-filter-status")
        table: DataTable[Any] = DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield table
        yield Static("", id="runs-selected")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.action_refresh()

    def on_resize(self, event: Any) -> None:
        super().on_resize(event)
        if self.is_mounted:
            self._fill_table()

    @property
    def sort_column(self) -> str:
        """The core.runs sort column of the sorted table column."""
        return COLUMN_BY_KEY[self.sort_key].sort or "started"

    def action_refresh(self) -> None:
        self.all_runs = list_runs(self.session.runs_root, include_sweeps=True)
        self.marked &= {s.path for s in self.all_runs}
        self._fill_table()

    def _fill_table(self) -> None:
        """Filter and sort the runs and rebuild the table with the columns that fit; the cursor stays on its run."""
        root = self.session.runs_root
        table = self.query_one(DataTable)
        keep = self._highlighted()
        shown = [s for s in self.all_runs if self.filter.matches(s, run_name(s, root))]
        self.summaries = sort_runs(shown, self.sort_column, self.descending)
        rows = [(s, run_name(s, root)) for s in self.summaries]
        self.table_layout = fit_columns(rows, self._table_width(len(rows)), self.sort_key, self.descending)
        table.clear(columns=True)
        for key, short in self.table_layout.shown.items():
            label = COLUMN_BY_KEY[key].label(short)
            sorted_here = key == self.sort_key
            table.add_column(Text(f"{label} {sort_arrow(self.descending)}" if sorted_here else label, style="bold" if sorted_here else ""), key=key)
        for s in self.summaries:
            table.add_row(*run_row(s, root, s.path in self.marked, self.table_layout), key=str(s.path))
        self._render_info()
        if self.summaries:
            paths = [s.path for s in self.summaries]
            table.move_cursor(row=paths.index(keep.path) if keep is not None and keep.path in paths else 0)
            self._show_selected(table.cursor_row)
        else:
            self.query_one("#runs-selected", Static).update("")

    def _table_width(self, rows: int) -> int:
        """The cells a row of the table has: the screen's width, less a vertical scrollbar when the rows overflow."""
        table = self.query_one(DataTable)
        width = self.app.size.width
        height = table.size.height or self.app.size.height - 6
        if rows + 1 > height:  # the header and the rows
            width -= table.styles.scrollbar_size_vertical
        return width

    def _render_info(self) -> None:
        root = self.session.runs_root
        running = sum(1 for s in self.all_runs if s.status == "running")
        # Content parts are text, not markup (the root comes from the user); styles as the rest of the app's markup
        parts: list[str | tuple[str, str]] = []
        if not self.all_runs:
            parts.append(f"No runs in {printable(root)} yet: train one on screen 1, or o opens another folder.")
        else:
            n, total = len(self.summaries), len(self.all_runs)
            count = f"{n} of {total} runs" if self.filter else f"{total} run{'s' if total != 1 else ''}"
            parts += [(count, "bold"), f" in {printable(root)}"]
            skipped = sum(s.skipped for s in self.all_runs)
            for count_, what, style in ((running, "running", "bold cyan"), (len(self.marked), "marked", "bold green"),
                                        (skipped, f"damaged line{'s' if skipped != 1 else ''} skipped", "yellow")):
                if count_:
                    parts += [" · ", (f"{count_} {what}", style)]
            parts.append(" · Enter opens · Space marks, c compares · / filters, < > sort, i reverses · l lens, R resumes, x stops, o folder")
        self.query_one("#runs-info", Static).update(Content.assemble(*parts))

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

    def _marked_runs(self) -> list[RunSummary]:
        """The marked runs in the table's order, those the filter hides included (after those it shows)."""
        shown = [s for s in self.summaries if s.path in self.marked]
        hidden = [s for s in sort_runs(self.all_runs, self.sort_column, self.descending) if s.path in self.marked and s not in shown]
        return shown + hidden

    def action_compare(self) -> None:
        """Compare the marked runs (in the list's order); with none marked, say how to mark them."""
        chosen = self._marked_runs()
        if not chosen:
            self.notify("Mark runs with Space first, then press c.", severity="warning")
            return
        from resnet_tui.app.screens.compare import CompareScreen

        root = self.session.runs_root
        self.app.push_screen(CompareScreen([(s.path, run_name(s, root)) for s in chosen]))

    def action_lens(self) -> None:
        """The Lens view of the marked runs (the first two, side by side), or of the highlighted run."""
        chosen = self._marked_runs() or [s for s in [self._highlighted()] if s is not None]
        if not chosen:
            return
        from resnet_tui.app.screens.lens import MAX_RUNS, LensScreen

        if len(chosen) > MAX_RUNS:
            self.notify(f"The lens shows {MAX_RUNS} runs side by side: the first {MAX_RUNS} marked.", severity="warning")
        root = self.session.runs_root
        self.app.push_screen(LensScreen([(s.path, run_name(s, root)) for s in chosen]))

    # ---------------------------------------------------------------- sorting and filtering

    def action_sort(self, step: int) -> None:
        """Sort by the next (step 1) or previous (-1) sortable column, in that column's natural order."""
        i = (SORTABLE.index(self.sort_key) + step) % len(SORTABLE)
        self._sort_by(SORTABLE[i])

    def _sort_by(self, key: str, descending: bool | None = None) -> None:
        self.sort_key = key
        self.descending = default_descending(self.sort_column) if descending is None else descending
        self._fill_table()

    def action_reverse_sort(self) -> None:
        self._sort_by(self.sort_key, not self.descending)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a header sorts by its column; on the sorted one, reverses the order."""
        key = str(event.column_key.value)
        if key in SORTABLE:
            self._sort_by(key, not self.descending if key == self.sort_key else None)

    def action_filter(self) -> None:
        """Show the filter line and put the cursor in it."""
        self.query_one("#runs-filter-bar").add_class("-shown")
        self.query_one("#runs-filter", Input).focus()
        self._show_filter_status()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id != "runs-filter":
            return
        event.stop()
        try:
            self.filter, self.filter_error = parse_filter(event.value), ""
        except UserError as e:
            self.filter_error = str(e)  # the list stays as the last filter that parsed left it
        else:
            self._fill_table()
        self._show_filter_status()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "runs-filter":
            event.stop()
            self.query_one(DataTable).focus()

    def on_descendant_focus(self, event: Any) -> None:
        self._show_filter_status()  # the hint shows while the filter has the cursor

    def on_descendant_blur(self, event: Any) -> None:
        self._show_filter_status()

    def action_clear_filter(self) -> None:
        """Esc: clear and hide the filter; without one, leave the focused field as everywhere else."""
        bar = self.query_one("#runs-filter-bar")
        if not bar.has_class("-shown") and not self.filter:
            self.app.action_leave_field()  # type: ignore[attr-defined]
            return
        bar.remove_class("-shown")
        self.query_one("#runs-filter", Input).value = ""  # posts Changed, but the filter is cleared here and now
        self.filter, self.filter_error = RunFilter(), ""
        self.query_one(DataTable).focus()
        self._fill_table()
        self._show_filter_status()

    def _show_filter_status(self) -> None:
        status = self.query_one("#runs-filter-status", Static)
        shown = self.query_one("#runs-filter-bar").has_class("-shown") and self.query_one("#runs-filter", Input).has_focus
        status.set_class(bool(self.filter_error), "-error")
        if self.filter_error:
            status.update(plain(self.filter_error))
        elif shown:
            status.update(Text("words of a name, or field op value: optimizer=adam lr<0.01 acc>0.8 status=crashed · "
                               "Enter: the list · Esc clears", style="dim"))
        else:
            status.update("")
        status.display = shown or bool(self.filter_error)

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

"""Evaluation results: the summary line, the confusion table (a cursor over its cells; Enter on a cell asks for its
images) and per-class precision/recall/F1.

The table's colour is each cell's share of its row (core.eval_views.share_level): a red ramp for mistakes, a green one
for the diagonal. It is drawn for what the terminal shows: backgrounds from dim to bright in 256 colours and truecolor,
the 8 standard colours, bold and filled cells in 8/16-colour terminals, and without colour (NO_COLOR) by weight and a
shade character after each number."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.geometry import Size
from textual.message import Message
from textual.widget import Widget
from textual.widgets import Static

from resnet_tui.core.eval_views import SHARE_LEVELS, share_level
from resnet_tui.plain_text import plain, printable
from resnet_tui.app.widgets.samples import PredictionCard  # noqa: F401  (the sample cards lived here; tests import them from here)

TITLE = "confusion (rows: true, columns: predicted)"
HEADER_LINES = 2  # the title and the column names; the rows follow
MAX_LABEL = 8  # class names longer than this are cut in the first column
# 256 colours and truecolor: backgrounds for levels 1..8, from dim to bright
MISTAKE_RAMP = ("#3a1414", "#5a1010", "#781010", "#961010", "#b41414", "#cc1c1c", "#e62828", "#ff3c3c")
CORRECT_RAMP = ("#143a1a", "#105a18", "#0f7420", "#108e28", "#18a834", "#34c048", "#5cd866", "#88f088")
SHADES = "░░▒▒▓▓██"  # levels 1..8 without colour


def colour_mode(app: Any) -> str:
    """"none" (NO_COLOR), "standard" (8 or 16 colours, e.g. TERM=xterm) or "full" (256 colours or truecolor), from the
    one reading of the terminal's depth the images use too (a headless app draws in truecolor unless forced)."""
    from resnet_tui.app.widgets.pixels import app_color_depth

    depth = app_color_depth(app)
    return "none" if depth == "none" else "full" if depth in ("256", "truecolor") else "standard"


def cell_style(level: int, diagonal: bool, mode: str) -> str:
    """The style of a confusion cell at colour `level` (0: empty) in colour `mode`."""
    if level == 0:
        return "dim"
    if mode == "none":
        return "dim" if level <= 2 else ("" if level <= 5 else "bold")
    if mode == "standard":  # four steps of the 8 colours: the number coloured, bold, then on a filled cell
        step = (level - 1) // 2
        if diagonal:
            return ("green", "bold green", "black on green", "bold black on green")[step]
        return ("red", "bold red", "white on red", "bold white on red")[step]
    background = (CORRECT_RAMP if diagonal else MISTAKE_RAMP)[level - 1]
    if diagonal and level >= 6:
        return f"bold #000000 on {background}"
    return f"{'bold ' if level >= 4 else ''}#f0f0f0 on {background}"


class ConfusionTable(Widget, can_focus=True):
    """The confusion matrix of an EvalResult with a cursor: arrow keys or a click move it, Enter (or a double click)
    posts CellChosen. It starts on the largest mistake."""

    DEFAULT_CSS = """
    ConfusionTable { width: 1fr; height: auto; text-wrap: nowrap; text-overflow: ellipsis; display: none; }
    ConfusionTable:focus { background: $accent 12%; }
    """
    BINDINGS = [
        Binding("up", "move(-1, 0)", "Cell up", show=False),
        Binding("down", "move(1, 0)", "Cell down", show=False),
        Binding("left", "move(0, -1)", "Cell left", show=False),
        Binding("right", "move(0, 1)", "Cell right", show=False),
        Binding("enter", "choose", "Show the cell's images"),
    ]

    class CellChosen(Message):
        """Enter on a cell: show the test images of true class `true_class` predicted as `pred_class`."""

        def __init__(self, table: "ConfusionTable", true_class: int, pred_class: int) -> None:
            super().__init__()
            self.table, self.true_class, self.pred_class = table, true_class, pred_class

        @property
        def control(self) -> "ConfusionTable":
            return self.table

    def __init__(self, drill_down: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: Any = None
        self.cursor = (0, 0)  # (true class, predicted class)
        self.drill_down = drill_down  # whether Enter offers the cell's images (a run's view has none to show)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.drill_down if action == "choose" else True

    # ------------------------------------------------------------ state

    def show(self, result: Any | None) -> None:
        self.result = result
        if result is not None:
            self.cursor = largest_mistake(result.confusion)
        self.display = result is not None  # nothing to focus before there is a result
        self.refresh(layout=True)

    def move_to(self, true_class: int, pred_class: int) -> None:
        k = self.size_k
        if k:
            self.cursor = (min(max(true_class, 0), k - 1), min(max(pred_class, 0), k - 1))
            self.refresh()

    @property
    def size_k(self) -> int:
        return len(self.result.confusion) if self.result is not None else 0

    def action_move(self, rows: int, cols: int) -> None:
        self.move_to(self.cursor[0] + rows, self.cursor[1] + cols)

    def action_choose(self) -> None:
        if self.size_k:
            self.post_message(self.CellChosen(self, *self.cursor))

    def on_click(self, event: events.Click) -> None:
        cell = self.cell_at(event.get_content_offset(self))
        if cell is None:
            return
        self.move_to(*cell)
        if event.chain >= 2 and self.drill_down:
            self.action_choose()

    def cell_at(self, offset: Any) -> tuple[int, int] | None:
        """The (true, predicted) cell at a content offset, or None outside the cells."""
        if offset is None or not self.size_k:
            return None
        row, x = offset.y - HEADER_LINES, offset.x - self.label_width
        col = x // self.cell_width if x >= 0 else -1
        return (row, col) if 0 <= row < self.size_k and 0 <= col < self.size_k else None

    # ------------------------------------------------------------ geometry

    @property
    def label_width(self) -> int:
        names = [printable(c)[:MAX_LABEL] for c in self.result.classes] if self.result is not None else []
        return max([len("true"), *map(len, names)])

    @property
    def cell_width(self) -> int:
        """One space, then the number right-aligned (and its shade character without colour), at least 5 wide."""
        biggest = max((v for row in self.result.confusion for v in row), default=0) if self.result is not None else 0
        shade = 1 if colour_mode(self.app) == "none" else 0
        return 1 + max(5, len(str(biggest)) + shade)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        if not self.size_k:
            return len(TITLE)
        return max(len(TITLE), self.label_width + self.size_k * self.cell_width)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return HEADER_LINES + self.size_k + 2 if self.size_k else 1

    # ------------------------------------------------------------ drawing

    def render(self) -> Text:
        if not self.size_k:
            return Text("")
        r, mode = self.result, colour_mode(self.app)
        label_w, cell_w, (cur_t, cur_p) = self.label_width, self.cell_width, self.cursor
        focused = self.has_focus
        t = Text(no_wrap=True, overflow="crop")
        t.append(TITLE, style="bold reverse" if focused else "bold")  # focused: the title is a bar, as a selected tab
        t.append("\n")
        t.append("true".ljust(label_w), style="bold")
        for j, name in enumerate(r.classes):
            t.append(printable(name)[: cell_w - 1].rjust(cell_w), style="bold underline" if j == cur_p else "bold")
        t.append("\n")
        for i, row in enumerate(r.confusion):
            total = sum(row)
            t.append(printable(r.classes[i])[:MAX_LABEL].ljust(label_w), style="bold underline" if i == cur_t else "bold")
            for j, v in enumerate(row):
                level = share_level(v, total)
                shown = f"{v}{SHADES[level - 1] if mode == 'none' and level else ''}".rjust(cell_w - 1)
                style = cell_style(level, i == j, mode)
                t.append(" ")
                t.append(shown, style=cursor_style(style, mode, focused) if (i, j) == (cur_t, cur_p) else style)
            t.append("\n")
        t.append_text(self.cursor_line())
        t.append("\n")
        t.append_text(self.legend(mode))
        return t

    def cursor_line(self) -> Text:
        r = self.result
        true_class, pred_class = self.cursor
        count, total = r.confusion[true_class][pred_class], sum(r.confusion[true_class])
        t = Text("› ", style="bold")
        t.append("true ")
        t.append_text(plain(r.classes[true_class], "bold"))
        t.append(" → ")
        t.append_text(plain(r.classes[pred_class], "bold"))
        t.append(f": {count} image{'s' if count != 1 else ''}" + (f", {count / total:.0%} of the row" if total else ""))
        t.append(" · Enter shows them" if self.has_focus and self.drill_down else "", style="dim")
        return t

    def legend(self, mode: str) -> Text:
        """`row share >0 ▁▁▁▁▁▁▁▁ 100%  correct ▁▁▁▁▁▁▁▁ 100%`: the colour levels of mistakes and of the diagonal."""
        t = Text("row share >0 ", style="dim")
        for diagonal in (False, True):
            if diagonal:
                t.append("  correct ", style="dim")
            for level in range(1, SHARE_LEVELS + 1):
                t.append(" " if mode == "full" else SHADES[level - 1], style=cell_style(level, diagonal, mode))
            t.append(" 100%", style="dim")
        return t


def cursor_style(style: str, mode: str, focused: bool) -> str:
    """The cursor's cell: filled white in 8 colours (no other cell is), reversed otherwise; underlined when unfocused."""
    if not focused:
        return f"{style} underline bold"
    return "bold black on white" if mode == "standard" else f"{style} reverse bold"


def largest_mistake(confusion: list[list[int]]) -> tuple[int, int]:
    """The off-diagonal cell with the most images (the first such), else (0, 0)."""
    best, at = 0, (0, 0)
    for i, row in enumerate(confusion):
        for j, v in enumerate(row):
            if i != j and v > best:
                best, at = v, (i, j)
    return at


def per_class_renderable(result: Any) -> Table:
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False, title="per class", title_justify="left")
    for name in ("class", "precision", "recall", "F1", "support"):
        t.add_column(name, justify="left" if name == "class" else "right", no_wrap=True)
    for i, c in enumerate(result.classes):
        t.add_row(plain(c), f"{result.precision[i]:.3f}", f"{result.recall[i]:.3f}", f"{result.f1[i]:.3f}", str(sum(result.confusion[i])))
    return t


def summary_text(result: Any) -> Text:
    text = Text()
    text.append("eval NLL ", style="bold")
    text.append(f"{result.nll:.4f}")
    text.append("   accuracy ", style="bold")
    text.append(f"{result.accuracy:.2%}", style="bold green")
    text.append(f"   ({result.n:,} test images)")
    return text


class EvalReport(Vertical):
    """Summary line, confusion table (with its cursor) and per-class table of one EvalResult."""

    DEFAULT_CSS = """
    EvalReport { height: auto; }
    EvalReport > Static { height: auto; margin-bottom: 1; }
    EvalReport > ConfusionTable { margin-bottom: 1; }
    """

    def __init__(self, drill_down: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.drill_down = drill_down  # Enter on a confusion cell asks for its images (ConfusionTable.CellChosen)

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-summary")
        yield ConfusionTable(drill_down=self.drill_down, id="confusion")
        yield Static("", id="per-class")

    def show(self, result: Any | None) -> None:
        self.query_one(ConfusionTable).show(result)
        if result is None:
            for w in self.query(Static):
                w.update("")
            return
        self.query_one("#eval-summary", Static).update(summary_text(result))
        self.query_one("#per-class", Static).update(per_class_renderable(result))

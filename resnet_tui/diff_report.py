"""Rich renderings of the change from evaluation A to evaluation B (core.eval_diff.EvalDiff), for
`resnet-tui --no-ui evaluate A --against B` and the app's diff screen.

Every change is B - A, written with its sign; colour only repeats what the sign says: green where B is better
(accuracy or recall up, NLL down, a diagonal cell up, an error cell down), red where it is worse. In a pipe, or
with NO_COLOR, the text is plain. Rich only (no torch), so the app can import it."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from resnet_tui.core.eval_diff import EvalDiff
from resnet_tui.plain_text import plain

BETTER, WORSE, SAME = "green", "red", "dim"


def change_style(change: float, higher_is_better: bool = True) -> str:
    if change == 0:
        return SAME
    return BETTER if (change > 0) == higher_is_better else WORSE


def signed(x: float, fmt: str) -> str:
    """x with its sign: +0.050, -3, 0 (a zero has none)."""
    return format(x, fmt) if x == 0 else format(x, "+" + fmt)


def headline_text(diff: EvalDiff, a_name: str, b_name: str) -> Text:
    """Which two were compared, then accuracy and NLL of each and their change."""
    t = Text()
    t.append("A ", style="bold")
    t.append_text(plain(a_name))
    t.append("\nB ", style="bold")
    t.append_text(plain(b_name))
    t.append("\naccuracy ", style="bold")
    t.append(f"{diff.accuracy_a:.2%} → {diff.accuracy_b:.2%} ")
    t.append(f"{signed(diff.accuracy_change * 100, '.2f')} pts", style=change_style(diff.accuracy_change))
    t.append("   NLL ", style="bold")
    t.append(f"{diff.nll_a:.4f} → {diff.nll_b:.4f} ")
    t.append(signed(diff.nll_change, ".4f"), style=change_style(diff.nll_change, higher_is_better=False))
    t.append(f"   ({diff.n:,} test images{', with flip TTA' if diff.tta else ''}; change: B - A)", style="dim")
    return t


def _table(title: str, compact: bool, gap: int = 2) -> Table:
    """compact (the app): no outer box, as its other tables, and `gap` spaces between columns."""
    if compact:
        return Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, gap - gap // 2, 0, gap // 2), show_edge=False,
                     title=title, title_justify="left")
    return Table(title=title)


def recall_change_table(diff: EvalDiff, compact: bool = False) -> Table:
    """Per class: the number of test images, recall in A and in B, and the change."""
    t = _table("recall per class (B - A)", compact)
    for name in ("class", "images", "recall A", "recall B", "change"):
        t.add_column(name, justify="left" if name == "class" else "right", no_wrap=True)
    for i, c in enumerate(diff.classes):
        change = diff.recall_change[i]
        t.add_row(plain(c), f"{sum(diff.confusion_a[i]):,}", f"{diff.recall_a[i]:.3f}", f"{diff.recall_b[i]:.3f}",
                  Text(signed(change, ".3f"), style=change_style(change)))
    return t


def cell_change_style(change: int, diagonal: bool, large: bool) -> str:
    """Green where B is better (more right on the diagonal, fewer wrong off it), red where worse; bold: a largest change."""
    style = change_style(change, higher_is_better=diagonal)
    return f"bold {style}" if large and change else style


def confusion_change_table(diff: EvalDiff, compact: bool = False, name_width: int = 6) -> Table:
    """The change in each confusion cell, B - A (rows: true class, columns: predicted)."""
    t = _table("confusion change, B - A (rows: true, columns: predicted)", compact, gap=1)  # fits beside the recall at 120
    if compact:  # a long folder name ("automobile") would push the last column off an 80- or 120-column screen
        t.add_column("true", style="bold", no_wrap=True, max_width=8, overflow="ellipsis")
    else:
        t.add_column("true↓ pred→", style="bold", no_wrap=True)
    for c in diff.classes:
        t.add_column(plain(c[:name_width]), justify="right", no_wrap=True)  # class names come from files: text, not markup
    largest = {(c.true, c.predicted) for c in diff.most_changed}
    for i, row in enumerate(diff.confusion_change):
        t.add_row(plain(diff.classes[i]), *[Text(signed(v, "d"), style=cell_change_style(v, i == j, (i, j) in largest))
                                           for j, v in enumerate(row)])
    return t


def most_changed_text(diff: EvalDiff) -> Text:
    """The off-diagonal cells that changed most: `cat → dog +12 (30 → 42)`."""
    t = Text()
    t.append("largest changes in errors (true → predicted): ", style="bold")
    if not diff.most_changed:
        t.append("none, every error count is the same")
        return t
    for k, c in enumerate(diff.most_changed):
        if k:
            t.append(", ")
        t.append_text(plain(f"{diff.classes[c.true]} → {diff.classes[c.predicted]} "))
        t.append(signed(c.change, "d"), style=cell_change_style(c.change, False, False))
        t.append(f" ({c.a} → {c.b})")
    return t


def diff_json(diff: EvalDiff, a_name: str, b_name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"a": a_name, "b": b_name, **diff.to_json(), **(extra or {})}


def print_diff(diff: EvalDiff, a_name: str, b_name: str, as_json: bool = False, extra: dict[str, Any] | None = None) -> None:
    """The diff report on stdout: headline, recall table, confusion change, largest changes (or one JSON object)."""
    if as_json:
        print(json.dumps(diff_json(diff, a_name, b_name, extra)), flush=True)
        return
    con = Console(highlight=False, soft_wrap=False)
    if not con.is_terminal:  # a pipe or a log file: wide enough that no column is cut
        con = Console(highlight=False, soft_wrap=False, width=240)
    con.print(headline_text(diff, a_name, b_name))
    con.print(recall_change_table(diff))
    con.print(confusion_change_table(diff))
    con.print(most_changed_text(diff), soft_wrap=True)
    sys.stdout.flush()

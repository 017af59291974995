"""A lightweight log panel: the last lines of a run's log, scrollable with the keys.

Textual's Log grows its virtual size with every write, and each growth is a layout pass over the whole
screen; during training that is UI time taken from the trainer. This panel has a fixed size and draws
only its visible lines, so a write costs one repaint of a few lines.
"""

from __future__ import annotations

from collections import deque
from typing import Iterable

from rich.segment import Segment
from textual.binding import Binding
from textual.strip import Strip
from textual.widget import Widget


class LogTail(Widget, can_focus=True):
    BINDINGS = [
        Binding("up", "scroll_lines(1)", "Older", show=False),
        Binding("down", "scroll_lines(-1)", "Newer", show=False),
        Binding("pageup", "scroll_page(1)", "Older page", show=False),
        Binding("pagedown", "scroll_page(-1)", "Newer page", show=False),
        Binding("home", "scroll_home_lines", "Oldest", show=False),
        Binding("end", "follow", "Newest (follow)", show=False),
        Binding("left", "shift(-8)", "Scroll left", show=False),
        Binding("right", "shift(8)", "Scroll right", show=False),
    ]
    DEFAULT_CSS = """
    LogTail { height: 5; }
    LogTail:focus { background-tint: $foreground 5%; }
    """

    def __init__(self, max_lines: int = 1000, **kwargs) -> None:
        super().__init__(**kwargs)
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._back = 0  # lines between the bottom of the view and the newest line (0: following)
        self._x = 0  # columns scrolled to the right

    @property
    def lines(self) -> list[str]:
        return list(self._lines)

    def write_line(self, line: str) -> None:
        self.write_lines([line])

    def write_lines(self, lines: Iterable[str]) -> None:
        lines = list(lines)
        if not lines:
            return
        self._lines.extend(lines)
        if self._back:  # scrolled back: keep the same lines in view
            self._back = min(self._back + len(lines), self._max_back())
        self.refresh()

    def clear(self) -> None:
        self._lines.clear()
        self._back = self._x = 0
        self.refresh()

    def _max_back(self) -> int:
        return max(0, len(self._lines) - self.size.height)

    def action_scroll_lines(self, n: int) -> None:
        self._back = max(0, min(self._back + n, self._max_back()))
        self.refresh()

    def action_scroll_page(self, pages: int) -> None:
        self.action_scroll_lines(pages * max(1, self.size.height - 1))

    def action_scroll_home_lines(self) -> None:
        self._back = self._max_back()
        self.refresh()

    def action_follow(self) -> None:
        self._back = 0
        self.refresh()

    def action_shift(self, columns: int) -> None:
        self._x = max(0, self._x + columns)
        self.refresh()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        style = self.rich_style
        end = len(self._lines) - self._back
        index = max(0, end - height) + y
        if index >= end or width <= 0:
            return Strip.blank(width, style)
        text = self._lines[index][self._x:]
        if len(text) > width:
            text = text[: width - 1] + "…"
        return Strip([Segment(text.ljust(width), style)], width)

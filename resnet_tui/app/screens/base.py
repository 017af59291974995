"""What every main screen has: a bar naming the five screens (the current one highlighted), the footer of
keys, and the message shown instead of the layout when the terminal is smaller than 80x24 (the layouts
are designed for 80x24 and up)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.events import Resize
from textual.screen import Screen
from textual.widgets import Footer, Static

from resnet_tui.app.state import Session, session_of

MIN_WIDTH, MIN_HEIGHT = 80, 24
SCREEN_TITLES = (("train", "Train"), ("model", "Model"), ("data", "Data"), ("evaluate", "Evaluate"), ("runs", "Runs"))


class NavBar(Static):
    """`resnet-tui  1 Train  2 Model ...`, plus a marker while a run trains (it goes on behind every screen)."""

    DEFAULT_CSS = """
    NavBar { height: 1; background: $panel; }
    """

    def __init__(self, current: str) -> None:
        super().__init__("", id="nav-bar")
        self.current = current

    def on_mount(self) -> None:
        self.watch(self.app, "training", self._show, init=True)

    def _show(self, training: bool = False) -> None:
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append(" resnet-tui ", style="bold reverse")
        t.append(" ")
        for i, (mode, title) in enumerate(SCREEN_TITLES, start=1):
            if mode == self.current:
                t.append(f" {i} {title} ", style="bold reverse")
            else:
                t.append(f" {i} ", style="bold")
                t.append(f"{title} ")
        if training:
            t.append("  ● training", style="bold green")
        self.update(t)


class TooSmall(Static):
    """Shown (by the stylesheet, through the screen's breakpoint classes) when the terminal is too small."""

    def __init__(self) -> None:
        super().__init__("", id="too-small")

    def show_size(self, width: int, height: int) -> None:
        self.update(f"Make the terminal at least {MIN_WIDTH}x{MIN_HEIGHT}\n(it is {width}x{height} now)\n\nq quits")


class AppScreen(Screen):
    """Subclasses implement `compose_body`; its widgets are hidden while the terminal is too small."""

    NAV = "train"  # which of the five screens this one belongs to

    @property
    def session(self) -> Session:
        """What the screens share (the current run, the runs folder, the form's values, the loaded splits)."""
        return session_of(self.app)

    def compose(self) -> ComposeResult:
        yield NavBar(self.NAV)
        yield TooSmall()
        yield from self.compose_body()
        yield Footer(compact=True)

    def compose_body(self) -> ComposeResult:
        yield from ()

    def on_resize(self, event: Resize) -> None:
        self.query_one(TooSmall).show_size(event.size.width, event.size.height)

    def on_screen_resume(self) -> None:
        self.query_one(TooSmall).show_size(self.app.size.width, self.app.size.height)

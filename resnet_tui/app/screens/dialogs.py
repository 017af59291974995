"""Modal dialogs: confirm quitting while training, ask for a folder, and the list of every key."""

from __future__ import annotations

from typing import Iterable

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static
from rich.table import Table
from rich.text import Text
from rich import box


class ConfirmQuit(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Stop and quit"),
        Binding("n,escape", "answer(False)", "Keep training"),
    ]
    BUTTONS = ("Stop and quit (y)", "Keep training (n)")

    def __init__(self, title: str = "Training is running.", text: str | Text = "Quit now? The run stops after the current batch and saves a resumable state;\n"
                 "the checkpoints of finished epochs are kept.") -> None:
        super().__init__()
        self.title_text, self.text = title, text

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, classes="dialog-title")
            yield Static(self.text)
            with Horizontal(classes="dialog-buttons"):
                yield Button(self.BUTTONS[0], id="yes", variant="error", compact=True)
                yield Button(self.BUTTONS[1], id="no", variant="primary", compact=True)

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ConfirmQuitLeavingRun(ConfirmQuit):
    """Quitting while a run trains in processes of its own (a run on several processes): it goes on without the app."""

    BINDINGS = [
        Binding("y", "answer(True)", "Quit, the run goes on"),
        Binding("n,escape", "answer(False)", "Stay"),
    ]
    BUTTONS = ("Quit (y)", "Stay (n)")


class AskPath(ModalScreen[str | None]):
    """One line of text (a folder, a number); Enter answers it, Esc cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", hint: str = "Enter opens it · Esc cancels") -> None:
        super().__init__()
        self.title_text, self.value, self.hint = title, value, hint

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="ask"):
            yield Label(self.title_text, classes="dialog-title")
            yield Input(self.value, id="ask-input", compact=True)
            yield Static(self.hint, classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def binding_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    rows = []
    for b in bindings:
        if isinstance(b, tuple):
            b = Binding(*b)
        if not b.description:
            continue
        keys = ", ".join(k.strip() for k in b.key.split(","))
        keys = keys.replace("question_mark", "?").replace("left", "←").replace("right", "→")
        rows.append((keys, b.tooltip or b.description))  # the tooltip is the longer wording, where there is one
    return rows


class HelpScreen(ModalScreen[None]):
    """Every key of the app, by screen. Built from the BINDINGS themselves, so it cannot go stale."""

    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="help"):
            yield Label("Keys", classes="dialog-title")
            with VerticalScroll(id="help-body"):
                for title, rows in self.sections:
                    t = Table(box=box.SIMPLE, show_header=False, pad_edge=False, title=title, title_justify="left",
                              title_style="bold")
                    t.add_column("key", style="bold cyan", no_wrap=True, min_width=14)
                    t.add_column("what")
                    for key, what in rows:
                        t.add_row(key, what)
                    yield Static(t)
            yield Label("Esc, ? or q closes this list", classes="dialog-hint")

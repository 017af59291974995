"""The diff of two evaluations (pushed from the Evaluate screen with d): the change from evaluation A, the one shown,
to B, another checkpoint or run evaluated the same way on the same test images, as `resnet-tui --no-ui evaluate A
--against B` prints it: accuracy and NLL, each class's recall, and each confusion cell, as B - A.

PickAgainst asks for B; diff_against, run in a thread worker of the Evaluate screen, evaluates it through
operations.evaluate_source (the one way a source is evaluated) and pushes EvalDiffScreen."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static
from textual.worker import get_current_worker

from resnet_tui.core.errors import UserError
from resnet_tui.core.eval_diff import EvalDiff, diff_evaluations
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.state import ReportError
from resnet_tui.diff_report import confusion_change_table, headline_text, most_changed_text, recall_change_table
from resnet_tui.plain_text import plain, printable

if TYPE_CHECKING:
    from resnet_tui.core.config import TrainConfig
    from resnet_tui.core.events import EvalResult


class EvalDiffScreen(AppScreen):
    """B against A: the headline change, the recall of each class, the confusion change (green where B is better:
    a diagonal cell up or an error cell down; red where worse), and the error cells that changed most."""

    NAV = "evaluate"
    AUTO_FOCUS = "#diff-scroll"
    BINDINGS = [Binding("escape", "app.pop_screen", "Back to evaluate")]
    DEFAULT_CSS = """
    #diff-headline { height: auto; padding: 0 1; border-bottom: solid $primary 40%; }
    #diff-scroll { height: 1fr; padding: 0 1; }
    #diff-tables { height: auto; layout: vertical; }
    EvalDiffScreen.-wide #diff-tables { layout: horizontal; }
    #diff-tables > Static { width: auto; height: auto; margin: 0 2 1 0; }
    #diff-most { height: auto; }
    """

    def __init__(self, diff: EvalDiff, a_name: str, b_name: str) -> None:
        super().__init__()
        self.diff, self.a_name, self.b_name = diff, a_name, b_name

    def compose_body(self) -> ComposeResult:
        yield Static(headline_text(self.diff, self.a_name, self.b_name), id="diff-headline")
        with VerticalScroll(id="diff-scroll"):
            with Horizontal(id="diff-tables"):
                yield Static(recall_change_table(self.diff, compact=True), id="diff-recall")
                yield Static(confusion_change_table(self.diff, compact=True, name_width=5), id="diff-confusion")
            yield Static(most_changed_text(self.diff), id="diff-most")


class PickAgainst(ModalScreen[str | None]):
    """Ask for B: a .pth file, an http(s) URL or a run folder (its last epoch checkpoint). Enter answers with the
    text once it names one (else the dialog says what is wrong and stays); Esc cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PickAgainst { align: center middle; }
    #against-problem { color: $error; height: auto; }
    """

    def __init__(self, value: str = "", a_name: str = "") -> None:
        super().__init__()
        self.value, self.a_name = value, a_name

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="ask"):
            yield Label("Diff against another checkpoint or run", classes="dialog-title")
            if self.a_name:
                yield Static(plain(f"A: {self.a_name}"))
            yield Input(self.value, placeholder="B: a .pth file, an http(s) URL, or a run folder", id="against-input", compact=True)
            yield Static("", id="against-problem")
            yield Static("Enter evaluates B the same way, on the same test images · Esc cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value.strip()
        problem = against_problem(text)
        if problem:
            self.query_one("#against-problem", Static).update(plain(problem))
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


def against_problem(text: str) -> str:
    """Why `text` cannot be B (one line), or "": what `resnet-tui evaluate` refuses before loading a checkpoint
    (operations.resolve_source: a folder without epoch checkpoints), and a local file that does not exist."""
    from resnet_tui.core.operations import resolve_source

    if not text:
        return "B: missing, expected a .pth file, an http(s) URL, or a run folder"
    try:
        source = resolve_source(text, what="B")
    except UserError as e:
        return str(e)
    path = Path(source.checkpoint).expanduser()
    if not source.checkpoint.startswith(("http://", "https://")) and not path.is_file():
        return f"B: got {text!r}, expected an existing .pth file, an http(s) URL, or a run folder (no such file)"
    return ""


def diff_against(screen: AppScreen, result_a: "EvalResult", a_name: str, b_text: str, cfg: "TrainConfig") -> None:
    """In a thread worker of `screen`: evaluate B (`b_text`) as A was (with TTA if A was), on `cfg`'s data and subset
    (the shared test split) and device, then push EvalDiffScreen. Errors (a bad B, other test images than A's) are
    reported in one line; the worker's cancellation stops the evaluation."""
    from resnet_tui.core.operations import evaluate_source, resolve_source

    worker = get_current_worker()
    app = screen.app
    app.call_from_thread(app.notify, printable(f"Evaluating {b_text} to diff against {a_name}…"), title="Diff", markup=False)
    try:
        done = evaluate_source(resolve_source(b_text, what="B"),
                               lambda: screen.session.splits.load(cfg.data, "test", cfg.data_dir, cfg.limit_eval), cfg.device,
                               should_stop=lambda: worker.is_cancelled, tta=result_a.tta)
        if done is None:
            return
        diff = diff_evaluations(result_a, done.result)
    except UserError as e:
        screen.post_message(ReportError(str(e), title="Diff"))
        return
    except Exception as e:  # unreadable files and the like: report, keep the app usable
        screen.post_message(ReportError(f"evaluation of B failed: {type(e).__name__}: {e}", title="Diff"))
        return
    app.call_from_thread(app.push_screen, EvalDiffScreen(diff, a_name, done.checkpoint))


__all__ = ["EvalDiffScreen", "PickAgainst", "against_problem", "diff_against"]

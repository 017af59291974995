"""Screen 4, Evaluate: evaluate a checkpoint (one of the current run's epochs, a path, or a URL such as the
lab's published one) on the test split, with the confusion matrix, per-class scores and sample predictions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from resnet_tui.checkpoint import PRETRAINED_URL
from resnet_tui.config import TrainConfig
from resnet_tui.runs import RunDir
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.widgets.confusion import EvalReport, PredictionGrid

if TYPE_CHECKING:
    from resnet_tui.app.app import ResNetApp

PRETRAINED_LABEL = "the lab's published checkpoint (200 epochs; downloads)"


def checkpoint_options(run_dir: Path | None) -> list[tuple[str, str]]:
    """(label, path) of the current run's epoch checkpoints, newest first, then the lab's published one."""
    options: list[tuple[str, str]] = []
    if run_dir is not None:
        for epoch0, path in reversed(RunDir(run_dir).list_checkpoints()):
            options.append((f"{run_dir.name}: epoch {epoch0 + 1} ({path.name})", str(path)))
    options.append((PRETRAINED_LABEL, PRETRAINED_URL))
    return options


class EvaluateScreen(AppScreen):
    NAV = "evaluate"
    AUTO_FOCUS = "#checkpoint-choice"
    BINDINGS = [
        Binding("e", "evaluate", "Evaluate"),
        Binding("x", "cancel", "Cancel eval", show=False),
    ]

    class Progress(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

    class Finished(Message):
        def __init__(self, source: str, result: Any, split: Any, error: str = "") -> None:
            super().__init__()
            self.source, self.result, self.split, self.error = source, result, split, error

    def __init__(self) -> None:
        super().__init__()
        self.result: Any = None
        self.source = ""
        self.evaluating = False

    @property
    def resnet_app(self) -> "ResNetApp":
        return cast("ResNetApp", self.app)

    def compose_body(self) -> ComposeResult:
        with Vertical(id="eval-controls"):
            with Horizontal(classes="eval-row"):
                yield Label("Checkpoint", classes="eval-label")
                yield Select(checkpoint_options(None), prompt="choose one, or type a path or URL below", compact=True,
                             type_to_search=False, id="checkpoint-choice")
            with Horizontal(classes="eval-row"):
                yield Label("Path or URL", classes="eval-label")
                yield Input(placeholder="a .pth file or an http(s) URL; Enter evaluates", compact=True, id="checkpoint-input")
                yield Button("Evaluate (e)", id="evaluate-button", variant="primary", compact=True)
            with Horizontal(classes="eval-row"):
                yield ProgressBar(total=1, show_eta=False, id="eval-progress")
                yield Static("", id="eval-status")
        with VerticalScroll(id="eval-results"):
            yield EvalReport(id="eval-report")
            yield Label("", id="predictions-title")
            yield PredictionGrid(id="prediction-grid")

    def on_mount(self) -> None:
        self.query_one("#eval-status", Static).update("No evaluation yet.")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.refresh_options()

    def refresh_options(self) -> None:
        select = self.query_one("#checkpoint-choice", Select)
        current = select.value
        options = checkpoint_options(self.resnet_app.current_run_dir)
        select.set_options(options)
        if current is not Select.NULL and any(v == current for _, v in options):
            select.value = current

    @on(Select.Changed, "#checkpoint-choice")
    def _choice_changed(self, event: Select.Changed) -> None:
        if event.value is not Select.NULL:
            self.query_one("#checkpoint-input", Input).value = str(event.value)

    @on(Input.Submitted, "#checkpoint-input")
    def _submitted(self) -> None:
        self.action_evaluate()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "evaluate-button":
            self.action_evaluate()

    def action_evaluate(self, source: str | None = None) -> None:
        """Evaluate `source` (default: the Path or URL field) with the form's data, subset and device."""
        if source is not None:
            self.query_one("#checkpoint-input", Input).value = source
        source = self.query_one("#checkpoint-input", Input).value.strip()
        if not source:
            self.notify("Choose a checkpoint, or type a path or URL first.", severity="warning")
            return
        if self.evaluating:
            self.notify("An evaluation is running; x cancels it.", severity="warning")
            return
        cfg = self.resnet_app.form_config
        self.evaluating = True
        self.source = source
        self.query_one("#eval-progress", ProgressBar).update(total=1, progress=0)
        self._status(f"Evaluating {source} on the test split of {cfg.data}…")
        self._evaluate(source, cfg)

    def action_cancel(self) -> None:
        for worker in self.workers:
            if worker.group == "evaluate":
                worker.cancel()

    def _status(self, markup: str) -> None:
        self.query_one("#eval-status", Static).update(markup)

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluate")
    def _evaluate(self, source: str, cfg: TrainConfig) -> None:
        from resnet_tui.checkpoint import read_state_dict
        from resnet_tui.device import resolve_device
        from resnet_tui.errors import UserError
        from resnet_tui.evaluate import evaluate_checkpoint

        worker = get_current_worker()
        try:
            device = resolve_device(cfg.device)
            read_state_dict(source)  # a bad checkpoint fails before any time is spent on the data
            split = self.resnet_app.load_split_cached(cfg.data, "test", cfg.data_dir, cfg.limit_eval)
            result = evaluate_checkpoint(source, split, device,
                                         on_progress=lambda done, total: self.post_message(self.Progress(done, total)),
                                         should_stop=lambda: worker.is_cancelled)
        except UserError as e:
            self.post_message(self.Finished(source, None, None, str(e)))
        except Exception as e:  # unreadable files and the like: report, keep the app usable
            self.post_message(self.Finished(source, None, None, f"evaluation failed: {type(e).__name__}: {e}"))
        else:
            self.post_message(self.Finished(source, result, split, "" if result is not None else "evaluation cancelled"))

    def on_evaluate_screen_progress(self, message: Progress) -> None:
        self.query_one("#eval-progress", ProgressBar).update(total=message.total, progress=message.done)

    async def on_evaluate_screen_finished(self, message: Finished) -> None:
        self.evaluating = False
        if message.error:
            self._status(f"[b red]{message.error}[/]")
            self.resnet_app.report_error(message.error)
            return
        await self.show_result(message.result, message.split, message.source)
        self.notify(f"accuracy {message.result.accuracy:.2%} on {message.result.n:,} test images", title="Evaluation")

    async def show_result(self, result: Any, split: Any, source: str) -> None:
        """Show an EvalResult; `split` (the evaluated test split, in order) gives the sample images."""
        self.result = result
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.update(total=max(result.n, 1), progress=result.n)
        self._status(f"Evaluated [b]{source}[/]")
        self.query_one(EvalReport).show(result)
        grid = self.query_one(PredictionGrid)
        if split is not None and result.predictions:
            self.query_one("#predictions-title", Label).update("Sample predictions (✗ = wrong)")
            await grid.show(split.images, result.labels, result.predictions, result.classes)
        else:
            self.query_one("#predictions-title", Label).update("")
            await grid.show([], [], [], [])

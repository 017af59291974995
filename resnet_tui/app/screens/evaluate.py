"""Screen 4, Evaluate: evaluate a checkpoint (one of the current run's epochs, a path, or a URL such as the
lab's published one) on the test split, with the confusion matrix, per-class scores and sample predictions.
Enter on a confusion cell shows its images among the samples; the samples can be all, the wrong ones, one class,
by index or shuffled with a seed, a page at a time.
"Which" can instead choose the run's best epoch checkpoint, by its training loss (from metrics.jsonl) or by
its eval loss (every epoch checkpoint evaluated, with progress), as `resnet-tui evaluate --best --by ...`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Button, Input, Label, ProgressBar, Select, Static
from textual.worker import get_current_worker

from resnet_tui.core.config import TrainConfig
from resnet_tui.core.operations import EvalSource, run_dir_of
from resnet_tui.core.runs import RunDir
from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.screens.eval_diff import PickAgainst, diff_against
from resnet_tui.app.state import ReportError
from resnet_tui.app.widgets.confusion import ConfusionTable, EvalReport
from resnet_tui.app.widgets.samples import SampleGrid, SamplesPanel

PRETRAINED_LABEL = "the lab's published checkpoint (200 epochs; downloads)"
WHICH_OPTIONS = [("the run's best epoch by train loss", "train_loss"),
                 ("the run's best epoch by eval loss (evaluates each)", "eval_loss")]


def run_of(source: str, current: Path | None) -> Path | None:
    """The run directory a checkpoint belongs to: the folder itself, the run above checkpoints/, else `current`."""
    return run_dir_of(source) or current


def checkpoint_options(run_dir: Path | None) -> list[tuple[str, str]]:
    """(label, path) of the current run's epoch checkpoints, newest first, then the lab's published one."""
    options: list[tuple[str, str]] = []
    if run_dir is not None:
        for epoch0, path in reversed(RunDir(run_dir).list_checkpoints()):
            options.append((f"{run_dir.name}: epoch {epoch0 + 1} ({path.name})", str(path)))
    from resnet_tui.core.checkpoint import PRETRAINED_URL  # imports torch: only when the screen is first shown

    options.append((PRETRAINED_LABEL, PRETRAINED_URL))
    return options


def _composed(select: Select) -> bool:
    """Whether `select` has composed the label that setting its value updates (it is not, while the screen is
    still being built: evaluate mode sets the run's checkpoints and "Which" as the app opens)."""
    return bool(select.query("SelectCurrent #label"))


class EvaluateScreen(AppScreen):
    NAV = "evaluate"
    # Not a select: characters typed into one are its own (1-5 would not leave the screen); Enter or e evaluates
    # the chosen checkpoint, shift+tab reaches the path and the list
    AUTO_FOCUS = "#evaluate-button"
    BINDINGS = [
        Binding("e", "evaluate", "Evaluate"),
        Binding("x", "cancel", "Cancel eval", show=False),
        Binding("d", "diff_against", "Diff", tooltip="evaluate another checkpoint or run the same way, and show the change from this one"),
        # the results scroll from anywhere (the path field, a select); the focused results scroll themselves
        Binding("pagedown", "scroll_results(1)", "Scroll results", show=False),
        Binding("pageup", "scroll_results(-1)", "Scroll results", show=False),
    ]

    class Progress(Message):
        def __init__(self, done: int, total: int) -> None:
            super().__init__()
            self.done, self.total = done, total

    class Finished(Message):
        def __init__(self, source: str, result: Any, split: Any, error: str = "", note: str = "") -> None:
            super().__init__()
            self.source, self.result, self.split, self.error, self.note = source, result, split, error, note

    def __init__(self) -> None:
        super().__init__()
        self.result: Any = None
        self.source = ""
        self.evaluating = False

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
                yield Label("Which", classes="eval-label")
                yield Select(WHICH_OPTIONS, prompt="this checkpoint", compact=True, id="best-by")  # blank: this checkpoint
            yield ProgressBar(total=1, show_eta=False, id="eval-progress")
            yield Static("", id="eval-status")
        with VerticalScroll(id="eval-results"):
            yield EvalReport(drill_down=True, id="eval-report")
            yield SamplesPanel(id="samples")

    def on_mount(self) -> None:
        self.query_one("#eval-status", Static).update("No evaluation yet.")

    def on_screen_resume(self) -> None:
        super().on_screen_resume()
        self.refresh_options()

    def open_source(self, source: str, best_by: str | None = None) -> None:
        """Evaluate `source` as the app was opened to (`resnet-tui evaluate ...`), with the current run's
        checkpoints listed first."""
        self.refresh_options()
        self.action_evaluate(source, best_by)

    def refresh_options(self) -> None:
        select = self.query_one("#checkpoint-choice", Select)
        if not _composed(select):  # setting a value before the Select has composed its label raises NoMatches
            self.call_after_refresh(self.refresh_options)
            return
        current = select.value
        options = checkpoint_options(self.session.current_run_dir)
        select.set_options(options)
        if current is not Select.NULL and any(v == current for _, v in options):
            select.value = current
        elif len(options) > 1 and not self.query_one("#checkpoint-input", Input).value:
            select.value = options[0][1]  # the current run's newest checkpoint: e evaluates it at once

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

    def action_evaluate(self, source: str | None = None, best_by: str | None = None) -> None:
        """Evaluate `source` (default: the Path or URL field) with the form's data, subset and device.

        A run directory means its last epoch checkpoint, or with best_by="eval_loss" the epoch checkpoint
        with the lowest loss on the test split (as `resnet-tui evaluate --best --by eval_loss`)."""
        which = self.query_one("#best-by", Select)
        if best_by is not None:
            # the screen shows how the checkpoint is chosen (after a refresh: in evaluate mode the list is still being built)
            self._show_which(best_by if best_by in ("train_loss", "eval_loss") else "checkpoint")
        elif which.value in ("train_loss", "eval_loss"):
            best_by = str(which.value)
        if best_by == "checkpoint":
            best_by = None
        if source is not None:
            self.query_one("#checkpoint-input", Input).value = source
            select = self.query_one("#checkpoint-choice", Select)
            if any(value == source for _, value in select._options):
                if _composed(select):
                    select.value = source  # the list shows what is evaluated
                else:
                    self.call_after_refresh(lambda: _composed(select) and setattr(select, "value", source))
        source = self.query_one("#checkpoint-input", Input).value.strip()
        if not source:
            self.notify("Choose a checkpoint, or type a path or URL first.", severity="warning")
            return
        if self.evaluating:
            self.notify("An evaluation is running; x cancels it.", severity="warning")
            return
        cfg = self.session.form.last_valid
        self.evaluating = True
        self.source = source
        self.query_one("#eval-progress", ProgressBar).update(total=1, progress=0)
        self._status(f"Evaluating {source} on the test split of {cfg.data}…" if best_by is None else
                     f"Choosing the best epoch checkpoint of {run_of(source, self.session.current_run_dir) or source} by "
                     f"{best_by.replace('_', ' ')}" + ("" if best_by == "train_loss" else f" (evaluating each on {cfg.data})") + "…")
        self._evaluate(source, cfg, best_by)

    def _show_which(self, value: str) -> None:
        """Set "Which" once its list is built (in evaluate mode the screen is still being composed)."""
        which = self.query_one("#best-by", Select)
        if not _composed(which):
            self.set_timer(0.05, lambda: self._show_which(value))
            return
        if value == "checkpoint":
            which.clear()
        else:
            which.value = value

    def action_cancel(self) -> None:
        for worker in self.workers:
            if worker.group == "evaluate":
                worker.cancel()

    def action_diff_against(self) -> None:
        """Pick B (pre-filled with this result's source: epoch 5 vs epoch 30 is one edit), evaluate it the same way
        in a worker (x cancels it), then show the change from this result."""
        if self.result is None or self.evaluating:
            self.notify("Evaluate a checkpoint first; d then diffs another one against it.", severity="warning")
            return
        self.app.push_screen(PickAgainst(self.source, self.source), lambda b: b is not None and self._diff_against(b))

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluate")
    def _diff_against(self, b: str) -> None:
        diff_against(self, self.result, self.source, b, self.session.form.last_valid)

    def _status(self, markup: str | Text) -> None:
        self.query_one("#eval-status", Static).update(markup)

    @work(thread=True, exclusive=True, exit_on_error=False, group="evaluate")
    def _evaluate(self, source: str, cfg: TrainConfig, best_by: str | None = None) -> None:
        from resnet_tui.core.errors import UserError
        from resnet_tui.core.operations import evaluate_source, resolve_source

        worker = get_current_worker()
        session = self.session
        try:
            if best_by is None:
                what = resolve_source(source, what="checkpoint")  # a run directory: its last epoch checkpoint
            else:  # a run directory, or the run of an epoch checkpoint (else the current run) to choose in
                best_run = run_of(source, session.current_run_dir)
                if best_run is None:
                    raise UserError(f"best checkpoint: got {source!r}, expected a run directory or one of its epoch checkpoints")
                what = EvalSource(str(best_run), best_by)
            done = evaluate_source(what, lambda: session.splits.load(cfg.data, "test", cfg.data_dir, cfg.limit_eval), cfg.device,
                                   on_progress=lambda n, total: self.post_message(self.Progress(n, total)),
                                   should_stop=lambda: worker.is_cancelled, tta=cfg.tta)
        except UserError as e:
            self.post_message(self.Finished(source, None, None, str(e)))
        except Exception as e:  # unreadable files and the like: report, keep the app usable
            self.post_message(self.Finished(source, None, None, f"evaluation failed: {type(e).__name__}: {e}"))
        else:
            if done is None:
                self.post_message(self.Finished(source, None, None, "evaluation cancelled"))
                return
            note = done.best.reason() if done.best is not None else ""
            if done.best is not None and done.best.optimistic:
                note += "; chosen on the same test images, so optimistic"
            self.post_message(self.Finished(done.checkpoint, done.result, done.split, "", note))

    def on_evaluate_screen_progress(self, message: Progress) -> None:
        self.query_one("#eval-progress", ProgressBar).update(total=message.total, progress=message.done)

    async def on_evaluate_screen_finished(self, message: Finished) -> None:
        self.evaluating = False
        if message.error:
            self._status(f"[b red]{message.error}[/]")
            self.post_message(ReportError(message.error))
            return
        await self.show_result(message.result, message.split, message.source, message.note)
        self.notify(f"accuracy {message.result.accuracy:.2%} on {message.result.n:,} test images", title="Evaluation")

    async def show_result(self, result: Any, split: Any, source: str, note: str = "") -> None:
        """Show an EvalResult; `split` (the evaluated test split, in order) gives the sample images. The confusion
        table takes the focus (its cursor is on the largest mistake; Enter shows those images)."""
        self.result = result
        bar = self.query_one("#eval-progress", ProgressBar)
        bar.update(total=max(result.n, 1), progress=result.n)
        self._status(Text.assemble("Evaluated ", (source, "bold"), f" ({note})" if note else ""))
        self.query_one(EvalReport).show(result)
        await self.query_one(SamplesPanel).show_result(result, split.images if split is not None else [])
        self.query_one(ConfusionTable).focus(scroll_visible=False)
        self.query_one("#eval-results", VerticalScroll).scroll_home(animate=False)  # from the top: the summary line first

    async def on_confusion_table_cell_chosen(self, message: ConfusionTable.CellChosen) -> None:
        """Enter on a confusion cell: exactly its images, in the sample grid (focused, so [ ] page through them)."""
        await self.query_one(SamplesPanel).show_cell(message.true_class, message.pred_class)
        self.query_one(SampleGrid).focus(scroll_visible=False)
        self.call_after_refresh(lambda: self.query_one("#samples").scroll_visible(top=True, animate=False))

    def action_scroll_results(self, pages: int) -> None:
        results = self.query_one("#eval-results", VerticalScroll)
        if pages > 0:
            results.scroll_page_down(animate=False)
        else:
            results.scroll_page_up(animate=False)

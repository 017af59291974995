"""Evaluation results: the coloured confusion matrix, per-class precision/recall/F1, and sample predictions."""

from __future__ import annotations

from typing import Any, Sequence

from rich import box
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, Vertical
from textual.widgets import Label, Static

from resnet_tui.app.widgets.pixels import PixelImage
from resnet_tui.plain_text import plain


def confusion_renderable(result: Any) -> Table:
    """Rows are the true class, columns the predicted one; colour by the cell's share of its row (report.cell_style)."""
    from resnet_tui.report import cell_style  # report imports torch; the app starts without it

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 1), show_edge=False,
              title="confusion (rows: true, columns: predicted)", title_justify="left")
    t.add_column("true", style="bold", no_wrap=True)
    for c in result.classes:
        t.add_column(plain(c[:5]), justify="right", no_wrap=True)  # class names come from files: text, not markup
    for i, row in enumerate(result.confusion):
        total = sum(row)
        t.add_row(plain(result.classes[i]), *[Text(str(v), style=cell_style(v, total, i == j)) for j, v in enumerate(row)])
    return t


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
    """Summary line, confusion matrix and per-class table of one EvalResult."""

    DEFAULT_CSS = """
    EvalReport { height: auto; }
    EvalReport > Static { height: auto; margin-bottom: 1; }
    """

    def compose(self) -> ComposeResult:
        yield Static("", id="eval-summary")
        yield Static("", id="confusion")
        yield Static("", id="per-class")

    def show(self, result: Any | None) -> None:
        if result is None:
            for w in self.query(Static):
                w.update("")
            return
        self.query_one("#eval-summary", Static).update(summary_text(result))
        self.query_one("#confusion", Static).update(confusion_renderable(result))
        self.query_one("#per-class", Static).update(per_class_renderable(result))


class PredictionCard(Vertical):
    DEFAULT_CSS = """
    PredictionCard { width: 18; height: auto; padding: 0 1 0 0; }
    PredictionCard > Label { width: 100%; }
    PredictionCard.-wrong > .verdict { color: $error; text-style: bold; }
    PredictionCard.-right > .verdict { color: $success; }
    """

    def __init__(self, index: int, image: Any, true_name: str, pred_name: str) -> None:
        correct = true_name == pred_name
        super().__init__(classes="-right" if correct else "-wrong")
        self.index, self.image, self.true_name, self.pred_name, self.correct = index, image, true_name, pred_name, correct

    def compose(self) -> ComposeResult:
        yield PixelImage(self.image, scale=0.5)
        yield Label(f"#{self.index} true: {self.true_name}")
        yield Label(f"{'✓' if self.correct else '✗'} pred: {self.pred_name}", classes="verdict")


class PredictionGrid(Container):
    """A grid of test images with their true and predicted class; wrong predictions are marked ✗ in red."""

    DEFAULT_CSS = """
    PredictionGrid { layout: grid; grid-size: 4; grid-columns: 18; grid-gutter: 1 1; height: auto; }
    """

    async def show(self, images: Sequence[Any], labels: Sequence[int], predictions: Sequence[int], classes: Sequence[str],
                   count: int = 12) -> None:
        await self.remove_children()
        n = min(count, len(predictions), len(images))
        await self.mount_all(
            PredictionCard(i, images[i], classes[labels[i]], classes[predictions[i]]) for i in range(n)
        )

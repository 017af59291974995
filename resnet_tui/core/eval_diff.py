"""The change from one evaluation to another on the same test images (`resnet-tui evaluate A --against B`, and the
app's diff of two evaluations): accuracy, NLL, each class's recall and each confusion cell, as B - A.

Both evaluations come from operations.evaluate_source, the one way a source is evaluated. Importing this module
imports no torch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from resnet_tui.core.errors import UserError
from resnet_tui.core.events import EvalResult
from resnet_tui.core.operations import EvalSource, Evaluation, choose_from_metrics, evaluate_source

if TYPE_CHECKING:
    from resnet_tui.core.data import Split

MOST_CHANGED = 5  # off-diagonal cells listed as the largest changes


@dataclass(frozen=True)
class CellChange:
    """One confusion cell (row: true class, column: predicted class) in A and in B."""

    true: int
    predicted: int
    a: int
    b: int

    @property
    def change(self) -> int:
        return self.b - self.a


@dataclass(frozen=True)
class EvalDiff:
    """Evaluation B against evaluation A on the same test images; every change is B - A."""

    classes: list[str]
    n: int
    accuracy_a: float
    accuracy_b: float
    nll_a: float
    nll_b: float
    recall_a: list[float]
    recall_b: list[float]
    confusion_a: list[list[int]]  # rows: true class, columns: predicted class
    confusion_b: list[list[int]]
    most_changed: list[CellChange]  # off-diagonal cells by the size of their change, largest first; unchanged ones left out
    tta: bool = False

    @property
    def accuracy_change(self) -> float:
        return self.accuracy_b - self.accuracy_a

    @property
    def nll_change(self) -> float:
        return self.nll_b - self.nll_a

    @property
    def recall_change(self) -> list[float]:
        return [b - a for a, b in zip(self.recall_a, self.recall_b)]

    @property
    def confusion_change(self) -> list[list[int]]:
        return [[b - a for a, b in zip(row_a, row_b)] for row_a, row_b in zip(self.confusion_a, self.confusion_b)]

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n, "classes": self.classes, "tta": self.tta,
            "accuracy": {"a": self.accuracy_a, "b": self.accuracy_b, "change": self.accuracy_change},
            "nll": {"a": self.nll_a, "b": self.nll_b, "change": self.nll_change},
            "recall": {"a": self.recall_a, "b": self.recall_b, "change": self.recall_change},
            "confusion": {"a": self.confusion_a, "b": self.confusion_b, "change": self.confusion_change},
            "most_changed": [{"true": self.classes[c.true], "predicted": self.classes[c.predicted], "a": c.a, "b": c.b,
                              "change": c.change} for c in self.most_changed],
        }


def diff_evaluations(a: EvalResult, b: EvalResult, most: int = MOST_CHANGED) -> EvalDiff:
    """B against A. Raises UserError (one line, naming what differs) unless both evaluated the same classes on the
    same test images: the same count, and the same labels in the same order (or, where a result has no labels,
    as read back from metrics.jsonl, the same number of images per class)."""
    check_comparable(a, b)
    return EvalDiff(
        classes=list(a.classes), n=a.n, accuracy_a=a.accuracy, accuracy_b=b.accuracy, nll_a=a.nll, nll_b=b.nll,
        recall_a=list(a.recall), recall_b=list(b.recall),
        confusion_a=[list(r) for r in a.confusion], confusion_b=[list(r) for r in b.confusion],
        most_changed=most_changed_cells(a.confusion, b.confusion, most), tta=a.tta and b.tta,
    )


def most_changed_cells(a: list[list[int]], b: list[list[int]], most: int = MOST_CHANGED) -> list[CellChange]:
    """The `most` off-diagonal cells whose count changed most (either way); ties in reading order."""
    cells = [CellChange(i, j, a[i][j], b[i][j]) for i in range(len(a)) for j in range(len(a[i])) if i != j]
    changed = [c for c in cells if c.change]
    return sorted(changed, key=lambda c: -abs(c.change))[:most]


def check_comparable(a: EvalResult, b: EvalResult) -> None:
    """One UserError naming the first difference: the class list, the number of test images, or their labels."""
    if list(a.classes) != list(b.classes):
        raise UserError(f"cannot diff the evaluations: their classes differ ({_class_difference(a.classes, b.classes)}); "
                        "expected the same class list")
    if a.n != b.n:
        raise UserError(f"cannot diff the evaluations: their test sets differ (A has {a.n:,} images, B {b.n:,}); "
                        "expected the same test images (same --data and --limit-eval)")
    if a.labels and b.labels:
        wrong = [i for i, (x, y) in enumerate(zip(a.labels, b.labels)) if x != y]
        if wrong or len(a.labels) != len(b.labels):
            first = wrong[0] if wrong else min(len(a.labels), len(b.labels))
            raise UserError(f"cannot diff the evaluations: their test sets differ (both have {a.n:,} images, but "
                            f"{len(wrong):,} labels differ, the first at image #{first}); expected the same test images")
    support_a, support_b = [sum(r) for r in a.confusion], [sum(r) for r in b.confusion]
    if support_a != support_b:
        k = next(i for i, (x, y) in enumerate(zip(support_a, support_b)) if x != y)
        raise UserError(f"cannot diff the evaluations: their test sets differ ({a.classes[k]!r} has {support_a[k]:,} "
                        f"images in A, {support_b[k]:,} in B); expected the same test images")


def _class_difference(a: list[str], b: list[str]) -> str:
    if len(a) != len(b):
        return f"A has {len(a)} classes, B {len(b)}"
    k = next(i for i, (x, y) in enumerate(zip(a, b)) if x != y)
    return f"class {k} is {a[k]!r} in A and {b[k]!r} in B"


# ---------------------------------------------------------------- evaluating both


def check_source(source: EvalSource) -> None:
    """What evaluate_source refuses before it loads any data, checked now, so that a bad B fails before A is
    evaluated: a run's epoch records (by train_loss: the chosen checkpoint) and the checkpoint file. Imports torch."""
    from resnet_tui.core.checkpoint import read_state_dict

    chosen = choose_from_metrics(source)
    if chosen.best_by is None:
        read_state_dict(chosen.checkpoint)


def evaluate_pair(
    a: EvalSource,
    b: EvalSource,
    load_test: Callable[[], "Split"],
    device: str = "auto",
    layers: tuple[int, int, int] | None = None,
    tta: bool = False,
    b_label: str = "B",
    should_stop: Callable[[], bool] | None = None,
) -> tuple[Evaluation, Evaluation] | None:
    """Evaluate A and B (operations.evaluate_source) in the same way on the same test split, loaded once.

    Both sources are checked before the data is loaded; B's errors start with `b_label` (the CLI: "--against").
    None if should_stop() ended it."""
    check_source(a)
    _as_b(b_label, check_source, b)
    loaded: list[Split] = []

    def load_once() -> "Split":
        if not loaded:
            loaded.append(load_test())
        return loaded[0]

    done_a = evaluate_source(a, load_once, device, layers=layers, should_stop=should_stop, tta=tta)
    if done_a is None:
        return None
    done_b = _as_b(b_label, evaluate_source, b, load_once, device, layers=layers, should_stop=should_stop, tta=tta)
    if done_b is None:
        return None
    return done_a, done_b


def _as_b(label: str, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """func(*args, **kwargs), its one-line errors naming B (a checkpoint error would otherwise not say which)."""
    try:
        return func(*args, **kwargs)
    except UserError as e:
        raise UserError(f"{label}: {e}") from None


__all__ = ["MOST_CHANGED", "CellChange", "EvalDiff", "check_comparable", "check_source", "diff_evaluations",
           "evaluate_pair", "most_changed_cells"]

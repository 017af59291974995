"""A run's residual lens as series, read from its records (no torch): what `runs lens` prints and exports, and
what the app's Lens view draws (blocks as rows, stem to fc, over training time as columns)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from resnet_tui.core import events as ev
from resnet_tui.core.records import LENS_QUANTITIES, RunRecords

QUANTITY_LABELS = {
    "ratio": "||F(x)|| / ||x||",
    "grad": "gradient norm",
    "mean": "output mean",
    "std": "output std",
}
CSV_COLUMNS = ("step", "epoch", "batch", "block", *LENS_QUANTITIES)


@dataclass
class LensSeries:
    """The lens measurements of one run that share its last measurement's rows (a resumed run keeps its network)."""

    blocks: list[str]
    measures: list[ev.LensMeasure]

    @classmethod
    def of(cls, records: RunRecords) -> "LensSeries":
        measures = records.lenses
        if not measures:
            return cls([], [])
        blocks = measures[-1].blocks
        return cls(list(blocks), [m for m in measures if m.blocks == blocks])

    def __bool__(self) -> bool:
        return bool(self.measures)

    def picks(self) -> list[ev.LensMeasure]:
        """The first, middle and last measurements (fewer when there are fewer)."""
        n = len(self.measures)
        return [self.measures[i] for i in sorted({0, n // 2, n - 1})] if n else []

    def matrix(self, quantity: str, columns: int) -> list[list[float]]:
        """rows x at most `columns` cells: the measurements split evenly into columns, each cell the mean of the
        finite values in it (NaN where none)."""
        n = len(self.measures)
        cols = max(1, min(columns, n))
        bins = [self.measures[c * n // cols:(c + 1) * n // cols] for c in range(cols)]
        out = []
        for r in range(len(self.blocks)):
            row = []
            for chunk in bins:
                vals = [m.values[quantity][r] for m in chunk if math.isfinite(m.values[quantity][r])]
                row.append(sum(vals) / len(vals) if vals else math.nan)
            out.append(row)
        return out

    def csv_rows(self) -> list[list[object]]:
        """One row per measurement and block (long format), NaN written as empty."""
        return [[m.step, m.epoch, m.batch, block, *[_or_none(m.values[q][r]) for q in LENS_QUANTITIES]]
                for m in self.measures for r, block in enumerate(self.blocks)]


def _or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def value_range(matrices: list[list[list[float]]]) -> tuple[float, float] | None:
    """The (low, high) of the finite values of all matrices, one colour scale for all; None when there are none."""
    vals = [v for m in matrices for row in m for v in row if math.isfinite(v)]
    return (min(vals), max(vals)) if vals else None


def fmt(x: float) -> str:
    """A lens value in at most 9 characters."""
    if not math.isfinite(x):
        return "-"
    if x != 0 and (abs(x) >= 1e4 or abs(x) < 1e-3):
        return f"{x:.2e}"
    return f"{x:.4g}"


def no_lens_line(run_dir: str | Path) -> str:
    return (f"{run_dir}: no lens records (trained with --lens-every 0, or before the lens existed); "
            "train with --lens-every auto to measure it")

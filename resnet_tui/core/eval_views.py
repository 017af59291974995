"""Views of one evaluation for a front end, with no UI: the images of a confusion cell, a chosen set of sample
images (all, the wrong ones, one class; by index or shuffled with a seed), an image's most probable classes, and
the colour level of a confusion cell by its share of its row (the app's confusion table draws the levels)."""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

SHARE_LEVELS = 8  # colour levels of a non-empty confusion cell: 1 (a sliver of its row) .. 8 (all of it)
SampleMode = Union[str, int, tuple[int, int]]  # "all", "wrong", a class index, or a confusion cell (true, predicted)
ORDERS = ("index", "random")


def cell_indices(result: Any, true_class: int, pred_class: int) -> list[int]:
    """The test images (indices into the evaluated split) of true class `true_class` predicted as `pred_class`."""
    return [i for i, (y, p) in enumerate(zip(result.labels, result.predictions)) if y == true_class and p == pred_class]


def _check_class(result: Any, c: Any) -> int:
    if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < len(result.classes):
        raise ValueError(f"class: got {c!r}, expected an index from 0 to {len(result.classes) - 1}")
    return int(c)


def select_samples(result: Any, mode: SampleMode = "all", order: str = "index", seed: int = 0) -> list[int]:
    """The indices of the images to show: mode "all", "wrong" (misclassified), a class index (images of that true
    class) or a (true, predicted) confusion cell; in index order, or shuffled reproducibly by `seed`."""
    labels = np.asarray(result.labels, dtype=np.int64)
    predictions = np.asarray(result.predictions, dtype=np.int64)
    if mode == "all":
        chosen = np.arange(len(labels))
    elif mode == "wrong":
        chosen = np.flatnonzero(labels != predictions)
    elif isinstance(mode, tuple) and len(mode) == 2:
        chosen = np.array(cell_indices(result, _check_class(result, mode[0]), _check_class(result, mode[1])), dtype=np.int64)
    elif isinstance(mode, (int, np.integer)) and not isinstance(mode, bool):
        chosen = np.flatnonzero(labels == _check_class(result, mode))
    else:
        raise ValueError(f"samples: got {mode!r}, expected 'all', 'wrong', a class index or a (true, predicted) cell")
    if order == "random":
        chosen = chosen[np.random.default_rng(seed).permutation(len(chosen))]
    elif order != "index":
        raise ValueError(f"order: got {order!r}, expected one of {', '.join(ORDERS)}")
    return [int(i) for i in chosen]


def top_k(result: Any, i: int, k: int = 3) -> list[tuple[int, float]]:
    """Image i's k most probable classes with their probabilities, most probable first (ties: the lower class first,
    as argmax picks the prediction). Empty when the result has no probabilities (read back from metrics.jsonl)."""
    if result.probabilities is None:
        return []
    row = np.asarray(result.probabilities[i], dtype=np.float64)
    best = np.argsort(-row, kind="stable")[:k]
    return [(int(c), float(row[c])) for c in best]


def share_level(count: int, row_total: int, levels: int = SHARE_LEVELS) -> int:
    """A confusion cell's colour level, 0 (empty) to `levels` (its whole row), by its share of its row on a square-root
    scale: mistakes are mostly a few percent of a row, and 1%, 5%, 10% and 20% still get levels of their own."""
    if count <= 0 or row_total <= 0:
        return 0
    return max(1, min(levels, math.ceil(math.sqrt(count / row_total) * levels)))


def level_share(level: int, levels: int = SHARE_LEVELS) -> float:
    """The largest row share drawn at `level` (for a legend): share_level(s) <= level for every s <= level_share(level)."""
    return (level / levels) ** 2

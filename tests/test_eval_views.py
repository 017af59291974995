"""Views of an evaluation (resnet_tui.core.eval_views): the images of a confusion cell, the chosen samples, an image's
top classes, and a cell's colour level; and the per-image probabilities the evaluation keeps for them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from resnet_tui.core.data import DeviceBatches, load_split
from resnet_tui.core.eval_views import SHARE_LEVELS, cell_indices, level_share, select_samples, share_level, top_k
from resnet_tui.core.evaluate import evaluate_model
from resnet_tui.core.model import ResNet


@pytest.fixture(scope="module")
def evaluated(cifar_dir):
    """A seeded tiny network evaluated on 120 real test images (plain and with flip TTA)."""
    torch.manual_seed(3)
    model = ResNet((1, 1, 1))
    split = load_split(str(cifar_dir), "test", limit=120)
    data = DeviceBatches(split, torch.device("cpu"))
    return evaluate_model(model, data, split.classes), evaluate_model(model, data, split.classes, tta=True)


def test_the_evaluation_keeps_each_images_probabilities_in_memory_only(evaluated):
    from resnet_tui.core import events as ev
    from resnet_tui.core import records

    for r in evaluated:
        p = r.probabilities
        assert isinstance(p, np.ndarray) and p.dtype == np.float32 and p.shape == (120, 10)
        assert np.allclose(p.sum(axis=1), 1.0, atol=1e-5)
        assert p.argmax(axis=1).tolist() == r.predictions
        assert "probabilities" not in records.to_record(ev.EvalEnd(1, r))  # metrics.jsonl keeps the summary only
    plain, tta = evaluated
    assert not np.allclose(plain.probabilities, tta.probabilities)  # TTA averages with the mirror image


def test_cell_indices_are_exactly_the_images_of_each_cell(evaluated):
    r = evaluated[0]
    seen: list[int] = []
    for t in range(10):
        for p in range(10):
            cell = cell_indices(r, t, p)
            assert cell == sorted(cell) and len(cell) == r.confusion[t][p]
            assert all(r.labels[i] == t and r.predictions[i] == p for i in cell)
            seen += cell
    assert sorted(seen) == list(range(r.n))


def test_samples_all_wrong_one_class_and_one_cell(evaluated):
    r = evaluated[0]
    assert select_samples(r) == list(range(r.n))
    wrong = select_samples(r, "wrong")
    assert wrong and wrong == [i for i in range(r.n) if r.labels[i] != r.predictions[i]]
    assert len(wrong) == r.n - sum(r.confusion[i][i] for i in range(10))
    cats = select_samples(r, 3)
    assert len(cats) == 12 and all(r.labels[i] == 3 for i in cats)  # the subset is class-balanced
    t, p = max(((t, p) for t in range(10) for p in range(10) if t != p), key=lambda c: r.confusion[c[0]][c[1]])
    assert select_samples(r, (t, p)) == cell_indices(r, t, p)


def test_random_order_is_reproducible_with_its_seed(evaluated):
    r = evaluated[0]
    once, again, other = (select_samples(r, "all", "random", seed) for seed in (7, 7, 8))
    assert once == again and once != other
    assert once != list(range(r.n)) and sorted(once) == list(range(r.n))  # the same images, shuffled
    assert sorted(select_samples(r, "wrong", "random", 7)) == select_samples(r, "wrong")


def test_bad_modes_say_what_is_allowed(evaluated):
    r = evaluated[0]
    with pytest.raises(ValueError, match="class: got 10, expected an index from 0 to 9"):
        select_samples(r, 10)
    with pytest.raises(ValueError, match="samples: got 'mistakes'"):
        select_samples(r, "mistakes")
    with pytest.raises(ValueError, match="order: got 'sorted'"):
        select_samples(r, "all", "sorted")


def test_top3_is_sorted_starts_with_the_prediction_and_sums_to_at_most_1(evaluated):
    for r in evaluated:
        for i in range(r.n):
            top = top_k(r, i)
            probs = [p for _, p in top]
            assert len(top) == 3 and len({c for c, _ in top}) == 3
            assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
            assert top[0][0] == r.predictions[i] and probs[0] == pytest.approx(float(r.probabilities[i].max()))
    from dataclasses import replace

    assert top_k(replace(evaluated[0], probabilities=None), 0) == []  # read back from metrics.jsonl: no probabilities


def test_share_levels_separate_small_mistakes_and_large_diagonals():
    assert share_level(0, 100) == 0 and share_level(5, 0) == 0
    levels = [share_level(c, 1000) for c in (1, 10, 50, 100, 200, 500, 800, 1000)]
    assert levels == sorted(levels) and levels[0] == 1 and levels[-1] == SHARE_LEVELS
    assert len({share_level(c, 100) for c in (1, 5, 10, 20)}) == 4  # 1%, 5%, 10% and 20% all differ
    for level in range(1, SHARE_LEVELS + 1):  # the legend's bounds
        assert share_level(round(level_share(level) * 10_000), 10_000) == level

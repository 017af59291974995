"""Snapshots of the Evaluate screen with a confusion cell selected, at 80x24 and 120x40 in truecolor and at 80x24 in
the 8 standard colours (TERM=xterm); and the table's reading without colour (NO_COLOR).

The content is fixed: 60 real test images (a fixed relative path to the shared data) and a fixed EvalResult with
seeded probabilities (no model is run, so no float differs between machines). The colour system is pinned: the
table draws for what the terminal shows. Update with `pytest tests/app/test_app_evaluate_snapshots.py
--snapshot-update`, then look at the SVGs."""

from __future__ import annotations


import numpy as np
import pytest

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.evaluate import EvaluateScreen
from resnet_tui.app.widgets.confusion import SHADES, ConfusionTable
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.evaluate import metrics_from_predictions

from app_helpers import screen_text, wait_for

N = 60
SOURCE = "runs/20261128-100000/checkpoints/cifar10_model_epoch_1.pth"
CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def colour_system(monkeypatch: pytest.MonkeyPatch, system: str) -> None:
    import textual.constants

    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", system)  # as TEXTUAL_COLOR_SYSTEM=...
    monkeypatch.delenv("NO_COLOR", raising=False)


def fixed_result(labels: list[int]):
    """About 60% right, with mistakes of every size; probabilities from a seeded generator, predictions their argmax."""
    rng = np.random.default_rng(1234)
    logits = rng.normal(size=(len(labels), 10))
    logits[np.arange(len(labels)), labels] += 1.6
    logits[:, 3] += 0.5  # a favourite class, so that one column collects mistakes
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predictions = probs.argmax(axis=1)
    r = metrics_from_predictions(np.asarray(labels), predictions, 1.2345, CLASSES)
    r.probabilities = probs.astype(np.float32)
    return r


def evaluate_app(data_link: str) -> ResNetApp:
    return ResNetApp(config=TrainConfig(data=data_link, limit_eval=N), runs_root="runs", device_label="CPU")


async def show_fixed(pilot, data_link: str) -> EvaluateScreen:
    from resnet_tui.core.data import load_split

    split = load_split(data_link, "test", limit=N)
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, EvaluateScreen), 10, "the Evaluate screen")
    screen = pilot.app.screen
    await screen.show_result(fixed_result(split.labels.tolist()), split, SOURCE)
    await pilot.pause()
    return screen


async def select_a_cell(pilot, data_link: str) -> None:
    await show_fixed(pilot, data_link)
    await pilot.press("up", "left")  # from the largest mistake
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_evaluate_with_a_cell_selected(snap_compare, size, data_link, monkeypatch):
    colour_system(monkeypatch, "truecolor")
    assert snap_compare(evaluate_app(data_link), terminal_size=size, run_before=lambda pilot: select_a_cell(pilot, data_link))


def test_evaluate_with_a_cell_selected_in_8_colours(snap_compare, data_link, monkeypatch):
    colour_system(monkeypatch, "standard")
    assert snap_compare(evaluate_app(data_link), terminal_size=(80, 24), run_before=lambda pilot: select_a_cell(pilot, data_link))


async def test_without_colour_each_cell_has_a_shade_after_its_number(data_link, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = evaluate_app(data_link)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await show_fixed(pilot, data_link)
        r, table = screen.result, screen.query_one(ConfusionTable)
        assert app.no_color
        rows = [line.split() for line in screen_text(app).splitlines() if line.split()[:1] in ([c] for c in CLASSES)][:10]
        for i, row in enumerate(rows):
            assert row[0] == CLASSES[i]
            for j, cell in enumerate(row[1:]):
                count = r.confusion[i][j]
                assert cell == str(count) if count == 0 else (cell[:-1] == str(count) and cell[-1] in SHADES)
        assert "░" in screen_text(app) and "█" in screen_text(app)

"""Snapshots of every screen at 80x24 and 120x40, with fixed content: no clock, no device name, fixed data
subsets (the shared CIFAR-10 folder, reached through a fixed relative path), a fixed runs folder, and a
fixed run fed to the Train screen as engine events.

Update with `pytest tests/app/test_app_snapshots.py --snapshot-update`, then look at the SVGs."""

from __future__ import annotations

import math

import pytest

from resnet_tui.core import events as ev
from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.evaluate import EvaluateScreen
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.evaluate import EvalResult

from app_helpers import wait_for

SIZES = [(80, 24), (120, 40)]
RUN_DIR = "runs/20261128-100000"


@pytest.fixture(autouse=True)
def _fixed_machine(fixed_machine: None) -> None:
    """Every screen's system panel shows the same machine, whatever runs the tests."""


def fake_run_events(cfg: TrainConfig, epochs_done: int = 2, batches_per_epoch: int = 40, batches_into_epoch: int = 25) -> list[ev.Event]:
    """A run as the trainer reports it, with a smooth, noisy-looking loss; stopped mid-epoch."""
    out: list[ev.Event] = [ev.TrainStart(cfg.to_dict(), RUN_DIR, "CPU", 205_338, batches_per_epoch * cfg.batch_size, 1000,
                                         batches_per_epoch)]
    images, t = 0, 0.0
    for epoch in range(1, epochs_done + 2):
        losses = []
        last = batches_per_epoch if epoch <= epochs_done else batches_into_epoch
        for b in range(1, last + 1):
            step = (epoch - 1) * batches_per_epoch + b
            loss = 2.3 * math.exp(-step / 90) + 0.6 + 0.08 * math.sin(step * 1.7)
            images += cfg.batch_size
            t += 0.5
            losses.append(loss)
            out.append(ev.BatchEnd(epoch, b, loss, images, t, cfg.lr))
        if epoch <= epochs_done:
            out.append(ev.EpochEnd(epoch, sum(losses) / len(losses), 20.0, 256.0))
            out.append(ev.CheckpointSaved(epoch, f"{RUN_DIR}/checkpoints/cifar10_model_epoch_{epoch - 1}.pth"))
    return out


def fixed_eval_result(n: int = 50) -> EvalResult:
    classes = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    labels = [i % 10 for i in range(n)]
    predictions = [c if i % 3 else (c + 3) % 10 for i, c in enumerate(labels)]
    confusion = [[0] * 10 for _ in range(10)]
    for y, p in zip(labels, predictions):
        confusion[y][p] += 1
    correct = sum(confusion[i][i] for i in range(10))
    return EvalResult(nll=0.9876, accuracy=correct / n, n=n, classes=classes, confusion=confusion,
                      precision=[0.75] * 10, recall=[0.6] * 10, f1=[0.667] * 10, predictions=predictions, labels=labels)


def snapshot_app(**kwargs) -> ResNetApp:
    return ResNetApp(device_label="CPU", **kwargs)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_screen_idle(snap_compare, size, runs_root):
    assert snap_compare(snapshot_app(config=TrainConfig(data="sample"), runs_root=runs_root), terminal_size=size)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_screen_during_a_run(snap_compare, size, fixed_log_time, runs_root):
    cfg = TrainConfig(data="sample", epochs=5, batch_size=64, lr=0.05, momentum=0.9)

    async def feed(pilot) -> None:
        app = pilot.app
        app.training = True  # the layout while training (no worker runs: the events are fed here)
        app.train_screen.apply_events(fake_run_events(cfg))
        await pilot.pause(0.3)  # the chart redraws on a timer

    assert snap_compare(snapshot_app(config=cfg, runs_root=runs_root), terminal_size=size, run_before=feed)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_model_screen(snap_compare, size, runs_root):
    async def wait_tree(pilot) -> None:  # run_before runs before `press`: keys are pressed here
        await pilot.press("2")
        await wait_for(pilot, lambda: pilot.app.screen.root_info is not None, 30, "the tree")
        await pilot.pause()

    assert snap_compare(snapshot_app(config=TrainConfig(data="sample"), runs_root=runs_root), terminal_size=size,
                        run_before=wait_tree)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_data_screen(snap_compare, size, data_link):
    async def wait_data(pilot) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "split", None) is not None, 60, "the split")
        await pilot.press("right", "right", "right")
        await pilot.pause()

    app = snapshot_app(config=TrainConfig(data=data_link, limit_train=100, limit_eval=50), runs_root="runs")
    assert snap_compare(app, terminal_size=size, run_before=wait_data)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_evaluate_screen_with_results(snap_compare, size, data_link):
    from resnet_tui.core.data import load_split

    test_split = load_split(data_link, "test", limit=50)

    async def show(pilot) -> None:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, EvaluateScreen), 10, "the Evaluate screen")
        await pilot.app.screen.show_result(fixed_eval_result(), test_split, f"{RUN_DIR}/checkpoints/cifar10_model_epoch_1.pth")
        await pilot.pause()

    app = snapshot_app(config=TrainConfig(data=data_link, limit_eval=50), runs_root="runs")
    assert snap_compare(app, terminal_size=size, run_before=show)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(snap_compare, size, runs_root):
    assert snap_compare(snapshot_app(config=TrainConfig(data="sample"), runs_root=runs_root), press=["5"], terminal_size=size)

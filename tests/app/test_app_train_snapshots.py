"""Snapshots of the Train screen at 80x24 and 120x40 during a run (evaluated every epoch, its speed just dropped)
and after it, fed a fixed list of engine events: no training, no clock (fixed log time, event times), no device
detection, and a machine that always reads the same (a fixed sampler behind the system panel).

Update with `pytest tests/app/test_app_train_snapshots.py --snapshot-update`, then look at the SVGs."""

from __future__ import annotations

import math

import pytest

from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.evaluate import EvalResult
from resnet_tui.app.app import ResNetApp
from resnet_tui.app.widgets.system_panel import SystemPanel

from app_helpers import wait_for

SIZES = [(80, 24), (120, 40)]
RUN_DIR = "runs/20261128-100000"
PER_EPOCH = 40
CFG = TrainConfig(data="sample", epochs=5, batch_size=64, lr=0.05, momentum=0.9, schedule="warmup-linear", warmup_epochs=1)
ACCURACY = {1: (1.71, 0.38), 2: (1.42, 0.49), 3: (1.30, 0.545), 4: (1.26, 0.567), 5: (1.25, 0.571)}


def eval_result(nll: float, accuracy: float, n: int = 1000) -> EvalResult:
    classes = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    confusion = [[n // 10 if i == j else 0 for j in range(10)] for i in range(10)]
    return EvalResult(nll, accuracy, n, classes, confusion, [accuracy] * 10, [accuracy] * 10, [accuracy] * 10, [], [])


def recorded_run(epochs_done: int, batches_into_epoch: int = 0, finished: bool = False) -> list[ev.Event]:
    """The run as its trainer reports it: a noisy falling loss, warm-up then decay of the learning rate, an
    evaluation after every epoch; 0.25 s a batch, 1 s a batch for the last 20 (another job took the machine)."""
    out: list[ev.Event] = [ev.TrainStart(CFG.to_dict(), RUN_DIR, "CPU", 205_338, PER_EPOCH * CFG.batch_size, 1000, PER_EPOCH)]
    total = CFG.epochs * PER_EPOCH
    last_step = epochs_done * PER_EPOCH + batches_into_epoch
    t = 0.0
    for epoch in range(1, epochs_done + (2 if batches_into_epoch else 1)):
        losses = []
        for b in range(1, (PER_EPOCH if epoch <= epochs_done else batches_into_epoch) + 1):
            step = (epoch - 1) * PER_EPOCH + b
            loss = 2.3 * math.exp(-step / 60) + 1.1 + 0.12 * math.sin(step * 1.7)
            lr = CFG.lr * min(step / PER_EPOCH, (total - step) / (total - PER_EPOCH))
            t += 1.0 if last_step - step < 20 and not finished else 0.25
            losses.append(loss)
            out.append(ev.BatchEnd(epoch, b, loss, step * CFG.batch_size, t, lr))
        if epoch <= epochs_done:
            out.append(ev.EpochEnd(epoch, sum(losses) / len(losses), PER_EPOCH * 0.25, 256.0))
            out.append(ev.CheckpointSaved(epoch, f"{RUN_DIR}/checkpoints/cifar10_model_epoch_{epoch - 1}.pth"))
            out.append(ev.EvalEnd(epoch, eval_result(*ACCURACY[epoch])))
    if finished:
        out.append(ev.RunEnd("finished", 256.0, t, epochs_done=epochs_done))
    return out


async def show(pilot, events: list[ev.Event], training: bool) -> None:
    app = pilot.app
    app.training = training  # the layout while training (no worker runs: the events are fed here)
    app.train_screen.apply_events(events)
    chart = app.train_screen.monitor.chart
    panel = app.train_screen.query_one(SystemPanel)
    count = sum(isinstance(e, ev.BatchEnd) for e in events)
    await wait_for(pilot, lambda: chart.point_count == count and not chart._pending and panel.shown is not None, 10,
                   "the chart and the machine to show")
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_screen_during_a_run_evaluated_every_epoch(snap_compare, size, fixed_log_time, fixed_machine, tmp_path):
    async def during(pilot) -> None:
        await show(pilot, recorded_run(2, 30), training=True)

    app = ResNetApp(config=CFG, device_label="CPU", runs_root=tmp_path / "runs")
    assert snap_compare(app, terminal_size=size, run_before=during)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_train_screen_after_a_run_evaluated_every_epoch(snap_compare, size, fixed_log_time, fixed_machine, tmp_path):
    async def after(pilot) -> None:
        await show(pilot, recorded_run(5, finished=True), training=False)

    app = ResNetApp(config=CFG, device_label="CPU", runs_root=tmp_path / "runs")
    assert snap_compare(app, terminal_size=size, run_before=after)

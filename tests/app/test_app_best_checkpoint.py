"""The Evaluate screen's "Which": the run's best epoch checkpoint by train loss (from metrics.jsonl) or by
eval loss (each epoch checkpoint evaluated in the worker, with progress), and why it was chosen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from textual.widgets import ProgressBar, Select

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.evaluate import EvaluateScreen
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_split
from resnet_tui.core.device import resolve_device
from resnet_tui.core.model import ResNet
from resnet_tui.core.operations import best_checkpoint

from app_helpers import batch_records, end_record, epoch_record, shown_text, start_record, wait_for, write_run


def two_epoch_run(trained_run: Path, tmp_path: Path) -> Path:
    """Epoch 1 has the lower training loss though epoch 2 is the last; the two checkpoints differ
    (epoch 1: the trained weights, epoch 2: a fresh network)."""
    cfg = TrainConfig(epochs=2, batch_size=32, layers=(1, 1, 1))
    run = write_run(tmp_path / "run", [start_record(cfg, 2), *batch_records(1, 2, 32), epoch_record(1, 2.0, 1.0, 64.0),
                                       *batch_records(2, 2, 32, first_image=64, first_time=1.0), epoch_record(2, 2.1, 1.0, 64.0),
                                       end_record("finished", 64.0, 2.0)], cfg)
    (run / "checkpoints").mkdir()
    shutil.copy(trained_run / "checkpoints" / "cifar10_model_epoch_0.pth", run / "checkpoints" / "cifar10_model_epoch_0.pth")
    torch.manual_seed(1)
    torch.save(ResNet((1, 1, 1)).state_dict(), run / "checkpoints" / "cifar10_model_epoch_1.pth")
    return run


async def test_best_by_train_loss_then_by_eval_loss_on_the_evaluate_screen(trained_run, cifar_dir, tmp_path):
    run = two_epoch_run(trained_run, tmp_path)
    cfg = TrainConfig(data=str(cifar_dir), limit_eval=50, device="cpu")
    app = ResNetApp(config=cfg, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(100, 30)) as pilot:
        app.current_run_dir = run  # as after training it in the app
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
        screen = app.screen
        # the newest epoch is preselected; Which = best by train loss chooses epoch 1 instead
        assert screen.query_one("#checkpoint-choice", Select).value.endswith("cifar10_model_epoch_1.pth")
        screen.query_one("#best-by", Select).value = "train_loss"
        await pilot.press("e")
        await wait_for(pilot, lambda: screen.result is not None and not screen.evaluating, 60, "the evaluation")
        status = shown_text(screen.query_one("#eval-status"))
        assert "cifar10_model_epoch_0.pth" in status and "best checkpoint: epoch 1" in status
        assert "lowest mean training loss of the epoch of 2 epoch checkpoint(s): 2.0000 (by epoch: 1: 2.0000, 2: 2.1000)" in status
        assert screen.source.endswith("cifar10_model_epoch_1.pth")  # what was asked: the choice went from there

        # by eval loss: both checkpoints are evaluated (progress 2/2); the engine's choice is shown
        split = load_split(str(cifar_dir), "test", limit=50)
        expected = best_checkpoint(run, "eval_loss", split, resolve_device("cpu"))
        screen.result = None
        screen.query_one("#best-by", Select).value = "eval_loss"
        await pilot.press("e")
        await wait_for(pilot, lambda: screen.result is not None and not screen.evaluating, 120, "the evaluation by eval loss")
        status = shown_text(screen.query_one("#eval-status"))
        assert expected.path.name in status and f"best checkpoint: epoch {expected.epoch}" in status
        assert "eval loss (NLL on the test split) of 2 epoch checkpoint(s)" in status and "optimistic" in status
        assert screen.result.nll == expected.value and screen.result.accuracy == expected.result.accuracy
        assert screen.query_one("#eval-progress", ProgressBar).percentage == 1.0


async def test_best_of_a_folder_that_is_not_a_run_is_an_error_in_the_app(cifar_dir, tmp_path):
    cfg = TrainConfig(data=str(cifar_dir), limit_eval=50, device="cpu")
    app = ResNetApp(config=cfg, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
        screen = app.screen
        screen.action_evaluate(str(tmp_path), "train_loss")
        await wait_for(pilot, lambda: not screen.evaluating, 30, "the error")
        assert "expected a run directory with metrics.jsonl" in shown_text(screen.query_one("#eval-status"))
        assert app.is_running


@pytest.mark.parametrize("best_by", [None, "train_loss", "eval_loss"])
async def test_evaluate_mode_on_a_run_directory_opens_and_evaluates(best_by, trained_run, cifar_dir, tmp_path):
    """`ResNetApp(mode="evaluate", checkpoint=RUN_DIR, best_by=...)`, as `resnet-tui evaluate RUN_DIR [--best --by ...]`
    opens it: the run's checkpoints are listed and chosen while the screen is still being composed (this crashed
    with NoMatches '#label' on SelectCurrent); without best_by the run's last epoch checkpoint is evaluated."""
    run = two_epoch_run(trained_run, tmp_path)
    cfg = TrainConfig(data=str(cifar_dir), limit_eval=50, device="cpu")
    split = load_split(str(cifar_dir), "test", limit=50)
    if best_by is None:
        expected_path = run / "checkpoints" / "cifar10_model_epoch_1.pth"  # the last epoch, as on the command line
    else:
        expected_path = best_checkpoint(run, best_by, split, resolve_device("cpu")).path
    if best_by == "train_loss":
        assert expected_path.name == "cifar10_model_epoch_0.pth"  # not the last: the choice is seen
    app = ResNetApp(mode="evaluate", checkpoint=str(run), best_by=best_by, config=cfg, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.result is not None and not screen.evaluating, 120, "the evaluation")
        await pilot.pause()
        assert app.is_running and app.last_error == ""
        status = shown_text(screen.query_one("#eval-status"))
        assert f"Evaluated {expected_path}" in status
        if best_by is not None:
            assert f"best checkpoint: epoch {int(expected_path.stem.rsplit('_', 1)[1]) + 1}" in status
        assert screen.result.n == 50
        # the run's two epoch checkpoints are offered (newest first), then the lab's published one
        choice = screen.query_one("#checkpoint-choice", Select)
        values = [value for _, value in choice._options if value is not Select.NULL]
        assert values[:2] == [str(run / "checkpoints" / "cifar10_model_epoch_1.pth"), str(run / "checkpoints" / "cifar10_model_epoch_0.pth")]
        assert len(values) == 3
        assert choice.value == str(run / "checkpoints" / "cifar10_model_epoch_1.pth")  # the newest, shown
        which = screen.query_one("#best-by", Select)
        assert which.value == (best_by if best_by is not None else Select.NULL)
        assert app.current_run_dir == run

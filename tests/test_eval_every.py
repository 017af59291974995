"""Evaluation during training (--eval-every): an eval record per evaluated epoch, read back with its epoch; the
evaluations leave training bit-identical; a stop during one ends the run at the epoch boundary, and the resumed run
makes up the evaluation it missed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cli_helpers import assert_one_line_error
from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.config import ConfigError, TrainConfig, eval_every_epochs, parse_field
from resnet_tui.core.data import load_data
from resnet_tui.core.train import train

EPOCHS = 3


@pytest.fixture(scope="module")
def splits(cifar_dir: Path):
    return load_data(str(cifar_dir), None, 128, 200)  # 2 batches an epoch: enough for any change to show in the weights


def config(eval_every: int | str) -> TrainConfig:
    # momentum, augmentation and BatchNorm: any change an evaluation made to the model or the run would show in the weights
    return TrainConfig(layers=(1, 1, 1), batch_size=64, epochs=EPOCHS, lr=0.05, momentum=0.9, augment=True, device="cpu",
                       precision="fp32", seed=5, lens_every=0, eval_every=eval_every)


def checkpoints(run: Path) -> list[dict[str, torch.Tensor]]:
    return [torch.load(run / "checkpoints" / f"cifar10_model_epoch_{i}.pth", weights_only=True) for i in range(EPOCHS)]


def assert_same_weights(a: Path, b: Path) -> None:
    for wa, wb in zip(checkpoints(a), checkpoints(b)):  # BatchNorm's running statistics included
        assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def runs(splits, tmp_path_factory) -> dict[str, Path]:
    """The same 3-epoch run evaluated after every epoch and only at the end."""
    base = tmp_path_factory.mktemp("eval-every")
    out = {}
    for name, every in (("every", 1), ("end", 0)):
        out[name] = base / name
        assert train(config(every), out[name], lambda e: None, splits=splits).status == "finished"
    return out


def test_every_epoch_is_evaluated_once_and_read_back_with_its_epoch(runs) -> None:
    run = records.read_run(runs["every"])
    assert [e.epoch for e in run.evals] == [1, 2, 3]  # the last epoch once: its evaluation is the final one
    assert all(e.result.n == 200 and len(e.result.confusion) == 10 and 0 <= e.result.accuracy <= 1 for e in run.evals)
    assert [e.epoch for e in records.read_run(runs["end"]).evals] == [3]
    kinds = [type(e).__name__ for e in run.events if isinstance(e, (ev.CheckpointSaved, ev.EvalEnd, ev.EpochEnd))]
    assert kinds == ["EpochEnd", "CheckpointSaved", "EvalEnd"] * 3  # each after its epoch's checkpoint
    log = [line.split("] ", 1)[1] for line in (runs["every"] / "train.log").read_text().splitlines() if "eval-loss:" in line]
    assert [line.split("eval-loss:")[0] for line in log] == ["epoch 1 ", "epoch 2 ", ""]  # the final line as it always was


def test_evaluating_every_epoch_leaves_training_bit_identical(runs) -> None:
    assert_same_weights(runs["every"], runs["end"])
    final = records.read_run(runs["every"]).evals[-1].result, records.read_run(runs["end"]).evals[-1].result
    assert final[0].nll == final[1].nll and final[0].confusion == final[1].confusion


def test_a_stop_during_an_evaluation_ends_at_the_epoch_and_the_resumed_run_makes_it_up(splits, runs, tmp_path: Path) -> None:
    run, seen = tmp_path / "stopped", []
    stop_after_epoch_1 = lambda: any(isinstance(e, ev.CheckpointSaved) for e in seen)  # noqa: E731
    end = train(config(1), run, seen.append, should_stop=stop_after_epoch_1, splits=splits)
    assert (end.status, end.epochs_done) == ("interrupted", 1)
    assert "during the evaluation after epoch 1" in end.message and f"--resume {run}" in end.message
    assert not records.read_run(run).evals
    assert train(config(1), run, lambda e: None, resume=True, splits=splits).status == "finished"
    assert [e.epoch for e in records.read_run(run).evals] == [1, 2, 3]
    assert_same_weights(run, runs["every"])


def test_auto_evaluates_every_epoch_on_a_gpu_and_only_at_the_end_on_a_cpu() -> None:
    auto = TrainConfig()
    assert auto.eval_every == "auto"
    assert [eval_every_epochs(auto, d) for d in ("cpu", "cuda", "mps")] == [0, 1, 1]
    assert eval_every_epochs(TrainConfig(eval_every=3), "cuda") == 3 and eval_every_epochs(TrainConfig(eval_every=0), "mps") == 0
    assert parse_field("eval_every", " AUTO ") == "auto" and parse_field("eval_every", "2") == 2


@pytest.mark.parametrize("bad", ["-1", "1.5", "often", True])
def test_a_bad_eval_every_is_refused(bad) -> None:
    with pytest.raises(ConfigError) as e:
        parse_field("eval_every", bad)
    assert e.value.as_flag().startswith(f"--eval-every: got {bad!r}, expected auto")


def test_a_bad_eval_every_flag_is_one_line(cli) -> None:
    assert_one_line_error(cli("--no-ui", "train", "--eval-every", "-1"), "--eval-every: got '-1'", "an integer >= 1")

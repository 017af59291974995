"""The engine really learns: 300 SGD steps on real CIFAR-10 images lower the loss and beat chance on held-out images."""

from __future__ import annotations

import math

import numpy as np
import pytest

from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.train import train


@pytest.mark.slow
def test_a_few_hundred_steps_on_real_cifar10_learn(cifar_dir, tmp_path):
    cfg = TrainConfig(
        data=str(cifar_dir), limit_train=3600, limit_eval=600, layers=(1, 1, 1), batch_size=12, epochs=1,
        optimizer="sgd", lr=0.02, momentum=0.9, device="cpu", precision="fp32", seed=0,
    )
    events: list[ev.Event] = []
    end = train(cfg, tmp_path / "run", events.append)
    assert end.status == "finished", end.message

    start = next(e for e in events if isinstance(e, ev.TrainStart))
    assert (start.n_train, start.n_test, start.batches_per_epoch) == (3600, 600, 300)
    losses = [e.loss for e in events if isinstance(e, ev.BatchEnd)]
    assert len(losses) == 300 and all(math.isfinite(x) for x in losses)
    first, last = float(np.mean(losses[:50])), float(np.mean(losses[-50:]))
    assert last < first - 0.3, f"loss did not fall enough: first 50 batches {first:.3f}, last 50 {last:.3f}"
    assert last < math.log(10) - 0.2  # clearly below the loss of a uniform guess

    result = next(e for e in events if isinstance(e, ev.EvalEnd)).result
    assert result.n == 600  # held-out test images, never trained on
    assert result.accuracy > 0.2, f"test accuracy {result.accuracy:.3f} is not clearly above chance (0.1)"
    assert result.nll < math.log(10)
    # it learned more than one class: at least 4 classes are predicted correctly sometimes
    assert sum(1 for i in range(10) if result.confusion[i][i] > 0) >= 4

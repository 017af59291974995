"""What evaluating during training (--eval-every) costs: the lab preset trained for a few epochs on a subset of the
real data, evaluated after every epoch (--eval-every 1) and only at the end (--eval-every 0), through the trainer.

    python benchmarks/eval_cost.py                                   # CPU-sized: 640 train / 128 test images, 2 epochs
    python benchmarks/eval_cost.py --device cuda --limit-train 50000 --limit-eval 10000

The share it prints is one evaluation's seconds over one epoch's seconds of training (medians), both timed inside the
trainer's own run (the evaluation is the trainer's evaluate_model call, timed around it). Keep the subset at the
full data's 5:1 ratio of training to test images, and the share is the one a full run would see. The wall-clock
difference of the two runs is printed too; on a shared machine it is noisier than the share.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import resnet_tui.core.train as trainer  # noqa: E402
from resnet_tui.core import events as ev  # noqa: E402
from resnet_tui.core.config import build_config  # noqa: E402
from resnet_tui.core.data import load_data  # noqa: E402


def timed_run(cfg, splits, eval_seconds: list[float]) -> tuple[float, list[float]]:
    """Train `cfg` into a fresh folder; the run's wall seconds and each epoch's training seconds. The seconds of
    each evaluation are appended to `eval_seconds` (the trainer's evaluate_model, wrapped)."""
    original = trainer.evaluate_model

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            eval_seconds.append(time.perf_counter() - t0)

    epochs: list[float] = []
    trainer.evaluate_model = timed
    try:
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            end = trainer.train(cfg, Path(tmp) / "run", lambda e: epochs.append(e.seconds) if isinstance(e, ev.EpochEnd) else None,
                                splits=splits)
        wall = time.perf_counter() - t0
    finally:
        trainer.evaluate_model = original
    assert end.status == "finished", end
    return wall, epochs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpeg"))
    p.add_argument("--device", default="auto")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit-train", type=int, default=640)
    p.add_argument("--limit-eval", type=int, default=128)
    a = p.parse_args()
    splits = load_data(a.data, None, a.limit_train, a.limit_eval)
    base = dict(preset="lab", epochs=a.epochs, device=a.device, data=a.data, limit_train=a.limit_train, limit_eval=a.limit_eval)
    every_evals: list[float] = []
    every_wall, every_epochs = timed_run(build_config(flag_values={**base, "eval_every": 1}), splits, every_evals)
    end_evals: list[float] = []
    end_wall, end_epochs = timed_run(build_config(flag_values={**base, "eval_every": 0}), splits, end_evals)
    assert len(every_evals) == a.epochs and len(end_evals) == 1

    # medians: the first epoch and the first evaluation include one-off warm-up (kernel choice for new batch shapes)
    epoch_s = statistics.median(every_epochs + end_epochs)
    eval_s = statistics.median(every_evals + end_evals)
    print(f"machine: {platform.processor() or platform.machine()}, {trainer.describe_device(trainer.resolve_device(a.device), 'auto')}")
    print(f"lab preset, {len(splits[0]):,} training and {len(splits[1]):,} test images, {a.epochs} epochs")
    print(f"one epoch of training: {epoch_s:.2f} s (median of {', '.join(f'{s:.2f}' for s in every_epochs + end_epochs)}); "
          f"one evaluation: {eval_s:.2f} s (median of {', '.join(f'{s:.2f}' for s in every_evals + end_evals)})")
    print(f"evaluating every epoch costs {eval_s / epoch_s:.1%} of training time")
    print(f"wall: {every_wall:.1f} s evaluated every epoch, {end_wall:.1f} s only at the end "
          f"(+{every_wall - end_wall:.1f} s for {a.epochs - 1} more evaluation(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())

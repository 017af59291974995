"""What the residual lens costs, per measurement and at its default rate: training steps of the lab's network
(2,2,2, batch 128) with a lens measuring every other step, so that measured and unmeasured steps alternate in one
process on the same batches (a shared machine whose load changes slows both alike), and steps with no lens at all.

    python benchmarks/lens_cost.py --data ../shared/data/cifar10-jpeg              # CPU-sized defaults
    python benchmarks/lens_cost.py --data ... --device cuda --steps 200 --rounds 3  # a GPU

The steps are the trainer's (autocast where the config says, forward, NLL, backward, SGD, the loss into a device
buffer). The default rate is auto for the lab's full epoch: every 8 of 391 steps.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_tui.core.config import TrainConfig  # noqa: E402
from resnet_tui.core.device import describe_device  # noqa: E402
from resnet_tui.core.lens import Lens, every_steps  # noqa: E402
from resnet_tui.core.train import loss_fn, setup  # noqa: E402


def step_times(s, batches, every: int) -> list[float]:
    """Seconds of each step over `batches`, with a lens every `every` steps (0: none attached)."""
    lens = Lens(s.model, s.optimizer, s.scheduler, every, s.steps_per_epoch) if every else None
    criterion = loss_fn(s.cfg)
    losses = torch.zeros(len(batches), device=s.device)
    sync = torch.cuda.synchronize if s.device.type == "cuda" else (lambda: None)
    times = []
    for b, (x, y) in enumerate(batches):
        sync()
        t0 = time.perf_counter()
        with torch.autocast(s.device.type, dtype=s.autocast or torch.float32, enabled=s.autocast is not None):
            loss = criterion(s.model(x), y)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        s.scheduler.step()
        losses[b] = loss.detach()
        sync()
        times.append(time.perf_counter() - t0)
    losses.tolist()
    if lens is not None:
        lens.read()
        lens.close()
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "cifar10-jpeg"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--steps", type=int, default=16, help="steps per timed block (batch 128)")
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    cfg = TrainConfig(data=args.data, device=args.device, precision=args.precision, limit_train=128 * args.steps, limit_eval=10)
    s = setup(cfg)
    batches = [(x.clone(), y.clone()) for x, y in s.train.train_epoch(0, 128, cfg.seed, False)]
    default = every_steps("auto", 391)  # the lab's full epoch: 391 batches of 128
    step_times(s, batches[:2], 0)  # warm-up
    # Measured and unmeasured steps alternate in one block (every 2), so a machine whose load changes meanwhile
    # (a shared CPU) slows both alike; the medians of each kind give the cost of one measurement.
    measured, unmeasured, off = [], [], []
    for _ in range(args.rounds):
        first = s.scheduler.last_epoch
        for i, t in enumerate(step_times(s, batches, 2)):
            (measured if (first + i) % 2 == 0 else unmeasured).append(t)
        off += step_times(s, batches, 0)
    med = statistics.median
    print(f"{describe_device(s.device)}, {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"precision {args.precision}, lab network 2,2,2, batch 128, {args.rounds} x {len(batches)} steps of each kind")
    print(f"lens off (no hooks)          {med(off) * 1000:8.1f} ms/step (median)")
    print(f"lens on, step not measured   {med(unmeasured) * 1000:8.1f} ms/step")
    print(f"lens on, step measured       {med(measured) * 1000:8.1f} ms/step")
    cost = med(measured) - med(unmeasured)
    print(f"one measurement: {cost * 1000:.1f} ms = {100 * cost / med(unmeasured):.1f}% of a step; "
          f"at the default rate (every {default}): {100 * cost / default / med(unmeasured):.2f}% of training time")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

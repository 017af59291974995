"""Throughput benchmark: the lab's training loop against resnet-tui's trainer, in one process, on the same data.

    python benchmarks/bench.py                      # CPU-sized defaults: 1,024 training images
    python benchmarks/bench.py --limit-train 50000  # a full epoch (GPU)

It times, on the same uint8 images:
  lab loop     the notebook's loop, reimplemented faithfully: a Dataset that builds a PIL image per sample and
               applies ToTensor + Normalize, a DataLoader without workers, fp32 NCHW, and loss.item() plus a
               printed line every batch;
  lab preset   resnet-tui's trainer with the lab's hyperparameters (headless);
  fast preset  resnet-tui's trainer with the fast preset (headless);
  in-app       the lab preset inside the Textual app (headless terminal), when --app is given.
Images/s are training throughput: evaluation and checkpoint writing are excluded on both sides.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
import torchvision
from PIL import Image
from torch import nn, optim

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from resnet_tui.core.config import build_config  # noqa: E402
from resnet_tui.core.data import Split, load_data  # noqa: E402
from resnet_tui.core.device import describe_device, resolve_device  # noqa: E402
from resnet_tui.core.model import ResNet  # noqa: E402
from resnet_tui.core.train import Trainer  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "cifar10-jpeg"


class LabCIFAR10(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does per item: uint8 HWC array -> PIL image -> transform."""

    def __init__(self, split: Split):
        self.data = split.images.permute(0, 2, 3, 1).numpy()  # HWC, as CIFAR10.data
        self.targets = split.labels.tolist()
        self.transform = torchvision.transforms.Compose(
            [torchvision.transforms.ToTensor(), torchvision.transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))]
        )

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def lab_loop(split: Split, device: torch.device, epochs: int = 1, batch_size: int = 128, seed: int = 1234) -> float:
    """The notebook's section 5 loop. Returns training images/s."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(LabCIFAR10(split), batch_size=batch_size, shuffle=True)
    model = ResNet(layers=[2, 2, 2]).to(device)
    nll_loss = nn.NLLLoss().to(device)
    optimizer = optim.SGD(params=model.parameters(), lr=0.001)
    sink = io.StringIO()  # the notebook prints every batch; a terminal would only make it slower
    model.train()
    images_done = 0
    t0 = time.perf_counter()
    for epoch in range(epochs):
        losses = []
        for i, (images, labels) in enumerate(loader):
            images, labels = images.to(device), labels.to(device)
            output = model(images)
            model.zero_grad()
            loss = nll_loss(output, labels)
            loss.backward()
            optimizer.step()
            losses.append(loss.data.item())
            now = datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S")
            print("[LOG {}] epoch: {}, batch: {} train-loss: {}".format(now, epoch + 1, i + 1, loss.item()), file=sink)
            images_done += len(labels)
        np.mean(losses)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return images_done / (time.perf_counter() - t0)


def ours(preset: str, splits: tuple[Split, Split], device: str, epochs: int, extra: dict) -> float:
    cfg = build_config({}, {"preset": preset, "device": device, "epochs": epochs, **extra}, resolve_device(device).type)
    with tempfile.TemporaryDirectory() as d:
        end = Trainer(cfg, Path(d) / "run", lambda e: None, splits=splits).run_training()
    return end.images_per_sec


def in_app(splits: tuple[Split, Split], device: str, epochs: int) -> float:
    from resnet_tui.app.bench import app_images_per_sec  # the app's own harness

    cfg = build_config({}, {"preset": "lab", "device": device, "epochs": epochs}, resolve_device(device).type)
    with tempfile.TemporaryDirectory() as d:
        return app_images_per_sec(cfg, Path(d) / "run", splits)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(DEFAULT_DATA))
    p.add_argument("--limit-train", type=int, default=1024)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--rounds", type=int, default=2, help="alternate the setups this many times; the best round counts")
    p.add_argument("--app", action="store_true", help="also time the lab preset inside the Textual app")
    p.add_argument("--compile", action="store_true", help="also time the fast preset with --compile")
    p.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    args = p.parse_args()

    device = resolve_device(args.device)
    splits = load_data(args.data, None, args.limit_train, 100)
    print(f"machine: {platform.processor() or platform.machine()}, {describe_device(device)}, torch {torch.__version__}")
    print(f"data: {len(splits[0]):,} training images from {splits[0].source}, {args.epochs} epoch(s), {args.rounds} round(s)")

    setups = {
        "lab loop (notebook)": lambda: lab_loop(splits[0], device, args.epochs),
        "resnet-tui, lab preset": lambda: ours("lab", splits, args.device, args.epochs, {}),
        "resnet-tui, fast preset": lambda: ours("fast", splits, args.device, args.epochs, {}),
    }
    if args.compile:
        setups["resnet-tui, fast preset, --compile"] = lambda: ours("fast", splits, args.device, args.epochs, {"compile": True})
    if args.app:
        setups["resnet-tui app, lab preset"] = lambda: in_app(splits, args.device, args.epochs)

    best: dict[str, float] = {}
    for r in range(args.rounds):
        for name, run in setups.items():
            ips = run()
            best[name] = max(best.get(name, 0.0), ips)
            print(f"  round {r + 1}: {name:<36} {ips:10,.1f} images/s", flush=True)

    base = best["lab loop (notebook)"]
    print()
    print(f"{'setup':<38}{'images/s':>12}{'vs lab loop':>14}")
    for name, ips in best.items():
        print(f"{name:<38}{ips:12,.1f}{ips / base:13.2f}x")
    if "resnet-tui app, lab preset" in best:
        ratio = best["resnet-tui app, lab preset"] / best["resnet-tui, lab preset"]
        print(f"in-app / headless (lab preset): {ratio:.3f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": describe_device(device), "images_per_sec": best}, indent=2))


if __name__ == "__main__":
    main()

"""Throughput benchmark: the lab's training loop against resnet-tui's trainer, in one process, on the same data.

    python benchmarks/bench.py                      # CPU-sized defaults: 1,024 training images
    python benchmarks/bench.py --limit-train 50000  # a full epoch (GPU)

It times, on the same uint8 images:
  lab loop     the notebook's loop, reimplemented faithfully: a Dataset that builds a PIL image per sample and
               applies ToTensor + Normalize, a DataLoader without workers, fp32 NCHW, and loss.item() plus a
               printed line every batch;
  lab preset   resnet-tui's trainer with the lab's hyperparameters (headless);
  fast preset  resnet-tui's trainer with the fast preset (headless), in fp32 and in bf16 autocast;
  --compile    the fast preset compiled: the last epoch's images/s, with the compile time printed apart;
  in-app       the lab preset inside the Textual app (headless terminal), when --app is given;
  --procs N,M  the lab preset as `resnet-tui --no-ui train --gpus N` (N processes, torch.distributed: gloo on the CPU,
               NCCL on GPUs), each a real launch; images/s from the run's end record (training only, every rank
               together), with each rank's own rate.
Images/s are training throughput: evaluation and checkpoint writing are excluded on both sides. Each row prints the
settings it ran with; the lab loop turns cudnn.benchmark off, whatever ran before it.
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

from resnet_tui.core import events as ev  # noqa: E402
from resnet_tui.core.config import TrainConfig, build_config  # noqa: E402
from resnet_tui.core.data import Split, load_data  # noqa: E402
from resnet_tui.core.device import describe_device, precision_choice, resolve_device  # noqa: E402
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


def lab_loop(split: Split, device: torch.device, epochs: int = 1, batch_size: int = 128, seed: int = 1234,
             layers: tuple[int, int, int] = (2, 2, 2)) -> float:
    """The notebook's section 5 loop. Returns training images/s."""
    torch.backends.cudnn.benchmark = False  # the notebook never turns it on (a trainer run before this one does)
    np.random.seed(seed)
    torch.manual_seed(seed)
    loader = torch.utils.data.DataLoader(LabCIFAR10(split), batch_size=batch_size, shuffle=True)
    model = ResNet(layers=list(layers)).to(device)
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


LAB_LOOP_SETTINGS = "fp32, NCHW, batch 128, DataLoader, cudnn.benchmark off"


def settings(cfg: TrainConfig) -> str:
    """What a trainer row runs with, said in full so that rows can be compared."""
    device = resolve_device(cfg.device)
    dtype, _ = precision_choice(cfg.precision, device)
    parts = ["bf16 autocast" if dtype is not None else "fp32", "channels_last", f"batch {cfg.batch_size}",
             "augment" if cfg.augment else "no augment", "compile" if cfg.compile else "eager"]
    if device.type == "cuda":
        parts.append("cudnn.benchmark on")
    return ", ".join(parts)


def config(preset: str, device: str, epochs: int, extra: dict | None = None) -> TrainConfig:
    return build_config({}, {"preset": preset, "device": device, "epochs": epochs, **(extra or {})}, resolve_device(device).type)


def trainer_run(cfg: TrainConfig, splits: tuple[Split, Split]) -> dict:
    """One headless run. images/s: all epochs (the trainer's figure) and the last epoch alone (steady state: with
    --compile the first epoch holds the compile); compile_seconds: how much longer the first epoch took than the rest."""
    events: list = []
    with tempfile.TemporaryDirectory() as d:
        end = Trainer(cfg, Path(d) / "run", events.append, splits=splits).run_training()
    if end.status != "finished":
        raise RuntimeError(f"the run did not finish: {end.status}: {end.message}")
    epochs = [e for e in events if isinstance(e, ev.EpochEnd)]
    evals = [e.result for e in events if isinstance(e, ev.EvalEnd)]
    rest = [e.seconds for e in epochs[1:]]
    return {
        "images_per_sec": end.images_per_sec,
        "last_epoch_images_per_sec": epochs[-1].images_per_sec,
        "train_seconds": end.train_seconds,
        "epoch_seconds": [e.seconds for e in epochs],
        "compile_seconds": max(epochs[0].seconds - float(np.median(rest)), 0.0) if cfg.compile and rest else None,
        "accuracy": evals[-1].accuracy if evals else None,
        "tta": evals[-1].tta if evals else None,
        "notices": [e.text for e in events if isinstance(e, ev.Notice)],
        "settings": settings(cfg),
    }


def processes_run(n: int, args: argparse.Namespace) -> tuple[float, str]:
    """The lab preset as N processes through the CLI's launcher (`--gpus N`): the run's own figure, all ranks."""
    import subprocess

    with tempfile.TemporaryDirectory() as d:
        run_dir = Path(d) / "run"
        cmd = [sys.executable, "-m", "resnet_tui", "--no-ui", "train", "--gpus", str(n), "--device", args.device,
               "--data", args.data, "--limit-train", str(args.limit_train), "--limit-eval", "100", "--epochs", str(args.epochs),
               "--run-dir", str(run_dir)]
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"--gpus {n} failed: {proc.stderr[-2000:]}")
        end = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    ranks = ", ".join(f"{x:,.0f}" for x in end.get("rank_images_per_sec", []))
    return end["images_per_sec"], f"{n} process(es); each rank's images/s: {ranks}"


def in_app(cfg: TrainConfig, splits: tuple[Split, Split]) -> float:
    from resnet_tui.app.bench import app_images_per_sec  # the app's own harness

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
    p.add_argument("--compile", action="store_true", help="also time the fast preset with --compile (at least 2 epochs: "
                   "the last epoch's images/s, and the compile time apart)")
    p.add_argument("--procs", help="also time the lab preset as N processes (`--gpus N`, torch.distributed) for each N "
                   "of this comma-separated list, e.g. 1,2 (on a CPU: gloo, the cores shared among the processes)")
    p.add_argument("--only", help="comma-separated row keys to run: lab-loop, lab, fast-fp32, fast-bf16, compile, app, procs-N")
    p.add_argument("--json", dest="json_out", help="write the results to this JSON file")
    args = p.parse_args()

    device = resolve_device(args.device)
    splits = load_data(args.data, None, args.limit_train, 100)
    print(f"machine: {platform.processor() or platform.machine()}, {describe_device(device)}, torch {torch.__version__}")
    print(f"data: {len(splits[0]):,} training images from {splits[0].source}, {args.epochs} epoch(s), {args.rounds} round(s)")

    def ours(cfg: TrainConfig) -> tuple[float, str]:
        r = trainer_run(cfg, splits)
        if cfg.compile:
            print(f"    compile: about {r['compile_seconds']:.1f} s in the first epoch; notices: {r['notices']}")
            return r["last_epoch_images_per_sec"], r["settings"]
        return r["images_per_sec"], r["settings"]

    lab = config("lab", args.device, args.epochs)
    rows = {
        "lab-loop": ("lab loop (notebook)", lambda: (lab_loop(splits[0], device, args.epochs), LAB_LOOP_SETTINGS)),
        "lab": ("resnet-tui, lab preset", lambda: ours(lab)),
        "fast-fp32": ("resnet-tui, fast preset, fp32", lambda: ours(config("fast", args.device, args.epochs, {"precision": "fp32", "compile": False}))),
        "fast-bf16": ("resnet-tui, fast preset, bf16", lambda: ours(config("fast", args.device, args.epochs, {"precision": "bf16", "compile": False}))),
    }
    if args.compile:
        rows["compile"] = ("resnet-tui, fast preset, --compile", lambda: ours(config("fast", args.device, max(args.epochs, 2), {"compile": True})))
    if args.app:
        rows["app"] = ("resnet-tui app, lab preset", lambda: (in_app(lab, splits), settings(lab)))
    for n in [int(x) for x in args.procs.split(",")] if args.procs else []:
        rows[f"procs-{n}"] = (f"resnet-tui, lab preset, --gpus {n}", lambda n=n: processes_run(n, args))
    if args.only:
        rows = {k: v for k, v in rows.items() if k in args.only.split(",")}

    best: dict[str, float] = {}
    how: dict[str, str] = {}
    for r in range(args.rounds):
        for name, run in rows.values():
            ips, how[name] = run()
            best[name] = max(best.get(name, 0.0), ips)
            print(f"  round {r + 1}: {name:<36} {ips:10,.1f} images/s", flush=True)

    base = best.get("lab loop (notebook)")
    print()
    print(f"{'setup':<38}{'images/s':>12}{'vs lab loop':>14}  settings")
    for name, ips in best.items():
        ratio = f"{ips / base:13.2f}x" if base else f"{'-':>14}"
        print(f"{name:<38}{ips:12,.1f}{ratio}  {how[name]}")
    if "resnet-tui app, lab preset" in best and "resnet-tui, lab preset" in best:
        ratio = best["resnet-tui app, lab preset"] / best["resnet-tui, lab preset"]
        print(f"in-app / headless (lab preset): {ratio:.3f}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"device": describe_device(device), "images_per_sec": best, "settings": how}, indent=2))


if __name__ == "__main__":
    main()

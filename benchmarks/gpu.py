"""The GPU acceptance command: one run that measures what issue 11 asks of resnet-tui on a GPU.

    python3 benchmarks/gpu.py                      # on a machine with one H100/H200: about 5 minutes
    python3 benchmarks/gpu.py --smoke              # the same code paths on the CPU, tiny, in under a minute

It writes OUT/gpu.json and OUT/gpu.txt (the table) and prints the table:
  throughput (images/s, the last epoch of 2-3 on 10,240 training images; each row says its settings) of the
  notebook's loop, the lab preset, the fast preset without and with --compile (compile time apart), and the lab
  preset inside the app (headless terminal; skipped with a note when textual is not installed);
  the eval-every-epoch overhead: one evaluation of the test split (without and with TTA) against one fast epoch;
  time to accuracy: the fast preset on the full data (accuracy with and without TTA, seconds of training,
  compile time apart).
Needs torch >= 2.11, torchvision, numpy, pillow and scikit-learn; textual only for the app row. No network: the
data is the JPEG folder (--data, default ../shared/data/cifar10-jpeg beside the repository); decoded arrays are cached
under OUT/cache. --smoke compiles with dynamo's eager backend (tracing, guards and the fallback, without the minutes
inductor takes on a small CPU).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import torch  # noqa: E402

import bench  # noqa: E402  (benchmarks/bench.py: the notebook's loop and the trainer runs)
from resnet_tui.core import events as ev  # noqa: E402
from resnet_tui.core.config import preset_values  # noqa: E402
from resnet_tui.core.data import DeviceBatches, load_data  # noqa: E402
from resnet_tui.core.device import describe_device, resolve_device  # noqa: E402
from resnet_tui.core.evaluate import evaluate_checkpoint, evaluate_model  # noqa: E402
from resnet_tui.core.model import ResNet  # noqa: E402
from resnet_tui.core.train import Trainer  # noqa: E402



def sizes(smoke: bool) -> dict:
    if smoke:  # the smallest run that goes through every path: 2 batches an epoch, 2 epochs, the 8-layer network
        return {"throughput_images": 128, "full_train": 128, "eval_images": 64, "epochs": 2, "tta_epochs": 2,
                "extra": {"layers": (1, 1, 1), "batch_size": 64}}
    return {"throughput_images": 10_240, "full_train": None, "eval_images": None, "epochs": 2, "tta_epochs": None, "extra": {}}


def eager_backend_compile() -> None:
    """--smoke: torch.compile through dynamo with the eager backend (no code generation)."""
    real = torch.compile
    torch.compile = lambda model, mode=None, dynamic=None: real(model, backend="eager", dynamic=dynamic)  # type: ignore[assignment]


def throughput_rows(s: dict, data: str, device: str, results: dict) -> None:
    splits = load_data(data, None, s["throughput_images"], s["eval_images"] or 1000)
    ep, extra = s["epochs"], s["extra"]
    rows = results["throughput"] = []

    def add(name: str, ips: float, settings: str, **more) -> None:
        rows.append({"setup": name, "images_per_sec": round(ips, 1), "settings": settings, **more})
        print(f"  {name}: {ips:,.1f} images/s", flush=True)

    layers = extra.get("layers", (2, 2, 2))
    add("the notebook's loop", bench.lab_loop(splits[0], resolve_device(device), 1, layers=layers), bench.LAB_LOOP_SETTINGS)
    lab = bench.config("lab", device, ep, extra)
    r = bench.trainer_run(lab, splits)
    add("lab preset", r["last_epoch_images_per_sec"], r["settings"])
    r = bench.trainer_run(bench.config("fast", device, ep, {**extra, "compile": False}), splits)
    add("fast preset, no compile", r["last_epoch_images_per_sec"], r["settings"])
    r = bench.trainer_run(bench.config("fast", device, ep + 1, {**extra, "compile": True}), splits)
    add("fast preset, compile", r["last_epoch_images_per_sec"], r["settings"], compile_seconds=round(r["compile_seconds"] or 0, 1),
        notices=r["notices"])
    try:
        import textual  # noqa: F401
    except ImportError:
        results["notes"].append("app row skipped: textual is not installed (pip install textual textual-plotext)")
        return
    # the app reports the whole run's images/s: compare it with the headless run of the same config
    headless = bench.trainer_run(lab, splits)["images_per_sec"]
    app = bench.in_app(lab, splits)
    add("app, lab preset (headless terminal)", app, bench.settings(lab), vs_headless=round(app / headless, 3))


def time_to_accuracy(s: dict, data: str, device: str, results: dict) -> None:
    splits = load_data(data, None, s["full_train"], s["eval_images"])
    epochs = s["tta_epochs"] or preset_values("fast", resolve_device(device).type)["epochs"]
    # evaluated once, at the end: the per-epoch evaluation's cost is measured apart (eval_overhead)
    cfg = bench.config("fast", device, epochs, s["extra"]).replace(eval_every=0)
    events: list = []
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        end = Trainer(cfg, Path(d) / "run", events.append, splits=splits).run_training()
        wall = time.perf_counter() - t0
        if end.status != "finished":
            raise RuntimeError(f"the fast preset run did not finish: {end.status}: {end.message}")
        last = Path(d) / "run" / "checkpoints" / f"cifar10_model_epoch_{cfg.epochs - 1}.pth"
        plain = evaluate_checkpoint(str(last), splits[1], resolve_device(device))
    epochs = [e.seconds for e in events if isinstance(e, ev.EpochEnd)]
    with_tta = [e.result for e in events if isinstance(e, ev.EvalEnd)][-1]
    rest = statistics.median(epochs[1:]) if len(epochs) > 1 else epochs[0]
    results["time_to_accuracy"] = {
        "settings": bench.settings(cfg), "epochs": cfg.epochs, "batch_size": cfg.batch_size, "lr": cfg.lr,
        "train_images": len(splits[0]), "test_images": len(splits[1]),
        "accuracy": plain.accuracy, "accuracy_tta": with_tta.accuracy, "tta_recorded": with_tta.tta,
        "train_seconds": round(end.train_seconds, 1), "compile_seconds": round(max(epochs[0] - rest, 0.0), 1) if cfg.compile else None,
        "train_seconds_without_compile": round(end.train_seconds - (max(epochs[0] - rest, 0.0) if cfg.compile else 0.0), 1),
        "wall_seconds_with_eval": round(wall, 1), "median_epoch_seconds": round(rest, 2),
        "notices": [e.text for e in events if isinstance(e, ev.Notice)],
    }
    eval_overhead(splits, device, cfg.layers, rest, results)


def eval_overhead(splits, device: str, layers, epoch_seconds: float, results: dict) -> None:
    """One evaluation of the test split after every epoch would cost this much per epoch."""
    dev = resolve_device(device)
    model = ResNet(layers).to(dev).to(memory_format=torch.channels_last)
    test = DeviceBatches(splits[1], dev)
    out = {}
    for tta in (False, True):
        evaluate_model(model, test, splits[1].classes, tta=tta)  # warm-up (cuDNN algorithm choice)
        t0 = time.perf_counter()
        evaluate_model(model, test, splits[1].classes, tta=tta)
        out["tta" if tta else "plain"] = time.perf_counter() - t0
    results["eval_overhead"] = {
        "eval_seconds": round(out["plain"], 3), "eval_seconds_tta": round(out["tta"], 3), "epoch_seconds": round(epoch_seconds, 3),
        "overhead": round(out["plain"] / epoch_seconds, 3), "overhead_tta": round(out["tta"] / epoch_seconds, 3),
    }


def table(results: dict) -> str:
    lines = [f"{results['device']}, torch {results['torch']}, {results['machine']}", "",
             f"{'setup':<40}{'images/s':>11}{'vs notebook':>13}  settings"]
    rows = results.get("throughput", [])
    base = rows[0]["images_per_sec"] if rows else 0
    for r in rows:
        extra = ""
        if r.get("compile_seconds") is not None:
            extra = f"  (compile: {r['compile_seconds']} s, apart)"
        if r.get("vs_headless") is not None:
            extra = f"  ({r['vs_headless']:.3f} of headless)"
        lines.append(f"{r['setup']:<40}{r['images_per_sec']:>11,.1f}{r['images_per_sec'] / base:>12.2f}x  {r['settings']}{extra}")
    if "eval_overhead" in results:
        e = results["eval_overhead"]
        lines += ["", f"eval every epoch: {e['eval_seconds']} s per evaluation ({e['overhead']:.1%} of a fast epoch of "
                      f"{e['epoch_seconds']} s); with TTA {e['eval_seconds_tta']} s ({e['overhead_tta']:.1%})"]
    if "time_to_accuracy" in results:
        t = results["time_to_accuracy"]
        lines += ["", f"time to accuracy, fast preset ({t['epochs']} epochs, batch {t['batch_size']}, lr {t['lr']}; {t['settings']}; "
                      f"{t['train_images']:,} training / {t['test_images']:,} test images):",
                  f"  accuracy {t['accuracy']:.2%}, with flip TTA {t['accuracy_tta']:.2%}",
                  f"  training {t['train_seconds']} s"
                  + (f", of which compile about {t['compile_seconds']} s ({t['train_seconds_without_compile']} s without it)"
                     if t["compile_seconds"] is not None else " (not compiled)")
                  + f"; with the final evaluation {t['wall_seconds_with_eval']} s"]
    lines += [f"note: {n}" for n in results["notes"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(bench.DEFAULT_DATA), help="the CIFAR-10 JPEG folder (train/ and test/)")
    p.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    p.add_argument("--out", default="gpu-results", help="where gpu.json and gpu.txt go")
    p.add_argument("--smoke", action="store_true", help="the same code paths on the CPU, tiny (under a minute)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RESNET_TUI_CACHE", str(out / "cache"))  # decoded images; no platformdirs needed
    device = args.device or ("cpu" if args.smoke else "cuda")
    if args.smoke:
        eager_backend_compile()
    s = sizes(args.smoke)
    dev = resolve_device(device)
    results: dict = {"device": describe_device(dev), "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
                     "smoke": args.smoke, "notes": []}
    if args.smoke:
        results["notes"].append("smoke run: tiny data and network, compile through dynamo's eager backend; no figure here means anything")
    t0 = time.perf_counter()
    print(f"{results['device']}, torch {results['torch']}", flush=True)
    throughput_rows(s, args.data, device, results)
    time_to_accuracy(s, args.data, device, results)
    results["total_seconds"] = round(time.perf_counter() - t0, 1)
    text = table(results)
    (out / "gpu.json").write_text(json.dumps(results, indent=2))
    (out / "gpu.txt").write_text(text)
    print()
    print(text, end="")
    print(f"written: {out / 'gpu.json'}, {out / 'gpu.txt'} ({results['total_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

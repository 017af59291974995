"""Helpers of the app tests: fake run directories, waiting on the app, reading the screen."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from resnet_tui.core.config import TrainConfig
from resnet_tui.app.screenshots import screen_text

__all__ = ["batch_records", "eval_record", "screen_text", "shown_text", "start_record", "wait_for", "write_run"]


def shown_text(widget: Any) -> str:
    """The plain text a Static shows, if it is on screen (displayed, with a non-empty region); else ""."""
    from rich.text import Text
    from textual.content import Content

    if not widget.display or widget.region.area == 0:
        return ""
    c = widget.content
    if isinstance(c, (Text, Content)):
        return c.plain
    if isinstance(c, str):
        return Content.from_markup(c).plain
    import io

    from rich.console import Console  # another renderable (a table): as it prints at the widget's width

    console = Console(width=max(widget.content_size.width, 20), file=io.StringIO(), color_system=None, record=True)
    console.print(c)
    return console.export_text()


def write_run(run_dir: Path, records: list[dict[str, Any]], config: TrainConfig | None = None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.toml").write_text((config or TrainConfig()).to_toml())
    with open(run_dir / "metrics.jsonl", "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
    return run_dir


def start_record(cfg: TrainConfig, batches_per_epoch: int, time_utc: str = "2026-11-28 10:00:00") -> dict[str, Any]:
    return {"event": "start", "time_utc": time_utc, "device": "CPU", "param_count": 205338, "n_train": batches_per_epoch * cfg.batch_size,
            "n_test": 100, "batches_per_epoch": batches_per_epoch, "resumed_at": None, "config": cfg.to_dict()}


def batch_records(epoch: int, batches: int, batch_size: int, start_loss: float = 2.3, step: float = 0.01,
                  first_image: int = 0, first_time: float = 0.0) -> list[dict[str, Any]]:
    out = []
    for b in range(1, batches + 1):
        out.append({"event": "batch", "epoch": epoch, "batch": b, "loss": round(start_loss - step * b, 4),
                    "images": first_image + b * batch_size, "time": round(first_time + 0.5 * b, 4), "lr": 0.001})
    return out


def eval_record(epoch: int, accuracy: float = 0.5) -> dict[str, Any]:
    classes = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    confusion = [[5 if i == j else (1 if j == (i + 1) % 10 else 0) for j in range(10)] for i in range(10)]
    return {"event": "eval", "epoch": epoch, "accuracy": accuracy, "nll": 1.2345, "n": 60, "classes": classes,
            "confusion": confusion, "precision": [0.833] * 10, "recall": [0.833] * 10, "f1": [0.833] * 10}


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)

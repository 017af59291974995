"""Helpers of the app tests: fake run directories, waiting on the app, reading the screen."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Callable

from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.config import TrainConfig
from resnet_tui.app.screenshots import screen_text

__all__ = ["batch_records", "checkpoint_record", "end_record", "epoch_record", "eval_record", "read_records", "screen_text",
           "shown_text", "start_record", "wait_for", "write_run"]


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


def record(event: ev.Event) -> dict[str, Any]:
    """The metrics.jsonl record the trainer writes for `event` (resnet_tui.core.records)."""
    out = records.to_record(event)
    assert out is not None
    return out


def start_record(cfg: TrainConfig, batches_per_epoch: int, time_utc: str = "2026-11-28 10:00:00") -> dict[str, Any]:
    return record(ev.TrainStart(cfg.to_dict(), "", "CPU", 205338, batches_per_epoch * cfg.batch_size, 100, batches_per_epoch,
                                time_utc=time_utc))


def batch_records(epoch: int, batches: int, batch_size: int, start_loss: float = 2.3, step: float = 0.01,
                  first_image: int = 0, first_time: float = 0.0) -> list[dict[str, Any]]:
    return [record(ev.BatchEnd(epoch, b, round(start_loss - step * b, 4), first_image + b * batch_size, first_time + 0.5 * b, 0.001))
            for b in range(1, batches + 1)]


def epoch_record(epoch: int, train_loss: float, seconds: float = 2.0, images_per_sec: float = 256.0) -> dict[str, Any]:
    return record(ev.EpochEnd(epoch, train_loss, seconds, images_per_sec))


def checkpoint_record(epoch: int) -> dict[str, Any]:
    return record(ev.CheckpointSaved(epoch, f"checkpoints/cifar10_model_epoch_{epoch - 1}.pth"))


def end_record(status: str, images_per_sec: float, train_seconds: float, message: str = "") -> dict[str, Any]:
    return record(ev.RunEnd(status, images_per_sec, train_seconds, message))


def eval_record(epoch: int, accuracy: float = 0.5) -> dict[str, Any]:
    classes = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    confusion = [[5 if i == j else (1 if j == (i + 1) % 10 else 0) for j in range(10)] for i in range(10)]
    return record(ev.EvalEnd(epoch, ev.EvalResult(1.2345, accuracy, 60, classes, confusion, [0.833] * 10, [0.833] * 10, [0.833] * 10, [], [])))


def read_records(run_dir: Path) -> list[dict[str, Any]]:
    """A run's metrics.jsonl as records, read through resnet_tui.core.records."""
    return [records.to_record(e, run_dir) or {} for e in records.read_run(run_dir).events]


async def wait_for(pilot: Any, condition: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> None:
    """Let the app run until `condition()` is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        await pilot.pause(0.05)


async def type_into(pilot, app, field: str, text: str) -> None:
    """Focus a field, clear it, and type `text` key by key."""
    from textual.widgets import Input

    widget = app.screen.query_one(f"#field-{field}", Input)
    widget.focus()
    await pilot.pause()
    widget.value = ""
    await pilot.press(*text)
    await pilot.pause()

"""The app's harness for the throughput benchmark (benchmarks/bench.py --app): train inside the full app,
running headless under App.run_test, and report the trainer's own training images/s."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from resnet_tui.core.config import TrainConfig


def app_images_per_sec(cfg: TrainConfig, run_dir: str | Path, splits: tuple[Any, Any] | None = None,
                       size: tuple[int, int] = (120, 40), timeout: float | None = None) -> float:
    """Train `cfg` into `run_dir` inside the app (Train screen showing: live chart, progress and log) and
    return RunEnd.images_per_sec, the same measure the headless trainer reports."""
    from resnet_tui.app.app import train_in_app

    end = asyncio.run(train_in_app(cfg, run_dir, size=size, timeout=timeout, splits=splits))
    if end is None or end.status != "finished":
        raise RuntimeError(f"the in-app run did not finish: {end}")
    return end.images_per_sec

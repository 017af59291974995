"""Fixtures of the app tests: tiny real configs on the shared CIFAR-10 folder, a trained checkpoint,
a fixed runs folder, and helpers to wait on the app without sleeping blindly."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterator

import pytest

from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.lock import RunLock

from app_helpers import batch_records, end_record, epoch_record, eval_record, record, start_record, write_run

FIXED_LOG_TIME = "20261128-10:00:00"


@pytest.fixture
def tiny_config(cifar_dir: Path) -> TrainConfig:
    """Two epochs of two batches: 64 training images, 50 test images, the smallest network."""
    return TrainConfig(data=str(cifar_dir), epochs=2, batch_size=32, layers=(1, 1, 1), limit_train=64, limit_eval=50, device="cpu")


@pytest.fixture(scope="session")
def trained_run(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run directory with one epoch checkpoint, made by the engine's Trainer (no app)."""
    from resnet_tui.core.train import Trainer

    run_dir = tmp_path_factory.mktemp("trained") / "run"
    cfg = TrainConfig(data=str(cifar_dir), epochs=1, batch_size=32, layers=(1, 1, 1), limit_train=64, limit_eval=50, device="cpu")
    end = Trainer(cfg, run_dir, lambda e: None).run_training()
    assert end.status == "finished"
    return run_dir


@pytest.fixture
def fixed_log_time(monkeypatch: pytest.MonkeyPatch) -> str:
    """The lab-style log lines carry the wall-clock time; snapshots need it fixed."""
    import resnet_tui.core.lablog

    monkeypatch.setattr(resnet_tui.core.lablog, "lab_time", lambda: FIXED_LOG_TIME)
    return FIXED_LOG_TIME


@pytest.fixture
def runs_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A runs folder with a finished, an interrupted, a diverged and a running run (fixed content; shown as ./runs)."""
    root = tmp_path / "runs"
    lab = TrainConfig(epochs=2, batch_size=128)
    write_run(root / "20261128-100000", [start_record(lab, 4, "2026-11-28 10:00:00"), *batch_records(1, 4, 128), epoch_record(1, 2.275),
                                         *batch_records(2, 4, 128, 2.2, first_image=512, first_time=2.0), epoch_record(2, 2.175),
                                         eval_record(2, 0.5), end_record("finished", 256.0, 4.0)], lab)
    adam = TrainConfig(epochs=3, batch_size=128, optimizer="adam", lr=0.01)
    write_run(root / "20261128-110000", [start_record(adam, 4, "2026-11-28 11:00:00"), *batch_records(1, 2, 128),
                                         end_record("interrupted", 250.0, 1.0, "stopped at epoch 1, batch 2")], adam)
    hot = TrainConfig(epochs=1, batch_size=128, lr=5.0)
    write_run(root / "20261128-120000", [start_record(hot, 4, "2026-11-28 12:00:00"), *batch_records(1, 2, 128),
                                         record(ev.BatchEnd(1, 3, float("nan"), 384, 1.5, 5.0)),
                                         end_record("diverged", 250.0, 1.5, "the loss became non-finite at epoch 1, batch 3")], hot)
    running = write_run(root / "20261128-130000", [start_record(lab, 4, "2026-11-28 13:00:00"), *batch_records(1, 3, 128)], lab)
    now = time.time()
    os.utime(running / "metrics.jsonl", (now, now))
    monkeypatch.chdir(tmp_path)
    with RunLock(running):  # a run is running while its lock is held (by this test, as by a trainer)
        yield Path("runs")


GIB = 2**30


class FixedMachine:
    """A sampler of a machine that never changes: one H200 at work, and the host."""

    def sample(self) -> ev.SystemSample:
        gpu = ev.GpuSample(0, "NVIDIA H200", 97.0, int(11.2 * GIB), int(139.8 * GIB), 310.0, 64.0)
        return ev.SystemSample(0.0, 98.0, int(1.2 * GIB), 51.0, int(5.5 * GIB), int(23.5 * GIB), [gpu])


@pytest.fixture
def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The system panel shows FixedMachine instead of this machine (snapshots)."""
    from resnet_tui.app.widgets import system_panel

    monkeypatch.setattr(system_panel, "SystemSampler", FixedMachine)


@pytest.fixture
def data_link(cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The shared data under a fixed relative path, so no machine-specific path is shown
    (snapshots); colours as the terminal has them, whatever NO_COLOR the tests run under."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "cifar10-jpeg").symlink_to(cifar_dir, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return "data/cifar10-jpeg"

"""Shared fixtures. Tests use the real CIFAR-10 images in ../shared/data/cifar10-jpeg (or $RESNET_TUI_TEST_DATA)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RESNET_TUI_TEST_DATA", ROOT.parent / "shared" / "data" / "cifar10-jpeg"))

# One decode cache per test session: tests never touch the user's cache, and repeated loads within a session are fast.
os.environ.setdefault("RESNET_TUI_CACHE", tempfile.mkdtemp(prefix="resnet-tui-test-cache-"))


@pytest.fixture(scope="session")
def cifar_dir() -> Path:
    assert (SHARED_DATA / "train").is_dir() and (SHARED_DATA / "test").is_dir(), (
        f"the real CIFAR-10 image folder is missing at {SHARED_DATA}; set RESNET_TUI_TEST_DATA"
    )
    return SHARED_DATA


# ---------------------------------------------------------------- helpers for the engine and headless-CLI tests

import json
import subprocess
import sys


def run_cli(*args: str, timeout: float = 300, cwd: str | Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m resnet_tui <args>` in a fresh process; stdout and stderr are pipes, so the headless printer writes lab lines."""
    return subprocess.run(
        [sys.executable, "-m", "resnet_tui", *args], capture_output=True, text=True, timeout=timeout,
        cwd=str(cwd or ROOT), env={**os.environ, **(env or {})},
    )


def tiny_flags(cifar_dir: Path, limit_train: int = 96, limit_eval: int = 40, batch_size: int = 16) -> list[str]:
    """A few real CIFAR-10 images and the smallest network: training flags for CLI tests that are about the plumbing."""
    return ["--data", str(cifar_dir), "--limit-train", str(limit_train), "--limit-eval", str(limit_eval),
            "--layers", "1,1,1", "--batch-size", str(batch_size), "--device", "cpu"]


def read_metrics_strict(path: Path) -> list[dict]:
    """Every line of metrics.jsonl parsed as strict JSON (NaN/Infinity are refused), each with an "event"."""

    def refuse(name: str):
        raise AssertionError(f"{path}: non-JSON constant {name} in metrics.jsonl")

    lines = path.read_text(encoding="utf-8").splitlines()
    out = [json.loads(line, parse_constant=refuse) for line in lines]
    assert all(isinstance(o, dict) and "event" in o for o in out), "every metrics line is an object with an 'event' key"
    return out


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def tiny_run(cifar_dir, tmp_path_factory):
    """One finished 2-epoch headless run (subprocess), configured through a TOML file that flags partly override.

    Returns (run_dir, completed_process, expected): expected holds the values the resolved config must have.
    """
    base = tmp_path_factory.mktemp("tiny-run")
    cfg_file = base / "cfg.toml"
    # the file sets epochs/batch/lr/seed; the flags override lr and batch size
    cfg_file.write_text('epochs = 2\nbatch_size = 64\nlr = 0.5\nseed = 7\noptimizer = "sgd"\nmomentum = 0.9\n')
    run_dir = base / "run"
    flags = tiny_flags(cifar_dir, limit_train=96, limit_eval=40, batch_size=16)
    proc = run_cli("--no-ui", "train", "--config", str(cfg_file), *flags, "--lr", "0.01", "--run-dir", str(run_dir))
    expected = {"epochs": 2, "batch_size": 16, "lr": 0.01, "seed": 7, "momentum": 0.9, "optimizer": "sgd",
                "layers": [1, 1, 1], "limit_train": 96, "limit_eval": 40, "batches_per_epoch": 6}
    return run_dir, proc, expected


@pytest.fixture
def tiny():
    """tiny_flags(cifar_dir, ...) as a fixture, for test modules (they do not import conftest)."""
    return tiny_flags


@pytest.fixture
def metrics_of():
    """read_metrics_strict(path) as a fixture."""
    return read_metrics_strict

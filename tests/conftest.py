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

"""Snapshots of the diff of two evaluations (EvalDiffScreen, with a fixed hand-made diff) at 80x24 and 120x40.

Update with `pytest tests/app/test_app_eval_diff_snapshots.py --snapshot-update`, then look at the SVGs."""

from __future__ import annotations

from pathlib import Path

import pytest

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.eval_diff import EvalDiffScreen
from resnet_tui.core.config import TrainConfig

from test_app_eval_diff import A_NAME, B_NAME, fixed_diff

SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_eval_diff_screen(snap_compare, size, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)

    async def push(pilot) -> None:
        await pilot.app.push_screen(EvalDiffScreen(fixed_diff(), A_NAME, B_NAME))
        await pilot.pause()

    app = ResNetApp(config=TrainConfig(data="sample"), device_label="CPU")
    assert snap_compare(app, terminal_size=size, run_before=push)

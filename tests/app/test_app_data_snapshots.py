"""Snapshots of the Data screen at 80x24: a zoomed image panned away from its centre, and the screen drawn for an
8-colour terminal (TEXTUAL_COLOR_SYSTEM=standard, TERM=xterm) and under NO_COLOR. Fixed content: the shared
CIFAR-10 folder through a fixed relative path, a fixed subset.

Update with `pytest tests/app/test_app_data_snapshots.py --snapshot-update`, then look at the SVGs."""

from __future__ import annotations


import pytest

from resnet_tui.app.app import ResNetApp
from resnet_tui.core.config import TrainConfig

from app_helpers import wait_for


def data_app(data: str) -> ResNetApp:
    return ResNetApp(config=TrainConfig(data=data, limit_train=100, limit_eval=50), runs_root="runs", device_label="CPU")


def open_data_then(*keys: str):
    async def run_before(pilot) -> None:
        await pilot.press("3")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "split", None) is not None, 60, "the split")
        await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_data_screen_zoomed_3x_and_panned(snap_compare, data_link):
    # the fourth image, 3x, centred, then two steps right and one down
    assert snap_compare(data_app(data_link), terminal_size=(80, 24), run_before=open_data_then("right", "right", "right",
                                                                                                  "z", "z", "z", "l", "l", "j"))


def test_data_screen_in_8_colours(snap_compare, data_link, monkeypatch):
    import textual.constants

    monkeypatch.setattr(textual.constants, "COLOR_SYSTEM", "standard")  # as TEXTUAL_COLOR_SYSTEM=standard does
    monkeypatch.setenv("TERM", "xterm")
    assert snap_compare(data_app(data_link), terminal_size=(80, 24), run_before=open_data_then("right", "right", "right",
                                                                                                  "z", "z"))


def test_data_screen_without_colour(snap_compare, data_link, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert snap_compare(data_app(data_link), terminal_size=(80, 24), run_before=open_data_then("right", "right", "right"))

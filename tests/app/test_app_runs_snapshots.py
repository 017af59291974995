"""Snapshots of the Runs screen filtered and sorted, and of Compare with its table of what differs, at 80x24 and 120x40,
on the fixed runs folder of conftest.runs_root (no clock: the runs' times are in their records).

Update with `pytest tests/app/test_app_runs_snapshots.py --snapshot-update`, then look at the SVGs."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.compare import CompareScreen
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.core.config import TrainConfig

from app_helpers import wait_for

SIZES = [(80, 24), (120, 40)]


def snapshot_app(runs_root) -> ResNetApp:
    return ResNetApp(config=TrainConfig(data="sample"), runs_root=runs_root, device_label="CPU")


async def open_runs(pilot) -> DataTable:
    await pilot.press("5")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen), 5, "the Runs screen")
    table = pilot.app.screen.query_one(DataTable)
    await wait_for(pilot, lambda: table.row_count == 4, 5, "the runs")
    return table


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen_filtered_and_sorted(snap_compare, size, runs_root) -> None:
    async def filtered(pilot) -> None:
        table = await open_runs(pilot)
        await pilot.press(">", ">", ">")  # sorted by the number of epochs, the most first
        await pilot.press("/", *"lr<0.1", "enter")  # the list keeps the focus, the filter line stays
        await wait_for(pilot, lambda: table.row_count == 3, 5, "the filtered runs")

    assert snap_compare(snapshot_app(runs_root), terminal_size=size, run_before=filtered)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_compare_with_the_table_of_differences(snap_compare, size, runs_root) -> None:
    async def compared(pilot) -> None:
        table = await open_runs(pilot)
        for row in (2, 3):  # the interrupted adam run and the finished lab run
            table.move_cursor(row=row)
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.loaded, 10, "the comparison")

    assert snap_compare(snapshot_app(runs_root), terminal_size=size, run_before=compared)

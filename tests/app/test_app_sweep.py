"""Sweep mode (`resnet-tui sweep` without --no-ui): the runs progress in a table, the current run in the live
monitor, the ranked table at the end; quitting asks first and stops cleanly."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.dialogs import ConfirmQuit
from resnet_tui.app.screens.sweep import SweepScreen
from resnet_tui.core.sweep import parse_axes, plan_sweep

from app_helpers import shown_text, wait_for


def tiny_plan(cifar_dir: Path, out: Path, epochs: str = "1"):
    values = parse_axes({"optimizer": "sgd,adam", "data": str(cifar_dir), "epochs": epochs, "batch_size": "32", "layers": "1,1,1",
                         "limit_train": "64", "limit_eval": "50", "device": "cpu"})
    return plan_sweep(out, values, None, "cpu")


async def test_a_two_run_sweep_progresses_in_the_table_and_ends_ranked(cifar_dir, tmp_path):
    plan = tiny_plan(cifar_dir, tmp_path / "sweep")
    app = ResNetApp(mode="sweep", plan=plan, device_label="CPU")
    seen_running: list[str] = []
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10, "the sweep screen")
        screen = app.screen
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        assert [str(table.get_row_at(i)[1]) for i in range(2)] == ["optimizer=sgd", "optimizer=adam"]
        assert app.training

        def watch() -> bool:
            for i in range(table.row_count):
                if str(table.get_row_at(i)[2]).endswith("running"):
                    seen_running.append(str(table.get_row_at(i)[1]))
            return app.sweep_end is not None
        await wait_for(pilot, watch, 240, "the sweep to finish")
        assert not app.training
        # both runs were seen training, the first one first
        assert seen_running and seen_running[0] == "optimizer=sgd" and "optimizer=adam" in seen_running
        assert app.sweep_end.status == "finished"
        # the current run's live view got the second run's batches (2 batches of 32 of 64 images)
        assert screen.monitor.progress.batches_done == 2 and screen.monitor.chart.point_count == 2
        assert screen.monitor.progress.start.config["optimizer"] == "adam"
        # the ranked table: best accuracy first, every run finished with its accuracy and batch counts
        ranked = [[str(c) for c in table.get_row_at(i)] for i in range(2)]
        expected = [r.name for r in app.sweep_end.ranked()]
        assert [row[1] for row in ranked] == expected and [row[0] for row in ranked] == ["1", "2"]
        for row, r in zip(ranked, app.sweep_end.ranked()):
            assert row[2] == "finished" and row[3] == "1/1" and row[4] == "2/2" and row[6] == f"{r.accuracy:.2%}"
        assert str(table.columns["#"].label) == "Rank"
        assert "Sweep finished" in shown_text(screen.query_one("#sweep-title"))
        doc = json.loads((plan.out / "sweep.json").read_text())
        assert doc["status"] == "finished" and [r["status"] for r in doc["runs"]] == ["finished", "finished"]
        # Esc goes back to the runs list once the sweep is done
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, SweepScreen), 5, "the runs list")


async def test_quitting_a_sweep_asks_first_then_stops_the_run_and_saves(cifar_dir, tmp_path):
    plan = tiny_plan(cifar_dir, tmp_path / "sweep", epochs="50")
    app = ResNetApp(mode="sweep", plan=plan, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 10, "the sweep screen")
        screen = app.screen
        await wait_for(pilot, lambda: screen.monitor.progress.batches_done >= 1, 60, "the first batch")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuit), 5, "the question")
        assert "A sweep is running." in str(app.screen.query_one(".dialog-title").content)
        await pilot.press("n")  # keep going
        await wait_for(pilot, lambda: isinstance(app.screen, SweepScreen), 5, "the sweep again")
        assert app.training
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuit), 5, "the question again")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.sweep_end is not None or not app.is_running, 60, "the stop")
    assert app.sweep_end is not None and app.sweep_end.status == "interrupted"
    doc = json.loads((plan.out / "sweep.json").read_text())
    assert doc["status"] == "interrupted"
    assert doc["runs"][0]["status"] == "interrupted" and doc["runs"][1]["status"] == "pending"
    assert (plan.out / "optimizer=sgd" / "resume.pt").exists()  # the stopped run can resume

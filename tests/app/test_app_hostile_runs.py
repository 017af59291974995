"""Hostile run folders on the Runs screen and in the run viewer: folder names and statuses are shown as text (never
read as markup, escape codes written out), damaged lines are skipped and counted, and a followed run that is resumed
after a kill shows every batch once."""

from __future__ import annotations

import json
from pathlib import Path

from textual.widgets import DataTable

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.run_view import RunViewScreen
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig

from app_helpers import (batch_records, end_record, epoch_record, record, screen_text, shown_text, start_record, wait_for,
                         write_run)

CFG = TrainConfig(epochs=1, batch_size=128)


def finished(status: str = "finished", classes: list[str] | None = None) -> list[dict]:
    evaluation = []
    if classes is not None:
        k = len(classes)
        result = ev.EvalResult(1.5, 0.5, 2 * k, classes, [[2 if i == j else 0 for j in range(k)] for i in range(k)], [1.0] * k,
                               [1.0] * k, [1.0] * k, [], [])
        evaluation = [record(ev.EvalEnd(1, result))]
    return [start_record(CFG, 4), *batch_records(1, 4, 128), epoch_record(1, 2.27), *evaluation, end_record(status, 256.0, 2.0)]


def hostile_root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    write_run(root / "[baseline]", finished(), CFG)
    write_run(root / "closing-tag", finished("[/]", classes=["[/]", "[bold]cat", "\x1b[31mdog"]), CFG)
    write_run(root / "ansi", finished("\x1b[31mred"), CFG)
    sweep = root / "a["
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text('{"version": 1, "runs": []}\n')
    write_run(sweep / "]b", finished(), CFG)
    damaged = write_run(root / "damaged", finished(), CFG)
    with open(damaged / "metrics.jsonl", "ab") as f:
        f.write(b'\xff\xfe\n{"event": "epoch", "epoch": "x"}\n{"event": "end", "status": 5}\n')
    (root / "metrics-folder" / "metrics.jsonl").mkdir(parents=True)
    return root


async def test_the_runs_screen_shows_names_and_statuses_from_files_as_text(tmp_path: Path) -> None:
    app = ResNetApp(runs_root=hostile_root(tmp_path), config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the Runs screen")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 6, 5, "six runs")
        # status and folder of each row, as shown (the cells render as their plain text)
        shown = {str(row[-1]): str(row[-2]) for row in (table.get_row_at(i) for i in range(table.row_count))}
        assert shown == {"[baseline]": "finished", "closing-tag": "[/]", "ansi": "\\x1b[31mred", "a[/]b": "finished",
                         "damaged": "finished", "metrics-folder": "unreadable"}
        await pilot.pause()
        on_screen = screen_text(app)  # what the table draws: a name read as markup would be blank or an error
        assert "[baseline]" in on_screen and "a[/]b" in on_screen and "\x1b" not in on_screen
        assert "3 damaged lines skipped" in shown_text(screen.query_one("#runs-info"))

        # open the run whose status is [/]: its viewer shows it as text
        row = [str(table.get_row_at(i)[-1]) for i in range(table.row_count)].index("closing-tag")
        table.move_cursor(row=row)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 5, "the run viewer")
        view = app.screen
        await wait_for(pilot, lambda: view.ended is not None, 5, "the end record")
        assert view.ended.status == "[/]" and "[/]" in shown_text(view.query_one("#run-title"))
        await pilot.press("right")  # the Evaluation tab: the class names of the eval record, as text
        await wait_for(pilot, lambda: "per class" in screen_text(app), 5, "the evaluation tab")
        on_screen = screen_text(app)
        assert "[bold]cat" in on_screen and "\\x1b[31mdog" in on_screen and "\x1b" not in on_screen


async def test_a_followed_run_that_is_killed_and_resumed_shows_every_batch_once(tmp_path: Path) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32)
    run_dir = write_run(tmp_path / "run", [start_record(cfg, 4), *batch_records(1, 4, 32), epoch_record(1, 2.27),
                                           *batch_records(2, 3, 32, 2.2, first_image=128, first_time=2.0)], cfg)
    app = ResNetApp(mode="watch", run_dir=run_dir, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 10, "the run viewer")
        view = app.screen
        await wait_for(pilot, lambda: view.monitor.progress.batches_done == 7, 5, "seven batches")
        assert view.monitor.chart.point_count == 7
        # killed mid-line after its resume state was saved at epoch 2, batch 1; resumed, it trains batches 2-4 again
        resumed = record(ev.TrainStart(cfg.to_dict(), "", "CPU", 205338, 128, 100, 4, 2, 2, time_utc="2026-11-28 10:05:00", resumed=True))
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write('{"event": "batch", "ep' + "\n" + json.dumps(resumed) + "\n")
            f.write("".join(json.dumps(r) + "\n" for r in batch_records(2, 4, 32, 2.1, first_image=128, first_time=2.0)[1:]))
            f.write(json.dumps(end_record("finished", 64.0, 4.0)) + "\n")
        await wait_for(pilot, lambda: view.ended is not None, 5, "the end record")
        progress = view.monitor.progress
        assert progress.batches_done == 8 and view.monitor.chart.point_count == 8
        assert progress.xs == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
        assert progress.losses[5:] == [2.08, 2.07, 2.06]  # the resumed run's batches, not the first try's

"""Watch mode (following a metrics.jsonl another process writes) and the Runs screen."""

from __future__ import annotations

import json

from textual.widgets import DataTable

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.run_view import RunViewScreen
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.app.widgets.confusion import EvalReport
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.lock import RunLock

from app_helpers import (batch_records, checkpoint_record, end_record, epoch_record, eval_record, screen_text, shown_text,
                         start_record, wait_for, write_run)


def append(path, records, tail: str = "") -> None:
    with open(path, "a") as f:
        f.write("".join(json.dumps(r) + "\n" for r in records) + tail)


async def test_watch_mode_follows_a_metrics_file_as_it_grows(tmp_path):
    cfg = TrainConfig(epochs=2, batch_size=32)
    run_dir = write_run(tmp_path / "run", [start_record(cfg, 4), *batch_records(1, 2, 32)], cfg)
    metrics = run_dir / "metrics.jsonl"
    app = ResNetApp(mode="watch", run_dir=run_dir, runs_root=tmp_path, device_label="CPU")
    writer = RunLock(run_dir)  # this test writes the records, as the training process would: it holds the run's lock
    writer.acquire()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 10, "the run viewer")
        view = app.screen
        monitor = view.monitor
        await wait_for(pilot, lambda: monitor.progress.batches_done == 2, 5, "the first two batches")
        assert "● running: following metrics.jsonl" in shown_text(view.query_one("#run-title"))
        assert monitor.chart.point_count == 2

        # the writer appends the rest of epoch 1 and half a line of epoch 2
        rest = batch_records(1, 4, 32)[2:]
        half = json.dumps(batch_records(2, 1, 32, first_image=128, first_time=2.0)[0])
        append(metrics, rest + [epoch_record(1, 2.275, images_per_sec=64.0)], tail=half[:20])
        await wait_for(pilot, lambda: monitor.progress.batches_done == 4, 5, "epoch 1 to finish")
        assert monitor.progress.epoch_losses == {1: 2.275}
        await pilot.pause(0.6)  # more than one poll: the torn line must not be read
        assert monitor.progress.batches_done == 4 and monitor.chart.point_count == 4

        # the line is completed; the run finishes with an evaluation
        with open(metrics, "a") as f:
            f.write(half[20:] + "\n")
        append(metrics, batch_records(2, 4, 32, 2.2, first_image=128, first_time=2.0)[1:]
               + [epoch_record(2, 2.175, images_per_sec=64.0), checkpoint_record(2), eval_record(2, 0.5), end_record("finished", 64.0, 4.0)])
        writer.release()
        await wait_for(pilot, lambda: view.ended is not None, 5, "the end record")
        assert monitor.progress.batches_done == 8 and monitor.chart.point_count == 8
        assert "finished" in shown_text(view.query_one("#run-title"))
        progress = shown_text(monitor.query_one("#progress-text"))
        assert "Epoch 2/2 · batch 4/4" in progress and "FINISHED" in progress and "accuracy 50.00%" in progress
        # the log shows when things happened (start time + training seconds), not when they were read
        assert "[LOG 20261128-10:00:04] epoch: 2, batch: 4 train-loss: 2.1600" in monitor.log_widget.lines
        assert monitor.log_widget.lines[0] == "[LOG 20261128-10:00:00] run dir: " + str(run_dir)
        assert view._timer is None  # nothing more to follow
        # its evaluation, on the second tab
        assert view.eval_result is not None and view.eval_result.accuracy == 0.5
        report = view.query_one(EvalReport)
        await pilot.press("right")  # the tabs have the focus: move to "Evaluation"
        await wait_for(pilot, lambda: "accuracy 50.00%" in screen_text(app), 5, "the evaluation tab")
        assert "confusion (rows: true, columns: predicted)" in screen_text(app)
        assert report.query_one("#eval-summary").content is not None


async def test_the_runs_screen_lists_runs_and_opening_a_running_one_watches_it(runs_root):
    app = ResNetApp(runs_root=runs_root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the Runs screen")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 4, 5, "four runs")
        rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
        # newest first: mark, date, optimizer, lr, epochs, last loss, accuracy, status, folder
        assert rows[0] == ["", "2026-11-28 13:00", "sgd", "0.001", "0/2", "2.2700", "-", "● running", "20261128-130000"]
        assert rows[1] == ["", "2026-11-28 12:00", "sgd", "5", "0/1", "-", "-", "diverged", "20261128-120000"]
        assert rows[2] == ["", "2026-11-28 11:00", "adam", "0.01", "0/3", "2.2800", "-", "interrupted", "20261128-110000"]
        assert rows[3] == ["", "2026-11-28 10:00", "sgd", "0.001", "2/2", "2.1600", "50.00%", "finished", "20261128-100000"]
        assert "4 runs in runs · 1 running" in shown_text(screen.query_one("#runs-info"))

        # open the running one: it is followed, and sees new lines
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 5, "the run viewer")
        view = app.screen
        assert view.run_dir.name == "20261128-130000"
        await wait_for(pilot, lambda: view.monitor.progress.batches_done == 3, 5, "its batches")
        append(runs_root / "20261128-130000" / "metrics.jsonl", batch_records(1, 4, 128)[3:])
        await wait_for(pilot, lambda: view.monitor.progress.batches_done == 4, 5, "the new batch")
        assert view._timer is not None
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the list again")

        # a finished run shows its curves and evaluation, and is not polled
        await pilot.press("down", "down", "down", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 5, "the finished run")
        view = app.screen
        assert view.run_dir.name == "20261128-100000"
        assert view.ended is not None and view.ended.status == "finished" and view._timer is None
        assert view.monitor.chart.point_count == 8 and view.eval_result.accuracy == 0.5


async def test_r_on_the_runs_screen_resumes_an_interrupted_run_to_new_epochs_and_x_stops_a_live_one(tiny_config, tmp_path):
    import signal
    import subprocess
    import sys
    import textwrap

    from resnet_tui.app.screens.dialogs import AskPath
    from resnet_tui.core import records
    from resnet_tui.core.train import Trainer

    root = tmp_path / "runs"
    stopped = root / "stopped"
    batches = []
    Trainer(tiny_config, stopped, lambda e: batches.append(e), should_stop=lambda: len(batches) > 0).run_training()
    assert records.read_run(stopped).end.status == "interrupted"
    live = root / "live"
    live.mkdir(parents=True)
    (live / "metrics.jsonl").write_text("")
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time
        from resnet_tui.core.lock import RunLock
        lock = RunLock({str(live)!r})
        lock.acquire()
        print("held", flush=True)
        time.sleep(120)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        app = ResNetApp(runs_root=root, config=tiny_config, device_label="CPU")
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.press("5")
            screen = app.screen
            assert isinstance(screen, RunsScreen)
            await wait_for(pilot, lambda: len(screen.summaries) == 2, 10, "both runs listed")
            rows = {s.path.name: i for i, s in enumerate(screen.summaries)}
            assert screen.summaries[rows["live"]].status == "running"
            table = screen.query_one(DataTable)

            table.move_cursor(row=rows["live"])
            await pilot.press("x")  # the live run's process gets SIGTERM
            assert holder.wait(10) == -signal.SIGTERM

            table.move_cursor(row=rows["stopped"])
            await pilot.press("R")
            await wait_for(pilot, lambda: isinstance(app.screen, AskPath), 5, "the epochs dialog")
            field = app.screen.query_one("Input")
            field.value = "3"
            await pilot.press("enter")
            end = await app.wait_for_run_end(timeout=120)
            assert end is not None and end.status == "finished" and end.epochs_done == 3
        run = records.read_run(stopped)
        assert run.start.resumed and run.end.status == "finished"
        assert [(b.epoch, b.batch) for b in run.batches] == [(e, b) for e in (1, 2, 3) for b in (1, 2)]  # each batch once
    finally:
        if holder.poll() is None:
            holder.kill()

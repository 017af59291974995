"""The app's non-UI pieces: the event relay's coalescing, chart bucketing, metrics following, run progress, pixels."""

from __future__ import annotations

import math

import numpy as np

from resnet_tui.core import events as ev
from resnet_tui.app.metrics_follow import MetricsFollower
from resnet_tui.core.records import from_record, kind_of, to_line
from resnet_tui.app.relay import EventRelay
from resnet_tui.core.progress import RunProgress
from resnet_tui.app.widgets.loss_chart import bucket
from resnet_tui.app.widgets.pixels import HalfBlockImage, rescale, to_hwc


def batch(epoch: int, b: int, loss: float = 2.0, images: int = 0, time: float = 0.0) -> ev.BatchEnd:
    return ev.BatchEnd(epoch, b, loss, images, time, 0.001)


def test_relay_coalesces_batches_and_flushes_other_events_at_once():
    posted: list[list[ev.Event]] = []
    now = [0.0]
    relay = EventRelay(posted.append, interval=0.25, clock=lambda: now[0])
    relay(batch(1, 1))  # the first batch goes out at once (nothing posted for a while)
    for b in range(2, 100):  # a burst within the same instant: held back
        relay(batch(1, b))
    assert len(posted) == 1 and len(posted[0]) == 1
    now[0] = 0.3
    relay(batch(1, 100))  # the interval has passed: everything buffered goes in one message
    assert len(posted) == 2 and [e.batch for e in posted[1]] == list(range(2, 101))
    relay(batch(1, 101))
    relay(ev.EpochEnd(1, 2.0, 1.0, 100.0))  # not a batch: posted at once, with the batch before it
    assert len(posted) == 3 and isinstance(posted[2][-1], ev.EpochEnd) and posted[2][0].batch == 101
    relay.flush()
    assert len(posted) == 3  # nothing left to flush


def test_bucket_keeps_small_series_and_buckets_long_ones():
    x, mean, low = bucket([0.1, 0.2], [2.0, 1.0], max_points=300)
    assert list(mean) == [2.0, 1.0] and low is None
    n = 9_000  # 30 points a bucket
    ys = np.arange(n, dtype=float)
    x, mean, low = bucket(np.arange(n) / 100, ys, max_points=300)
    assert len(x) == len(mean) == len(low) == 300
    assert (low[0], mean[0]) == (0.0, 14.5)  # min and mean of the first bucket
    assert low[-1] == n - 30 and math.isclose(x[-1], (n - 15.5) / 100)  # the last bucket reaches the end
    assert math.isclose(mean.mean(), ys.mean(), rel_tol=1e-12)  # buckets partition the data


def test_follower_reads_only_new_complete_lines(tmp_path):
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path)
    assert follower.read_new().events == []  # no file yet
    start = to_line(ev.TrainStart({}, "", "CPU", 0, 0, 0, 4))
    path.write_text(start + '{"event": "batch", "epo')
    assert [kind_of(e) for e in follower.read_new().events] == ["start"]
    assert follower.read_new().events == []  # the torn line is left for later
    with open(path, "a") as f:
        f.write('ch": 1, "batch": 1, "loss": 2.0}\nnot json\n' + to_line(ev.RunEnd("finished", 0.0, 0.0)))
    assert [kind_of(e) for e in follower.read_new().events] == ["batch", "end"]  # the damaged line is skipped
    path.write_text(start)  # replaced by a shorter file: read from the start
    assert [kind_of(e) for e in follower.read_new().events] == ["start"]


def test_records_become_engine_events(tmp_path):
    e = from_record({"event": "batch", "epoch": 2, "batch": 3, "loss": None, "images": 10, "time": 1.0, "lr": 0.1})
    assert isinstance(e, ev.BatchEnd) and math.isnan(e.loss) and e.epoch == 2
    e = from_record({"event": "checkpoint", "epoch": 1, "path": "checkpoints/cifar10_model_epoch_0.pth"}, tmp_path)
    assert isinstance(e, ev.CheckpointSaved) and e.path == str(tmp_path / "checkpoints/cifar10_model_epoch_0.pth")
    e = from_record({"event": "eval", "epoch": 1, "accuracy": 0.5, "nll": 1.0, "n": 4, "classes": ["a", "b"],
                           "confusion": [[1, 1], [0, 2]], "precision": [1.0, 0.67], "recall": [0.5, 1.0], "f1": [0.67, 0.8]})
    assert isinstance(e, ev.EvalEnd) and e.result.accuracy == 0.5 and e.result.confusion == [[1, 1], [0, 2]]
    assert from_record({"event": "batch"}) is None  # damaged: skipped, not raised
    e = from_record({"event": "start", "config": {"epochs": 3}})  # from another version: defaults fill in
    assert isinstance(e, ev.TrainStart) and e.config["epochs"] == 3 and e.config["skip"] is True
    assert from_record({"event": "something new"}) is None


def test_run_progress_counts_batches_speed_and_eta():
    p = RunProgress()
    p.apply(ev.TrainStart({"epochs": 2, "batch_size": 10}, "run", "CPU", 1, 40, 10, 4))
    assert (p.epoch, p.batch, p.batches_done, p.total_batches) == (1, 0, 0, 8)
    for b in range(1, 5):
        p.apply(batch(1, b, 2.0 - b / 10, images=10 * b, time=float(b)))
    assert p.batches_done == 4 and p.fraction == 0.5
    assert p.images_per_sec == 10.0  # 40 images in 4 s
    assert p.eta_seconds == 4.0  # 4 batches left at 1 s each
    assert p.xs == [0.25, 0.5, 0.75, 1.0]
    p.apply(batch(2, 1, float("nan"), 50, 5.0))
    assert len(p.losses) == 4  # a non-finite loss is not charted
    p.apply(ev.RunEnd("diverged", 9.5, 5.0, "the loss became non-finite"))
    assert not p.running and p.end.status == "diverged"


def test_run_progress_of_a_resumed_run_measures_speed_from_where_it_resumed():
    p = RunProgress()
    p.apply(ev.TrainStart({"epochs": 2, "batch_size": 10}, "run", "CPU", 1, 40, 10, 4, start_epoch=2, start_batch=1))
    assert p.batches_done == 4
    p.apply(batch(2, 1, images=50, time=100.0))
    p.apply(batch(2, 2, images=60, time=102.0))
    assert p.images_per_sec == 5.0  # 10 images in 2 s, not 60 images in 102 s


def test_half_block_image_has_two_pixels_per_cell():
    img = np.zeros((3, 32, 32), dtype=np.uint8)
    img[0, :16] = 255  # top half red
    hwc = to_hwc(img)
    assert hwc.shape == (32, 32, 3)
    r = HalfBlockImage(img, 2)
    assert (r.width, r.height) == (64, 32)
    assert rescale(hwc, 0.5).shape == (16, 16, 3)
    from rich.console import Console

    console = Console(width=80, color_system="truecolor", record=True, file=open("/dev/null", "w"))
    console.print(HalfBlockImage(img, 0.5))
    lines = console.export_text().splitlines()
    assert len(lines) == 8 and all(line == "▀" * 16 for line in lines)


async def test_log_tail_follows_new_lines_and_scrolls_back_with_the_keys():
    from textual.app import App

    from resnet_tui.app.widgets.log_tail import LogTail

    class LogApp(App):
        def compose(self):
            yield LogTail(max_lines=50)

    app = LogApp()
    async with app.run_test(size=(30, 5)) as pilot:
        log = app.query_one(LogTail)
        log.focus()
        log.write_lines(f"line {i}" for i in range(100))
        await pilot.pause()
        assert log.lines[0] == "line 50" and len(log.lines) == 50  # only the last max_lines are kept

        def shown() -> list[str]:
            return [log.render_line(y).text.rstrip() for y in range(log.size.height)]

        assert shown() == ["line 95", "line 96", "line 97", "line 98", "line 99"]
        await pilot.press("up", "up")
        assert shown()[-1] == "line 97"
        log.write_line("line 100")  # scrolled back: the view stays put
        assert shown()[-1] == "line 97"
        await pilot.press("home")
        assert shown()[0] == "line 51"
        await pilot.press("end")  # follow again
        assert shown()[-1] == "line 100"
        log.write_line("x" * 40)
        assert shown()[-1] == "x" * 29 + "…"  # a long line is cut, and says so


async def test_run_monitor_redraws_at_most_every_half_second_but_at_once_for_milestones(monkeypatch):
    from textual.app import App

    from resnet_tui.app.widgets import run_monitor
    from resnet_tui.app.widgets.run_monitor import RunMonitor

    class MonitorApp(App):
        def compose(self):
            yield RunMonitor()

    app = MonitorApp()
    async with app.run_test(size=(100, 30)) as pilot:
        monitor = app.query_one(RunMonitor)
        flushes = []
        original = monitor.flush
        monkeypatch.setattr(monitor, "flush", lambda: (flushes.append(1), original())[1])
        from resnet_tui.core.config import TrainConfig

        monitor.apply([ev.TrainStart(TrainConfig(epochs=1, batch_size=10).to_dict(), "run", "GPU", 1, 1000, 10, 100)])
        assert len(flushes) == 1  # a milestone: at once
        for b in range(1, 41):  # 40 messages of batches within a moment
            monitor.apply([batch(1, b, 2.0, images=10 * b, time=b / 100)])
        await pilot.pause(0.1)
        assert len(flushes) <= 2  # held back (and at most one trailing redraw)
        await pilot.pause(run_monitor.UI_SECONDS + 0.2)
        assert len(flushes) == 2 and monitor.progress.batches_done == 40
        assert "batch 40/100" in monitor.query_one("#progress-text").content.plain
        assert monitor.log_widget.lines[-1].endswith("epoch: 1, batch: 40 train-loss: 2.0000")

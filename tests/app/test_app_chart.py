"""The Train screen's chart and rates, driven with Pilot and fed engine events as the trainer emits them: the chart's
keys (log scale, window, smoothing, learning rate) change what is plotted, show in the footer and stay out of text
fields; each epoch's evaluation is charted, the header's rate is the last seconds', and the chart keeps 8 rows at
80x24 before, during and after a run."""

from __future__ import annotations

import math

import pytest
from textual.app import App
from textual.widgets import Input

from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.evaluate import EvalResult
from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.dialogs import binding_rows
from resnet_tui.app.screens.train import TrainScreen
from resnet_tui.app.widgets.loss_chart import WINDOW_BATCHES
from resnet_tui.app.widgets.run_monitor import RunMonitor

from app_helpers import screen_text, shown_text, wait_for

RUN_DIR = "runs/20261128-100000"


def eval_result(nll: float, accuracy: float, n: int = 100) -> EvalResult:
    classes = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    return EvalResult(nll, accuracy, n, classes, [[n // 10 if i == j else 0 for j in range(10)] for i in range(10)],
                      [accuracy] * 10, [accuracy] * 10, [accuracy] * 10, [], [])


def run_events(cfg: TrainConfig, per_epoch: int, epochs_done: int, seconds_each: float = 0.1,
               evals: dict[int, tuple[float, float]] | None = None) -> list[ev.Event]:
    """A run's events: a noisy falling loss, a learning rate that warms up then decays, an evaluation after
    each finished epoch listed in `evals` (epoch -> (NLL, accuracy))."""
    total = cfg.epochs * per_epoch
    out: list[ev.Event] = [ev.TrainStart(cfg.to_dict(), RUN_DIR, "CPU", 205_338, per_epoch * cfg.batch_size, 100, per_epoch)]
    for epoch in range(1, epochs_done + 1):
        for b in range(1, per_epoch + 1):
            step = (epoch - 1) * per_epoch + b
            loss = 2.3 * math.exp(-step / 200) + 0.5 + 0.15 * math.sin(step * 1.7)
            lr = cfg.lr * min(step / per_epoch, (total - step) / (total - per_epoch))
            out.append(ev.BatchEnd(epoch, b, loss, step * cfg.batch_size, step * seconds_each, lr))
        out.append(ev.EpochEnd(epoch, 1.0, per_epoch * seconds_each, cfg.batch_size / seconds_each))
        if evals and epoch in evals:
            out.append(ev.EvalEnd(epoch, eval_result(*evals[epoch])))
    return out


CFG = TrainConfig(data="sample", epochs=4, batch_size=10, lr=0.1)
EVALS = {1: (1.6, 0.41), 2: (1.3, 0.55), 3: (1.25, 0.58)}


async def fed_app(pilot, events: list[ev.Event]):
    """The Train screen while the run trains (no worker: the events are fed), once the chart has drawn them all."""
    app = pilot.app
    app.training = True
    app.train_screen.apply_events(events)
    chart = app.train_screen.monitor.chart
    count = sum(isinstance(e, ev.BatchEnd) for e in events)
    await wait_for(pilot, lambda: not chart._pending and chart.series.get("train", ([], []))[0] and chart.draws > 1, 10,
                   "the chart to draw")
    assert chart.point_count == count
    return chart


async def test_each_chart_key_changes_what_is_plotted_and_says_so():
    app = ResNetApp(config=CFG, device_label="CPU")
    async with app.run_test(size=(100, 30)) as pilot:
        chart = await fed_app(pilot, run_events(CFG, 250, 3, evals=EVALS))
        progress = app.train_screen.monitor.progress
        assert chart.x_label == "epoch · train/eval NLL · acc % →"
        train_x, train_y = chart.series["train"]
        assert train_x[0] < 0.01 and len(train_x) == 300  # the whole run, bucketed

        await pilot.press("g")  # log scale: the same values go in as their logarithms, the ticks name the values
        assert chart.log_y and "· log ·" in chart.x_label
        plotted = chart.plt.monitor.y
        assert plotted[1] == pytest.approx([math.log10(y) for y in chart.series["train"][1]])
        assert plotted[1][0] == pytest.approx(math.log10(train_y[0]))
        ticks, labels = chart.plt.monitor.yticks[0], chart.plt.monitor.ylabels[0]
        assert [float(label) for label in labels] == pytest.approx([10 ** t for t in ticks])
        await pilot.press("g")
        assert not chart.log_y and "log" not in chart.x_label and chart.plt.monitor.y[1] == chart.series["train"][1]

        await pilot.press("w")  # the last 500 batches
        assert chart.windowed and f"last {WINDOW_BATCHES}" in chart.x_label
        window_x = chart.series["train"][0]
        assert window_x[0] == pytest.approx(sum(progress.xs[-WINDOW_BATCHES:][:2]) / 2, abs=0.01)  # the first bucket
        assert window_x[-1] == pytest.approx(3.0, abs=0.01) and min(chart.series["eval_nll"][0]) >= progress.xs[-WINDOW_BATCHES]
        await pilot.press("w")
        assert chart.series["train"][0][0] < 0.01

        await pilot.press("m")  # smoothing: the moving average, the raw series gray behind it
        assert chart.smoothing and "EMA" in chart.x_label and "train" not in chart.series
        raw, smooth = chart.series["raw"][1], chart.series["ema"][1]
        assert raw == train_y and len(smooth) == len(raw)
        roughness = lambda ys: sum(abs(b - a) for a, b in zip(ys, ys[1:]))  # noqa: E731
        assert roughness(smooth) < roughness(raw) / 3
        await pilot.press("m")
        assert "ema" not in chart.series and chart.series["train"][1] == train_y

        await pilot.press("r")  # the learning rate takes the right axis from the accuracy
        assert chart.show_lr and chart.x_label.endswith("lr →") and "accuracy" not in chart.series
        lr_x, lr_y = chart.series["lr"]
        assert max(lr_y) == pytest.approx(CFG.lr, rel=0.02) and lr_y[0] < 0.01 and lr_y[-1] < lr_y[len(lr_y) // 2]
        await pilot.press("r")
        assert "lr" not in chart.series and "accuracy" in chart.series

        # the keys show in the footer (and, from the bindings, in the help), and are letters in a text field
        assert all(k in screen_text(app).splitlines()[-1] for k in ("g Log", "w Window", "m Smooth", "r LR"))
        assert [row[0] for row in binding_rows(TrainScreen.BINDINGS)] == ["g", "w", "m", "r"]
        app.training = False  # the form takes keys again
        field = app.screen.query_one("#field-data", Input)
        field.focus()
        await pilot.pause()
        assert "g Log" not in screen_text(app).splitlines()[-1]  # the footer leaves them out while a field has the keys
        await pilot.press("end", "g", "w", "m", "r")
        assert field.value == "samplegwmr"
        assert not (chart.log_y or chart.windowed or chart.smoothing or chart.show_lr)
        await pilot.press("escape", "g")  # out of the field, the key is the chart's again
        assert chart.log_y


class MonitorApp(App):
    """The Run panel alone (the Train screen's RunMonitor, without the form)."""

    def compose(self):
        yield RunMonitor(stop_hint="s stops")


async def test_each_epochs_evaluation_is_charted_as_it_comes():
    app = MonitorApp()
    async with app.run_test(size=(100, 30)) as pilot:
        monitor = app.query_one(RunMonitor)
        chart = monitor.chart
        events = run_events(CFG, 20, 3, evals=EVALS)
        first_eval = next(i for i, e in enumerate(events) if isinstance(e, ev.EvalEnd))
        monitor.apply(events[:first_eval])
        await wait_for(pilot, lambda: chart.series.get("train") and not chart._pending, 10, "the chart to draw")
        assert "accuracy" not in chart.series and chart.x_label == "epoch · train NLL"
        monitor.apply(events[first_eval:])
        await wait_for(pilot, lambda: len(chart.series.get("accuracy", ([], []))[0]) == 3, 10, "three evaluations on the chart")
        epochs, accuracy = chart.series["accuracy"]  # in percent, on the right axis
        assert epochs == [1.0, 2.0, 3.0] and accuracy == pytest.approx([41.0, 55.0, 58.0])
        assert chart.series["eval_nll"] == ([1.0, 2.0, 3.0], [1.6, 1.3, 1.25])
        assert chart.x_label == "epoch · train/eval NLL · acc % →"
        assert "Eval epoch 3 NLL 1.2500 · accuracy 58.00%" in shown_text(monitor.query_one("#progress-text"))


async def test_the_header_shows_the_last_seconds_rate_and_the_end_line_the_runs_average():
    cfg = TrainConfig(data="sample", epochs=2, batch_size=10)
    app = MonitorApp()
    async with app.run_test(size=(100, 30)) as pilot:
        start = ev.TrainStart(cfg.to_dict(), RUN_DIR, "CPU", 1, 1000, 100, 100)
        fast = [ev.BatchEnd(1, b, 2.0, 10 * b, 0.1 * b, 0.001) for b in range(1, 101)]  # 100 images/s for 10 s
        slow = [ev.BatchEnd(2, b, 1.5, 1000 + 10 * b, 10 + 0.4 * b, 0.001) for b in range(1, 41)]  # then 25 images/s
        monitor = app.query_one(RunMonitor)
        monitor.apply([start, *fast, *slow])
        progress = monitor.query_one("#progress-text")
        await wait_for(pilot, lambda: "batch 40/100" in shown_text(progress), 5, "the batches")
        assert "· 25 img/s · ETA 0:24" in shown_text(progress)  # 60 batches left at 0.4 s; the average would say 54 img/s
        assert round(monitor.progress.images_per_sec) == 54
        monitor.apply([ev.EpochEnd(2, 1.5, 16.0, 25.0), ev.RunEnd("finished", 53.85, 26.0)])
        await wait_for(pilot, lambda: "FINISHED" in shown_text(progress), 5, "the end")
        assert "FINISHED · 53.9 img/s over 0:26" in shown_text(progress) and "25 img/s" not in shown_text(progress)


async def test_the_chart_keeps_eight_rows_at_80x24_before_during_and_after_a_run():
    cfg = TrainConfig(data="sample", preset="fast", epochs=30, batch_size=64, lr=0.025, momentum=0.9, nesterov=True,
                      weight_decay=5e-4, schedule="warmup-linear", warmup_epochs=2, label_smoothing=0.1, augment=True, tta=True)
    app = ResNetApp(config=cfg, device_label="CPU (2 threads), fp32 (auto: this CPU has AVX512_BF16 but no AMX)")
    async with app.run_test(size=(80, 24)) as pilot:
        monitor = app.train_screen.monitor
        chart, log = monitor.chart, monitor.log_widget

        def fits() -> bool:
            inside = monitor.content_region
            return chart.region.height >= 8 and inside.contains_region(chart.region) and inside.contains_region(log.region)

        await pilot.pause()
        assert fits(), ("before", chart.region, monitor.content_region)
        await fed_app(pilot, run_events(cfg, 20, 3, evals=EVALS) + [ev.EvalProgress(40, 100)])
        assert fits() and log.region.height >= 3, ("during", chart.region, log.region)
        monitor.apply([ev.EvalEnd(3, eval_result(1.2, 0.6)), ev.RunEnd("finished", 64.0, 6.0)])
        app.training = False  # the form is back beside the run
        await pilot.pause(0.1)
        assert "FINISHED" in shown_text(monitor.query_one("#progress-text"))
        assert fits() and log.region.height >= 2, ("after", chart.region, log.region)
        stopped = "stopped at epoch 4, batch 3; resume with: resnet-tui --no-ui train --resume /home/someone/lab/runs/20261128-100000"
        monitor.apply([ev.RunEnd("interrupted", 64.0, 6.0, stopped)])  # its longest end: the log may give way, not the chart
        await pilot.pause(0.1)
        assert chart.region.height >= 8 and monitor.content_region.contains_region(chart.region), ("interrupted", chart.region)


async def test_a_watched_run_has_the_same_chart_keys(tmp_path):
    """Watch mode (a run written by another process) answers g, w, m and r as the Train screen does."""
    from app_helpers import batch_records, start_record, write_run

    from resnet_tui.app.screens.run_view import RunViewScreen

    cfg = TrainConfig(epochs=2, batch_size=32)
    run_dir = write_run(tmp_path / "run", [start_record(cfg, 4), *batch_records(1, 4, 32)], cfg)
    app = ResNetApp(mode="watch", run_dir=run_dir, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 10, "the run viewer")
        chart = app.screen.monitor.chart
        await wait_for(pilot, lambda: chart.point_count == 4, 5, "the batches")
        for key, flag in (("g", "log_y"), ("w", "windowed"), ("m", "smoothing"), ("r", "show_lr")):
            before = getattr(chart, flag)
            await pilot.press(key)
            assert getattr(chart, flag) is not before, key

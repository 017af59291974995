"""Training from the app on the real CIFAR-10 folder (tiny subsets): live chart and progress, stop, quit, errors."""

from __future__ import annotations

import pytest

import asyncio
import re
import time

from textual.widgets import Button

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.dialogs import ConfirmQuit
from resnet_tui.app.screens.model import ModelScreen
from resnet_tui.app.widgets.config_form import ConfigForm

from app_helpers import read_records, screen_text, shown_text, wait_for

LAB_BATCH_LINE = re.compile(r"^\[LOG \d{8}-\d\d:\d\d:\d\d\] epoch: (\d+), batch: (\d+) train-loss: (\d+\.\d{4})$")


async def test_a_tiny_run_trains_with_a_live_chart_progress_and_log(tiny_config, tmp_path, monkeypatch):
    messages: list[int] = []  # events in each TrainingEvents message
    original = ResNetApp.on_training_events
    monkeypatch.setattr(ResNetApp, "on_training_events", lambda self, m: (messages.append(len(m.events)), original(self, m))[1])
    app = ResNetApp(config=tiny_config, runs_root=tmp_path / "runs")  # real device detection
    async with app.run_test(size=(100, 30)) as pilot:
        monitor = app.train_screen.monitor
        await wait_for(pilot, lambda: "CPU (" in shown_text(monitor.query_one("#run-header")), 30, "the device line")
        form, button = app.screen.query_one(ConfigForm), app.screen.query_one("#start", Button)
        states: list[tuple[bool, bool, str]] = []  # the run may be over before press() returns: record as it happens
        app.train_screen.watch(app, "training", lambda t: states.append((t, form.disabled, str(button.label))), init=False)
        await pilot.press("s")
        end = await app.wait_for_run_end(timeout=120)
        await pilot.pause()
        assert end is not None and end.status == "finished" and end.epochs_done == 2

        # the run directory is the headless one, written by the Trainer
        run_dir = app.current_run_dir
        assert run_dir is not None and run_dir.parent == tmp_path / "runs"
        records = read_records(run_dir)
        assert records[-1]["event"] == "end" and records[-1]["status"] == "finished"
        assert (run_dir / "checkpoints" / "cifar10_model_epoch_1.pth").exists()
        batch_losses = [r["loss"] for r in records if r["event"] == "batch"]
        epoch_losses = {r["epoch"]: r["train_loss"] for r in records if r["event"] == "epoch"}
        assert len(batch_losses) == 4  # 64 images in batches of 32, twice
        # every event reached the app through the relay's messages (coalescing itself: test_app_units), none lost
        assert sum(messages) == len(records) + 1 and 0 not in messages  # + one EvalProgress (not recorded)
        # chart: every batch's loss, in order, drawn (throttled) at least once after data arrived
        assert monitor.progress.losses == batch_losses
        assert monitor.chart.point_count == 4 and monitor.chart.draws >= 2
        # progress: epoch and batch, the bar full, each epoch's mean loss, images/s, the end
        assert monitor.progress.batches_done == monitor.progress.total_batches == 4
        assert monitor.query_one("#progress-bar").percentage == 1.0
        progress = shown_text(monitor.query_one("#progress-text"))
        assert "Epoch 2/2 · batch 2/2" in progress and "img/s" in progress and "FINISHED" in progress
        assert "accuracy" in progress
        losses_line = shown_text(monitor.query_one("#epoch-losses"))
        assert losses_line == f"Epoch loss 1: {epoch_losses[1]:.4f}  2: {epoch_losses[2]:.4f}"
        # log: the lab's lines, one per batch, with the logged losses
        lines = list(monitor.log_widget.lines)
        batch_lines = [LAB_BATCH_LINE.match(line) for line in lines if LAB_BATCH_LINE.match(line)]
        assert [(int(m[1]), int(m[2]), m[3]) for m in batch_lines] == [
            (1, 1, f"{batch_losses[0]:.4f}"), (1, 2, f"{batch_losses[1]:.4f}"), (2, 1, f"{batch_losses[2]:.4f}"), (2, 2, f"{batch_losses[3]:.4f}")]
        assert any("eval-loss:" in line for line in lines) and any(line.startswith("[LOG") and "finished:" in line for line in lines)
        # the form was locked while training, and the button said stop; now it is ready for the next run
        assert states == [(True, True, "■ Stop training (s)"), (False, False, "▶ Start training (s)")]
        assert not app.training and not form.disabled
        assert "FINISHED" in screen_text(app)


async def test_quitting_while_training_asks_first_then_stops_and_saves(tiny_config, tmp_path):
    cfg = tiny_config.replace(limit_train=640, epochs=3)  # 20 batches an epoch: still training when q is pressed
    run_dir = tmp_path / "run"
    app = ResNetApp(mode="train", config=cfg, run_dir=run_dir, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.train_screen.monitor.progress.batches_done >= 1, 60, "the first batch")
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuit), 5, "the quit question")
        await pilot.press("n")  # no: keep training
        await wait_for(pilot, lambda: not isinstance(app.screen, ConfirmQuit), 5, "the question to close")
        assert app.training and app.is_running
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuit), 5, "the quit question")
        await pilot.press("y")
        deadline = time.monotonic() + 60
        while app.is_running and time.monotonic() < deadline:  # the app exits once the trainer has saved
            await asyncio.sleep(0.05)
        assert not app.is_running
    assert app.run_end is not None and app.run_end.status == "interrupted"
    records = read_records(run_dir)
    assert records[-1]["event"] == "end" and records[-1]["status"] == "interrupted"
    assert (run_dir / "resume.pt").exists()  # resumable: `resnet-tui train --resume` continues it
    assert sum(1 for r in records if r["event"] == "batch") < 60


async def test_s_stops_a_run_which_ends_interrupted_and_resumable(tiny_config, tmp_path):
    cfg = tiny_config.replace(limit_train=640, epochs=3)
    app = ResNetApp(config=cfg, runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        await wait_for(pilot, lambda: app.train_screen.monitor.progress.batches_done >= 1, 60, "the first batch")
        await pilot.press("s")
        end = await app.wait_for_run_end(timeout=60)
        assert end is not None and end.status == "interrupted"
        await pilot.pause()
        assert "INTERRUPTED" in shown_text(app.train_screen.monitor.query_one("#progress-text"))
        assert "resume with: resnet-tui --no-ui train --resume" in shown_text(app.train_screen.monitor.query_one("#progress-text"))
        assert (app.current_run_dir / "resume.pt").exists()
        assert any(n.title == "Training interrupted" for n in app._notifications)


async def test_a_training_error_is_notified_and_logged_and_the_app_stays_usable(tiny_config, tmp_path):
    cfg = tiny_config.replace(data=str(tmp_path / "no-such-folder"))
    app = ResNetApp(config=cfg, runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        end = await app.wait_for_run_end(timeout=60)
        await pilot.pause()
        assert end is None and not app.training
        assert "--data: got" in app.last_error and "it does not exist" in app.last_error
        assert any(n.severity == "error" and "--data: got" in n.message for n in app._notifications)
        assert any(line.startswith("[ERROR]") and "--data: got" in line for line in app.train_screen.monitor.log_widget.lines)
        await pilot.press("2")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelScreen), 5, "the Model screen")


async def test_a_diverging_run_ends_with_an_error_notification(tiny_config, tmp_path):
    cfg = tiny_config.replace(lr=1e30, momentum=0.9, epochs=1)  # the second batch's loss is not finite
    app = ResNetApp(config=cfg, runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("s")
        end = await app.wait_for_run_end(timeout=60)
        await pilot.pause()
        assert end is not None and end.status == "diverged"
        assert any(n.title == "Training diverged" and n.severity == "error" and "non-finite" in n.message for n in app._notifications)
        assert "DIVERGED" in shown_text(app.train_screen.monitor.query_one("#progress-text"))


async def test_a_stopped_run_resumes_in_the_app_and_finishes(tiny_config, tmp_path):
    cfg = tiny_config.replace(limit_train=160)  # 5 batches an epoch
    run_dir = tmp_path / "run"
    app = ResNetApp(mode="train", config=cfg, run_dir=run_dir, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.train_screen.monitor.progress.batches_done >= 1, 60, "the first batch")
        await pilot.press("s")
        first = await app.wait_for_run_end(timeout=60)
    assert first is not None and first.status == "interrupted"
    stopped_at = sum(1 for r in read_records(run_dir) if r["event"] == "batch")

    # `resnet-tui train --resume RUN_DIR` opens the app like this
    app = ResNetApp(mode="train", config=cfg, run_dir=run_dir, resume=True, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        end = await app.wait_for_run_end(timeout=120)
        await pilot.pause()
        assert end is not None and end.status == "finished" and end.epochs_done == 2
        progress = app.train_screen.monitor.progress
        assert progress.start.start_batch == stopped_at + 1 or progress.start.start_epoch == 2
        assert progress.batches_done == 10 and len(progress.losses) == 10 - stopped_at  # the chart has this run's batches
    records = read_records(run_dir)
    starts = [r for r in records if r["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_at"] is not None
    assert sum(1 for r in records if r["event"] == "batch") == 10 and records[-1]["status"] == "finished"


@pytest.mark.parametrize("sig, on_hangup", [("SIGTERM", "continue"), ("SIGHUP", "stop")])
async def test_sigterm_or_a_hangup_with_on_hangup_stop_stops_the_run_saves_and_ends_the_process(sig, on_hangup, tiny_config, tmp_path,
                                                                                               monkeypatch):
    """The detached case (SIGHUP, on_hangup continue) is tested with a real process in a pty: tests/test_ssh_drop.py."""
    import os
    import signal

    from resnet_tui.app import job as job_module
    from resnet_tui.app.job import TrainingJob

    monkeypatch.setattr(job_module, "EXIT_GRACE_SECONDS", 0.2)  # the exit timer's wait is not the point: that it ends the process is

    signum = getattr(signal, sig)
    before = signal.getsignal(signum)
    cfg = tiny_config.replace(limit_train=640, epochs=3, on_hangup=on_hangup)
    run_dir = tmp_path / "run"
    app = ResNetApp(mode="train", config=cfg, run_dir=run_dir, device_label="CPU", handle_signals=True)  # as run_app does
    exits: list[int] = []
    app.job = TrainingJob(hard_exit=exits.append)  # instead of ending the test process
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.train_screen.monitor.progress.batches_done >= 1, 60, "the first batch")
        os.kill(os.getpid(), signum)
        deadline = time.monotonic() + 60
        while app.is_running and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert not app.is_running
    assert app.return_code == 128 + signum
    assert signal.getsignal(signum) is before  # the app put the handlers back
    records = read_records(run_dir)
    assert records[-1]["event"] == "end" and records[-1]["status"] == "interrupted"
    assert (run_dir / "resume.pt").exists()
    deadline = time.monotonic() + 10
    while not exits and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    await asyncio.sleep(job_module.EXIT_GRACE_SECONDS + 0.3)  # a second exit (two timers) would show too
    assert exits == [128 + signum]  # and had the UI not closed, the process would have ended anyway

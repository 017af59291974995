"""A run on several processes started from the Train form: GPUs 2 with Device cpu launches `resnet-tui --no-ui train`
as a detached subprocess of 2 real gloo ranks on a few hundred CIFAR-10 images, which the Train screen follows
through metrics.jsonl as watch mode does; s stops it (SIGTERM to rank 0, as `resnet-tui stop`), and quitting the app
leaves it training."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.dialogs import ConfirmQuitLeavingRun
from resnet_tui.app.state import ResumeRun
from resnet_tui.app.widgets.system_panel import SystemPanel
from resnet_tui.core.lock import holder
from resnet_tui.core import records
from resnet_tui.core.config import TrainConfig

from app_helpers import shown_text, type_into, wait_for

SIZE = (130, 40)  # wide: the form, and the status line under it, stay on screen while the run trains
TOTAL = 2 * 400 // 20  # batches of the run that the first test stops and resumes


def small_config(data: str, images: int, epochs: int) -> TrainConfig:
    return TrainConfig(data=data, limit_train=images, limit_eval=100, layers=(1, 1, 1), batch_size=20, epochs=epochs)


@pytest.fixture
def launchers() -> Iterator[list[subprocess.Popen]]:
    """The launchers a test's app started; any still running when the test ends is stopped (it stops its ranks)."""
    started: list[subprocess.Popen] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(60)


async def start_two_processes(pilot, app: ResNetApp, launchers: list[subprocess.Popen]) -> Path:
    """Type GPUs 2 and Device cpu into the form and press s; the run directory the app follows."""
    await type_into(pilot, app, "gpus", "2")
    await type_into(pilot, app, "device", "cpu")
    await pilot.press("escape", "s")
    await wait_for(pilot, lambda: app.ddp_job is not None, 10, "the launch")
    launchers.append(app.ddp_job.process)
    assert app.training and app.train_screen.form.disabled and app.current_run_dir is not None
    return app.current_run_dir


def progress_text(app: ResNetApp) -> str:
    return shown_text(app.train_screen.monitor.query_one("#progress-text"))


async def test_two_processes_from_the_form_are_followed_s_stops_them_and_a_resume_finishes_the_run(data_link, tmp_path, launchers):
    app = ResNetApp(config=small_config(data_link, 400, 2), runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=SIZE) as pilot:
        run_dir = await start_two_processes(pilot, app, launchers)
        launcher, job = launchers[0], app.ddp_job
        status = shown_text(app.train_screen.query_one("#form-status"))
        assert f"2 processes (torch.distributed), launcher pid {launcher.pid}: following {run_dir}" in status
        monitor = app.train_screen.monitor
        await wait_for(pilot, lambda: monitor.progress.batches_done >= 1, 60, "the first batches on screen")
        seen = monitor.progress.batches_done
        assert "× 2 processes (DDP, gloo)" in shown_text(monitor.query_one("#run-header"))
        # the machine panel reads rank 0's process (the lock's holder), not the app's
        await wait_for(pilot, lambda: job.rank0_pid is not None, 10, "rank 0 on the machine panel")
        assert monitor.query_one(SystemPanel).monitor.sampler.pid == job.rank0_pid == holder(run_dir).pid != os.getpid()
        assert "Epoch 1/2 · batch" in progress_text(app) and "s stops" in progress_text(app)

        await pilot.press("q")  # the question says the run would go on without the app; stay
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitLeavingRun), 5, "the quit question")
        question = " ".join(shown_text(s) for s in app.screen.query("Static"))
        assert f"resnet-tui watch {run_dir}" in question and "goes on" in question
        await pilot.press("n", "s")
        end = await app.wait_for_run_end(timeout=60)
        await pilot.pause()
        assert launcher.returncode == 128 + signal.SIGTERM  # rank 0 was stopped by SIGTERM, and said so
        assert end is not None and end.status == "interrupted" and "stopped at epoch" in end.message
        run = records.read_run(run_dir)
        assert run.end == end and run.start.world_size == 2  # what the screen showed is what rank 0 wrote
        assert (run_dir / "resume.pt").is_file()
        assert seen <= monitor.progress.batches_done == len(run.batches) < TOTAL
        assert "INTERRUPTED" in progress_text(app) and "resume" in progress_text(app)
        assert not app.training and not app.train_screen.form.disabled and app.ddp_job is None
        assert monitor.query_one(SystemPanel).monitor.sampler.pid == os.getpid()  # the app's own again
        assert shown_text(app.train_screen.query_one("#form-status")) == ""

        app.post_message(ResumeRun(run_dir))  # R on the Runs screen: config.toml says gpus = 2
        await wait_for(pilot, lambda: app.ddp_job is not None, 10, "the resumed launch")
        launchers.append(app.ddp_job.process)
        end = await app.wait_for_run_end(timeout=60)
        await pilot.pause()
        run = records.read_run(run_dir)
        assert end is not None and end.status == "finished" and run.end == end
        assert [(b.epoch, b.batch) for b in run.batches] == [(e, b) for e in (1, 2) for b in range(1, TOTAL // 2 + 1)]
        assert monitor.progress.batches_done == TOTAL and "FINISHED" in progress_text(app)
        assert (run_dir / "checkpoints" / "cifar10_model_epoch_1.pth").is_file()
        assert not job.folder.exists()  # the launcher's config and output are removed once its run has ended well
        assert not app.training and app.ddp_job is None


async def test_quitting_the_app_leaves_the_run_training(data_link, tmp_path, launchers):
    app = ResNetApp(config=small_config(data_link, 200, 1), runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=SIZE) as pilot:
        await start_two_processes(pilot, app, launchers)
        await pilot.press("q")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmQuitLeavingRun), 5, "the quit question")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.return_code is not None, 5, "the app to quit")
        launcher = launchers[0]
        assert launcher.poll() is None and os.getsid(launcher.pid) == launcher.pid  # its own session: a hang-up goes by it


async def test_processes_that_cannot_run_here_are_one_line_and_start_nothing(data_link, tmp_path):
    cfg = small_config(data_link, 200, 1).replace(batch_size=2)
    app = ResNetApp(config=cfg, runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=SIZE) as pilot:
        form = app.train_screen.form
        await type_into(pilot, app, "gpus", "0")  # checked as typed, like every field
        assert form.errors == {"gpus": "GPUs: got '0', expected an integer from 1 to 1024, or all (every visible CUDA GPU)"}
        await type_into(pilot, app, "device", "cpu")
        for gpus, error in (("all", "--gpus: got 'all', but no CUDA GPU is visible here"),
                            ("4", "--batch-size: got 2 with 4 processes, expected at least one image per process")):
            app.last_error = ""
            await type_into(pilot, app, "gpus", gpus)
            assert form.errors == {}
            await pilot.press("escape", "s")
            await wait_for(pilot, lambda: app.last_error, 10, "the error")
            assert app.last_error.startswith(error) and "\n" not in app.last_error
            assert f"[ERROR] Training could not run: {app.last_error}" in app.train_screen.monitor.log_widget.lines
            assert not app.training and app.ddp_job is None and not app.job.active
        assert not (tmp_path / "runs").exists()

        # a launch whose ranks fail before the run directory exists: the line they printed, and where the rest is
        app.last_error = ""
        await type_into(pilot, app, "gpus", "2")
        await type_into(pilot, app, "batch_size", "20")
        await type_into(pilot, app, "data", "no-such-folder")
        await pilot.press("escape", "s")
        await wait_for(pilot, lambda: app.last_error, 60, "the launch to fail")
        assert app.last_error.startswith("--data: got 'no-such-folder', expected ")
        assert "(the 2-process run exited with code 2 before it ended; its output: " in app.last_error
        assert not app.training and app.ddp_job is None and not (tmp_path / "runs").exists()

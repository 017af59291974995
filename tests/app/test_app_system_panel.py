"""The system panel: the host line from real psutil, the GPU lines through a fake NVML (at 40 columns and wide),
the note without a driver, sampling only in the panel's own thread (never the UI's), the thread stopped on unmount,
and the panel in watch mode naming the trainer's process when it trains on this machine."""

from __future__ import annotations

import os
import threading

from textual.app import App, ComposeResult

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.run_view import RunViewScreen
from resnet_tui.app.widgets.system_panel import SystemPanel
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.lock import RunLock
from resnet_tui.core.system import SystemSampler

from app_helpers import batch_records, shown_text, start_record, wait_for, write_run
from fake_nvml import FakeGpu, FakeNvml


class PanelApp(App):
    def __init__(self, sampler: SystemSampler, width: int) -> None:
        super().__init__()
        self.sampler, self.width = sampler, width

    def compose(self) -> ComposeResult:
        panel = SystemPanel(self.sampler)
        panel.styles.width = self.width
        yield panel


def shown_lines(panel: SystemPanel) -> list[str]:
    return shown_text(panel).splitlines()


async def test_the_panel_shows_the_host_from_psutil_and_why_there_is_no_gpu() -> None:
    app = PanelApp(SystemSampler(cuda=False), 40)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(SystemPanel)
        await wait_for(pilot, lambda: panel.shown is not None, 5, "the first sample")
        lines = shown_lines(panel)
        assert lines[0] == "GPU: no CUDA device"
        assert lines[1].startswith("proc ") and " · host " in lines[1] and " ram " in lines[1] and len(lines) == 2
        assert all(len(line) <= 40 for line in lines)
        panel.styles.width = 80  # where it fits, a CPU-only machine takes one line
        await wait_for(pilot, lambda: len(shown_lines(panel)) == 1, 5, "the one-line layout")
        assert shown_lines(panel)[0].startswith("GPU: no CUDA device · proc ")
        thread = panel.monitor.thread
        assert thread is not None and thread.is_alive()
    assert not thread.is_alive()  # stopped on unmount


async def test_the_gpu_lines_through_nvml_fit_40_columns_and_use_a_wide_panel_and_sampling_stays_off_the_ui_thread() -> None:
    nvml = FakeNvml(gpus=[FakeGpu(), FakeGpu(util=12, power_mw=None)])
    app = PanelApp(SystemSampler(nvml=nvml), 40)
    async with app.run_test(size=(120, 24)) as pilot:
        panel = app.query_one(SystemPanel)
        await wait_for(pilot, lambda: panel.shown is not None, 5, "the first sample")
        gpu0, gpu1, host = shown_lines(panel)
        assert gpu0.startswith("GPU0 █") and gpu0.endswith(" 97% 11.2/140 GiB 310 W 64°C") and len(gpu0) <= 40
        assert gpu1.startswith("GPU1 █") and gpu1.endswith(" 12% 11.2/140 GiB 64°C")  # this board reports no power
        assert host.startswith("proc ")
        panel.styles.width = 120
        await wait_for(pilot, lambda: shown_lines(panel)[0].endswith("64°C  NVIDIA H200"), 5, "the wide layout")
        assert shown_lines(panel)[2].startswith("process cpu ") and " GiB (" in shown_lines(panel)[2]
        await wait_for(pilot, lambda: nvml.calls["system-monitor"] >= 6, 5, "a second sample")
    assert set(nvml.calls) == {"system-monitor"} and threading.current_thread().name not in nvml.calls
    assert nvml.shut_down


async def test_the_panel_says_when_there_is_no_nvidia_driver() -> None:
    app = PanelApp(SystemSampler(nvml=FakeNvml(init_error="Driver Not Loaded")), 60)
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(SystemPanel)
        await wait_for(pilot, lambda: panel.shown is not None, 5, "the first sample")
        assert shown_lines(panel)[0] == "GPU: no NVIDIA driver (Driver Not Loaded)"


async def test_watch_mode_shows_this_machine_with_the_trainers_process(tmp_path) -> None:
    cfg = TrainConfig(epochs=2, batch_size=32)
    run_dir = write_run(tmp_path / "run", [start_record(cfg, 4), *batch_records(1, 2, 32)], cfg)
    app = ResNetApp(mode="watch", run_dir=run_dir, runs_root=tmp_path, device_label="CPU")
    with RunLock(run_dir):  # this test process trains the run, as far as the lock says
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 10, "the run viewer")
            panel = app.screen.query_one(SystemPanel)
            assert panel.border_title == f"this machine · trainer pid {os.getpid()}"
            await wait_for(pilot, lambda: panel.shown is not None and panel.region.height >= 2, 10, "the first sample")
            assert panel.region.bottom <= 24  # on screen at 80x24, under the curves
            assert "proc" in shown_lines(panel)[-1]  # the host line last (after this machine's GPUs, if it has any)
            assert app.screen.monitor.chart.region.height >= 6

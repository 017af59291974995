"""resnet_tui.core.system: the sampler on this machine's real CPU (psutil), the GPU fields through a fake NVML module
(and the notes when there is no driver), the monitor thread (sampling never on the caller's thread, `due` timing),
the epoch line's summary, and the `system` records of metrics.jsonl (round trip, hostile values skipped and counted)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.system import GIB, SystemMonitor, SystemSampler, summary

from fake_nvml import FakeGpu, FakeNvml


def wait_until(condition: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def burn_cpu(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


# ---------------------------------------------------------------- the sampler


def test_the_sampler_reads_this_process_and_this_machine_with_psutil() -> None:
    wall, cpu = time.monotonic(), time.process_time()
    sampler = SystemSampler(cuda=False)
    burn_cpu(0.3)  # this process keeps a core busy, as far as the machine's other load lets it
    got: list[ev.SystemSample] = []
    reader = threading.Thread(target=lambda: got.append(sampler.sample()))  # sampled in another thread, as the monitor does
    reader.start()
    reader.join()
    share = 100 * (time.process_time() - cpu) / (time.monotonic() - wall)  # its CPU share, measured here
    s = got[0]
    assert abs(s.time - time.time()) < 5
    assert s.process_cpu is not None and s.process_cpu > 0 and abs(s.process_cpu - share) < 10 + share / 4
    assert s.process_rss is not None and 10 * 2**20 < s.process_rss < s.host_ram_total
    assert share / psutil.cpu_count() / 2 <= s.host_cpu <= 100  # the machine was at least as busy as this process
    assert 0 < s.host_ram_used < s.host_ram_total
    assert (s.gpus, s.gpu_note) == ([], "no CUDA device")


def test_the_gpu_fields_come_from_nvml_in_its_units_and_what_a_board_does_not_report_is_none() -> None:
    nvml = FakeNvml(gpus=[FakeGpu(), FakeGpu(name=b"Tesla V100", util=3, power_mw=None)])  # type: ignore[arg-type]
    s = SystemSampler(nvml=nvml).sample()
    assert s.gpu_note == ""
    assert s.gpus == [ev.GpuSample(0, "NVIDIA H200", 97.0, int(11.2 * GIB), 140 * GIB, 310.0, 64.0),
                      ev.GpuSample(1, "Tesla V100", 3.0, int(11.2 * GIB), 140 * GIB, None, 64.0)]
    assert s.process_rss is not None and s.process_rss > 0  # the host part is there too


def test_nvml_is_imported_only_when_a_cuda_device_is_present(monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in = FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", stand_in)  # what `import pynvml` gets
    s = SystemSampler(cuda=False).sample()
    assert (s.gpus, s.gpu_note, sum(stand_in.calls.values())) == ([], "no CUDA device", 0)
    s = SystemSampler(cuda=True).sample()
    assert [g.name for g in s.gpus] == ["NVIDIA H200"] and stand_in.calls


def test_before_torch_is_imported_the_first_sample_is_the_host_and_the_gpus_come_next(monkeypatch: pytest.MonkeyPatch) -> None:
    import resnet_tui.core.system as system

    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a process that has not imported it (watch mode)
    asked: list[bool] = []
    monkeypatch.setattr(system, "cuda_present", lambda: asked.append(True) or False)
    sampler = SystemSampler()
    first = sampler.sample()
    assert (first.gpu_note, asked) == (system.LOOKING, []) and first.process_rss
    assert (sampler.sample().gpu_note, asked) == ("no CUDA device", [True])


def test_without_a_driver_the_note_says_so_and_sample_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    s = SystemSampler(nvml=FakeNvml(init_error="Driver Not Loaded")).sample()
    assert (s.gpus, s.gpu_note) == ([], "no NVIDIA driver (Driver Not Loaded)")
    assert s.host_ram_total > 0
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py missing: the import fails
    s = SystemSampler(cuda=True).sample()
    assert s.gpus == [] and s.gpu_note.startswith("no NVIDIA driver (")


def test_a_driver_that_goes_away_while_sampling_gives_a_note_then_the_gpus_again() -> None:
    nvml = FakeNvml()
    sampler = SystemSampler(nvml=nvml)
    assert len(sampler.sample().gpus) == 1
    nvml.nvmlDeviceGetCount = lambda: (_ for _ in ()).throw(RuntimeError("GPU is lost"))  # type: ignore[method-assign]
    s = sampler.sample()
    assert (s.gpus, s.gpu_note) == ([], "NVML: GPU is lost") and s.process_rss
    del nvml.nvmlDeviceGetCount
    assert len(sampler.sample().gpus) == 1


def test_cuda_visible_devices_chooses_the_gpus_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = FakeNvml(gpus=[FakeGpu(name=f"gpu {i}") for i in range(4)])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert [g.index for g in SystemSampler(nvml=nvml).sample().gpus] == [2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-8a1b,GPU-77c2")  # UUIDs: every GPU rather than a guess
    assert [g.index for g in SystemSampler(nvml=nvml).sample().gpus] == [0, 1, 2, 3]


def test_a_host_that_hides_its_figures_reads_as_zeros_and_sample_does_not_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    def hidden() -> None:
        raise PermissionError("/proc/stat: permission denied")  # a locked-down container

    sampler = SystemSampler(cuda=False)
    monkeypatch.setattr(psutil, "cpu_times", hidden)
    monkeypatch.setattr(psutil, "virtual_memory", hidden)
    s = sampler.sample()
    assert (s.host_cpu, s.host_ram_used, s.host_ram_total) == (0.0, 0, 0) and s.process_rss
    assert summary(s).endswith("ram 0%")


def test_a_process_that_ends_reads_as_unknown_and_the_host_part_stays() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sampler = SystemSampler(cuda=False, pid=child.pid)
        assert sampler.sample().process_rss
    finally:
        child.kill()
        child.wait()
    s = sampler.sample()
    assert (s.process_cpu, s.process_rss) == (None, None) and s.host_ram_total > 0


def sample(gpus: list[ev.GpuSample], note: str = "") -> ev.SystemSample:
    return ev.SystemSample(1795959241.5, 180.0, int(2.1 * GIB), 45.0, int(0.31 * 32 * GIB), 32 * GIB, gpus, note)


def test_the_summary_for_the_headless_epoch_line() -> None:
    h200 = ev.GpuSample(0, "NVIDIA H200", 97.0, int(11.2 * GIB), int(139.8 * GIB), 310.4, 64.0)
    assert summary(sample([h200])) == "gpu 97% 11.2/140 GiB 310 W 64°C · cpu 180% · rss 2.10 GiB · ram 31%"
    assert summary(sample([], "no CUDA device")) == "cpu 180% · rss 2.10 GiB · ram 31%"
    quiet = ev.GpuSample(1, "?", None, None, None, None, None)
    assert summary(sample([h200, quiet])) == "gpu0 97% 11.2/140 GiB 310 W 64°C | gpu1 no readings · cpu 180% · rss 2.10 GiB · ram 31%"


# ---------------------------------------------------------------- the monitor thread


class CountingSampler:
    """A sampler that records the thread of every sample() call."""

    def __init__(self) -> None:
        self.threads: list[int] = []
        self.closed = False

    def sample(self) -> ev.SystemSample:
        self.threads.append(threading.get_ident())
        return sample([])

    def close(self) -> None:
        self.closed = True


def test_the_monitor_samples_in_its_own_thread_never_the_callers_and_stops() -> None:
    nvml = FakeNvml()
    with SystemMonitor(SystemSampler(nvml=nvml), interval=0.02) as monitor:
        wait_until(lambda: nvml.calls["system-monitor"] >= 3)  # three samples and more: once per interval
        assert monitor.latest is not None and monitor.latest.gpus[0].name == "NVIDIA H200"
        assert monitor.thread is not None and monitor.thread.daemon and monitor.thread.ident != threading.get_ident()
    assert not monitor.thread.is_alive() and nvml.shut_down  # NVML shut down by the thread that used it
    assert set(nvml.calls) == {"system-monitor"}  # nothing sampled on this (the "training") thread

    counting = CountingSampler()
    monitor = SystemMonitor(counting, interval=0.02).start()
    wait_until(lambda: len(counting.threads) >= 2)
    monitor.due(every=0.0)
    monitor.stop()
    assert threading.get_ident() not in counting.threads and counting.closed


def test_due_hands_out_the_latest_sample_at_most_once_every_so_many_seconds() -> None:
    now = [100.0]
    counting = CountingSampler()
    monitor = SystemMonitor(counting, interval=0.01, clock=lambda: now[0])
    assert monitor.due(10.0) is None  # nothing sampled yet
    with monitor:
        wait_until(lambda: monitor.latest is not None)
        first = monitor.due(10.0)
        assert first is not None  # the first at once
        wait_until(lambda: monitor.latest is not first)
        now[0] += 9.9
        assert monitor.due(10.0) is None  # a newer sample, but too soon
        now[0] += 0.1
        second = monitor.due(10.0)
        assert second is not None and second is not first
    now[0] += 60
    stale = monitor.latest
    assert stale is second or monitor.due(10.0) is stale  # stopped: the last sample once more at most, then nothing
    assert monitor.due(10.0) is None


def test_a_sampler_that_raises_does_not_end_the_monitor() -> None:
    calls: list[int] = []

    class Flaky(CountingSampler):
        def sample(self) -> ev.SystemSample:
            calls.append(1)
            if len(calls) == 1:
                raise OSError("a /proc read failed")
            return super().sample()

    with SystemMonitor(Flaky(), interval=0.01) as monitor:
        wait_until(lambda: monitor.latest is not None)


# ---------------------------------------------------------------- system records


def test_system_records_round_trip_and_are_read_back_with_the_run(tmp_path: Path) -> None:
    h200 = ev.GpuSample(0, "NVIDIA H200", 97.0, int(11.2 * GIB), 140 * GIB, 310.5, 64.0)
    events = [sample([h200, ev.GpuSample(1, "", None, None, None, None, None)]), sample([], "no CUDA device"),
              ev.SystemSample(1795959242.0, None, None, 0.0, 1, 2)]
    for e in events:
        line = records.to_line(e)
        assert line is not None and json.loads(line)["event"] == "system" and records.kind_of(e) == "system"
        assert records.parse_line(line) == e
    assert json.loads(records.to_line(events[0]) or "")["gpus"][0] == {
        "index": 0, "name": "NVIDIA H200", "util": 97.0, "mem_used": int(11.2 * GIB), "mem_total": 140 * GIB,
        "power_w": 310.5, "temp_c": 64.0}
    records.write_records(tmp_path, events)
    assert records.read_run(tmp_path).systems == events


def hostile_system_records() -> list[Any]:
    good = records.to_record(sample([ev.GpuSample(0, "H200", 97.0, 1, 2, 300.0, 60.0)]))
    assert good is not None
    gpu = good["gpus"][0]

    def but(**changes: Any) -> dict[str, Any]:
        return {**good, **changes}

    def without(key: str) -> dict[str, Any]:
        return {k: v for k, v in good.items() if k != key}

    return [
        without("time"), without("host_cpu"), without("host_ram_total"), without("process_rss"),
        but(time="yesterday"), but(time=-1.0), but(host_cpu=True), but(host_cpu=250.0), but(host_cpu=-3.0),
        but(process_cpu="lots"), but(process_cpu=-1.0), but(process_rss=1.5), but(process_rss=-1),
        but(host_ram_used=2**60), but(host_ram_total=None), but(gpu_note=3),
        but(gpus="all of them"), but(gpus=[1]), but(gpus=[{**gpu, "util": 101.0}]), but(gpus=[{**gpu, "mem_used": -5}]),
        but(gpus=[{**gpu, "power_w": "310 W"}]), but(gpus=[{**gpu, "temp_c": -40.0}]), but(gpus=[{**gpu, "index": -1}]),
        but(gpus=[{k: v for k, v in gpu.items() if k != "index"}]), but(gpus=[gpu] * (records.MAX_GPUS + 1)),
    ]


def test_hostile_system_records_are_skipped_and_counted(tmp_path: Path) -> None:
    hostile = hostile_system_records()
    for rec in hostile:
        assert records.from_record(rec) is None, rec
    good = records.to_record(sample([]))
    lines = [json.dumps(good), *map(json.dumps, hostile), '{"event": "system", "time": NaN}', json.dumps(good)]
    (tmp_path / records.METRICS_NAME).write_text("\n".join(lines) + "\n")
    run = records.read_run(tmp_path)
    assert (len(run.systems), run.skipped) == (2, len(hostile) + 1)
    # an older reader's defaults: a record without GPUs or a note is a host-only sample
    minimal = {k: v for k, v in (good or {}).items() if k not in ("gpus", "gpu_note")}
    assert records.from_record(minimal) == sample([])


def test_a_run_records_the_machine_and_its_epoch_lines_name_it(tiny_run):
    """The trainer's monitor samples in its own thread; metrics.jsonl gets system records (the first at once, then
    about every 10 s and at epoch ends), and each epoch's line in train.log and on stdout ends with the machine's
    last sample (a tiny run's epochs are shorter than the monitor's 1 s interval, so both may show the first)."""
    from resnet_tui.core.records import read_run

    run_dir, proc, _ = tiny_run
    records = read_run(run_dir)
    systems = records.systems
    assert len(systems) >= 1
    assert all(s.process_rss and s.process_rss > 0 for s in systems)
    epoch_lines = [line for line in (run_dir / "train.log").read_text().splitlines() if " train-loss: " in line and "batch:" not in line]
    assert len(epoch_lines) == 2 and all(" · cpu " in line and " rss " in line for line in epoch_lines)
    assert sum(" · cpu " in line for line in proc.stdout.splitlines()) == 2

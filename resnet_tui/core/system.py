"""The machine a run trains on: the training process and the host through psutil, each NVIDIA GPU through NVML.

`SystemSampler.sample()` reads everything once and never raises. `SystemMonitor` samples in a daemon thread
once a second, so neither the training loop nor the UI ever waits on a driver call: the trainer asks `due()`
for a sample about every 10 s (a `system` record in metrics.jsonl), the app's panel reads `latest`.

NVML (package nvidia-ml-py, module pynvml) is imported only when a CUDA device is present, and lazily, in the
sampling thread: a CPU-only machine never loads it, and importing torch to ask does not hold up the caller.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from types import ModuleType, TracebackType
from typing import Any, Callable

import psutil

from resnet_tui.core.events import GpuSample, SystemSample

GIB = 2**30
LOOKING = "looking for GPUs…"
MAX_GPU_LINES = 4  # summary() and the app's panel show this many GPUs one by one, the rest together


def cuda_present() -> bool:
    """Whether torch sees a CUDA device (False when torch cannot tell)."""
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install must not stop the sampler
        return False


def _visible_indices() -> list[int] | None:
    """The NVML indices CUDA_VISIBLE_DEVICES allows this process, when it lists them by number; else None (all).
    A sweep with one run per GPU gives each process one: its panel shows that GPU."""
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        return None  # GPU UUIDs or MIG names: show every GPU rather than guess
    return [int(p) for p in parts]


def busy_percent(before: Any, after: Any) -> float:
    """The machine's CPU use between two psutil.cpu_times(), in percent of all its cores (as psutil.cpu_percent
    counts it: idle and iowait are idle; guest time is already in user time)."""
    def total(t: Any) -> float:
        return sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)

    def busy(t: Any) -> float:
        return total(t) - t.idle - getattr(t, "iowait", 0.0)

    elapsed = total(after) - total(before)
    if elapsed <= 0:
        return 0.0
    return max(0.0, min(100.0, 100.0 * (busy(after) - busy(before)) / elapsed))


def _or_none(read: Callable[[], Any]) -> Any:
    """One reading; None when it fails: NVML's NotSupported on this board, psutil without /proc, and the like."""
    try:
        return read()
    except Exception:
        return None


class SystemSampler:
    """Reads the process, the host and the GPUs. nvml: a module with pynvml's API (tests pass a fake one);
    cuda: whether a CUDA device is present (None: ask torch on the first sample); pid: the process to
    read (default: this one; a watched run's trainer when it runs on this machine)."""

    def __init__(self, nvml: ModuleType | Any = None, cuda: bool | None = None, pid: int | None = None) -> None:
        self._nvml = nvml
        self._cuda = cuda
        self._nvml_ready = False
        self._gpu_note = ""  # why the GPUs cannot be read, once that is known for good
        self._sampled = False
        self._lock = threading.Lock()  # sample() from two threads must not interleave NVML's init
        try:
            self._process: psutil.Process | None = psutil.Process(pid)
            self._process.cpu_percent(None)  # the first call only starts the measurement
        except psutil.Error:
            self._process = None
        # not psutil.cpu_percent(): its baseline is kept per thread, and sample() runs in another one
        self._host_times: Any = _or_none(psutil.cpu_times)

    @property
    def pid(self) -> int | None:
        """The process it reads (None: it has ended, or could not be read)."""
        return self._process.pid if self._process is not None else None

    def follow(self, pid: int | None) -> None:
        """Read another process from the next sample on (None: this one): the rank 0 of a run the app follows."""
        try:
            process: psutil.Process | None = psutil.Process(pid)
            process.cpu_percent(None)
        except psutil.Error:
            process = None
        with self._lock:
            self._process = process

    def sample(self) -> SystemSample:
        with self._lock:
            process_cpu, process_rss = self._read_process()
            host_cpu, ram_used, ram_total = self._read_host()
            gpus, note = self._read_gpus()
            return SystemSample(time.time(), process_cpu, process_rss, host_cpu, ram_used, ram_total, gpus, note)

    def _read_host(self) -> tuple[float, int, int]:
        """The machine's CPU since the last sample, RAM used and total; zeros where the OS does not tell (no /proc)."""
        before, self._host_times = self._host_times, _or_none(psutil.cpu_times)
        cpu = busy_percent(before, self._host_times) if before is not None and self._host_times is not None else 0.0
        ram = _or_none(psutil.virtual_memory)
        return cpu, int(ram.used) if ram else 0, int(ram.total) if ram else 0

    def _read_process(self) -> tuple[float | None, int | None]:
        if self._process is None:
            return None, None
        try:
            with self._process.oneshot():
                return float(self._process.cpu_percent(None)), int(self._process.memory_info().rss)
        except psutil.Error:  # the process ended (a watched run's trainer)
            self._process = None
            return None, None

    def _read_gpus(self) -> tuple[list[GpuSample], str]:
        first, self._sampled = not self._sampled, True
        if first and self._cuda is None and self._nvml is None and "torch" not in sys.modules:
            return [], LOOKING  # asking torch means importing it (seconds): the host part first, the GPUs next time
        if not self._nvml_ready and not self._gpu_note:
            self._gpu_note = self._start_nvml()
            self._nvml_ready = not self._gpu_note
        if not self._nvml_ready:
            return [], self._gpu_note
        nvml = self._nvml
        try:
            count = nvml.nvmlDeviceGetCount()
            visible = _visible_indices()
            indices = [i for i in range(count) if visible is None or i in visible]
            return [self._read_gpu(nvml, i) for i in indices], ""
        except Exception as e:  # the driver went away (GPU fell off the bus, driver reloaded): say so, try again next time
            return [], f"NVML: {_error_text(e)}"

    def _start_nvml(self) -> str:
        """"" when NVML is up; else the note that says why the GPUs are not shown."""
        if self._nvml is None:
            if self._cuda is None:
                self._cuda = cuda_present()
            if not self._cuda:
                return "no CUDA device"
            try:
                import pynvml

                self._nvml = pynvml
            except Exception as e:
                return f"no NVIDIA driver ({_error_text(e)})"
        try:
            self._nvml.nvmlInit()
        except Exception as e:
            return f"no NVIDIA driver ({_error_text(e)})"
        return ""

    @staticmethod
    def _read_gpu(nvml: Any, index: int) -> GpuSample:
        h = nvml.nvmlDeviceGetHandleByIndex(index)
        name = _or_none(lambda: nvml.nvmlDeviceGetName(h))
        if isinstance(name, bytes):  # pynvml before 11.5 returns bytes
            name = name.decode("utf-8", "replace")
        util = _or_none(lambda: float(nvml.nvmlDeviceGetUtilizationRates(h).gpu))
        memory = _or_none(lambda: nvml.nvmlDeviceGetMemoryInfo(h))
        power_mw = _or_none(lambda: nvml.nvmlDeviceGetPowerUsage(h))
        temp = _or_none(lambda: float(nvml.nvmlDeviceGetTemperature(h, getattr(nvml, "NVML_TEMPERATURE_GPU", 0))))
        return GpuSample(index, str(name or f"GPU {index}"), util,
                         _or_none(lambda: int(memory.used)), _or_none(lambda: int(memory.total)),
                         None if power_mw is None else power_mw / 1000.0, temp)

    def close(self) -> None:
        with self._lock:
            if self._nvml_ready:
                _or_none(self._nvml.nvmlShutdown)
                self._nvml_ready = False


def _error_text(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
    return text or type(e).__name__


class SystemMonitor:
    """Samples in a daemon thread every `interval` seconds. `latest` is the last sample (None before the first);
    `due(every)` hands the latest one out at most once every `every` seconds (the trainer's system records)."""

    def __init__(self, sampler: SystemSampler | None = None, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.sampler = sampler if sampler is not None else SystemSampler()
        self.interval = interval
        self.latest: SystemSample | None = None
        self._clock = clock
        self._last_due: float | None = None
        self._last_due_sample: SystemSample | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "SystemMonitor":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="system-monitor", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.latest = self.sampler.sample()
            except Exception:  # sample() does not raise; an injected sampler might: keep the last sample
                pass
            self._stop.wait(self.interval)
        close = getattr(self.sampler, "close", None)  # NVML is shut down by the thread that used it
        if close is not None:
            close()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and wait for it a little (it is a daemon: a stuck driver call cannot hold the exit)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def due(self, every: float = 10.0) -> SystemSample | None:
        """The latest sample, if `every` seconds have passed since this last returned one (the first at once);
        None otherwise, and never the same sample twice. Costs a clock read: safe in the trainer's loop."""
        sample = self.latest
        if sample is None or sample is self._last_due_sample:
            return None
        now = self._clock()
        if self._last_due is not None and now - self._last_due < every:
            return None
        self._last_due, self._last_due_sample = now, sample
        return sample

    def __enter__(self) -> "SystemMonitor":
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


# ---------------------------------------------------------------- text


def gib(n: float) -> str:
    """Bytes as GiB, three significant digits at most: 0.52, 11.2, 140."""
    x = n / GIB
    return f"{x:.2f}" if x < 10 else f"{x:.1f}" if x < 100 else f"{x:.0f}"


def size_text(n: float) -> str:
    """A process's memory: `512 MiB` under a GiB, else `2.1 GiB`."""
    return f"{n / 2**20:.0f} MiB" if n < GIB else f"{gib(n)} GiB"


def gpu_text(g: GpuSample) -> str:
    """`97% 11.2/79.6 GiB 310 W 64°C`, leaving out what the driver did not report."""
    parts = []
    if g.util is not None:
        parts.append(f"{g.util:.0f}%")
    if g.mem_used is not None and g.mem_total is not None:
        parts.append(f"{gib(g.mem_used)}/{gib(g.mem_total)} GiB")
    if g.power_w is not None:
        parts.append(f"{g.power_w:.0f} W")
    if g.temp_c is not None:
        parts.append(f"{g.temp_c:.0f}°C")
    return " ".join(parts) or "no readings"


def ram_percent(s: SystemSample) -> float:
    return 100.0 * s.host_ram_used / s.host_ram_total if s.host_ram_total > 0 else 0.0


def host_text(s: SystemSample) -> str:
    """`cpu 180% · rss 2.1 GiB · ram 31%`: the process's CPU (of one core) and memory, the machine's RAM."""
    parts = []
    if s.process_cpu is not None:
        parts.append(f"cpu {s.process_cpu:.0f}%")
    if s.process_rss is not None:
        parts.append(f"rss {size_text(s.process_rss)}")
    parts.append(f"ram {ram_percent(s):.0f}%")
    return " · ".join(parts)


def summary(s: SystemSample) -> str:
    """The short text for a headless epoch line: `gpu 97% 11.2/79.6 GiB 310 W 64°C · cpu 180% · rss 2.1 GiB · ram 31%`.
    One GPU by its figures; several as `gpu0 ... | gpu1 ...`; without GPUs, the host part alone."""
    if not s.gpus:
        return host_text(s)
    if len(s.gpus) == 1:
        gpus = f"gpu {gpu_text(s.gpus[0])}"
    else:
        shown = [f"gpu{g.index} {gpu_text(g)}" for g in s.gpus[:MAX_GPU_LINES]]
        more = len(s.gpus) - MAX_GPU_LINES
        gpus = " | ".join(shown) + (f" | +{more} GPUs" if more > 0 else "")
    return f"{gpus} · {host_text(s)}"


__all__ = ["GIB", "LOOKING", "SystemMonitor", "SystemSampler", "cuda_present", "gib", "gpu_text", "host_text", "ram_percent", "size_text", "summary"]

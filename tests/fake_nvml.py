"""A stand-in for pynvml (NVIDIA's management library) with its API and units, for the system sampler's tests:
the GPUs it reports are fixed, and it counts the calls made from each thread."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace

GIB = 2**30
NVML_TEMPERATURE_GPU = 0


class NVMLError(Exception):
    pass


@dataclass
class FakeGpu:
    name: str = "NVIDIA H200"
    util: int = 97
    used: int = int(11.2 * GIB)
    total: int = 140 * GIB
    power_mw: int | None = 310_000  # None: "not supported", as some boards answer
    temp: int = 64


@dataclass
class FakeNvml:
    gpus: list[FakeGpu] = field(default_factory=lambda: [FakeGpu()])
    init_error: str | None = None  # nvmlInit raises NVMLError(this): no driver
    calls: Counter = field(default_factory=Counter)  # thread name -> calls
    NVML_TEMPERATURE_GPU: int = NVML_TEMPERATURE_GPU
    shut_down: bool = False

    def _count(self) -> None:
        self.calls[threading.current_thread().name] += 1

    def nvmlInit(self) -> None:
        self._count()
        if self.init_error is not None:
            raise NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self.shut_down = True

    def nvmlDeviceGetCount(self) -> int:
        self._count()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, i: int) -> FakeGpu:
        self._count()
        return self.gpus[i]

    def nvmlDeviceGetName(self, h: FakeGpu) -> str:
        return h.name

    def nvmlDeviceGetUtilizationRates(self, h: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=h.util, memory=40)

    def nvmlDeviceGetMemoryInfo(self, h: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(used=h.used, total=h.total, free=h.total - h.used)

    def nvmlDeviceGetPowerUsage(self, h: FakeGpu) -> int:
        if h.power_mw is None:
            raise NVMLError("Not Supported")
        return h.power_mw

    def nvmlDeviceGetTemperature(self, h: FakeGpu, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return h.temp

"""Choosing the training device and describing it."""

from __future__ import annotations

import functools
import time

import torch

from resnet_tui.core.errors import UserError


def resolve_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UserError(f"--device: got {requested!r}, but CUDA is not available here; use auto or cpu")
        index = int(requested.split(":", 1)[1]) if ":" in requested else 0
        if index >= torch.cuda.device_count():
            raise UserError(f"--device: got {requested!r}, expected cuda:0 to cuda:{torch.cuda.device_count() - 1}")
    if requested == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise UserError("--device: got 'mps', but MPS is not available here; use auto or cpu")
    return torch.device(requested)


def describe_device(device: torch.device, precision: str | None = None) -> str:
    """The device line; with `precision` (a config's), also the arithmetic the run will use and why."""
    if device.type == "cuda":
        name = f"{torch.cuda.get_device_name(device)} (CUDA)"
    elif device.type == "mps":
        name = "Apple GPU (MPS)"
    else:
        name = f"CPU ({torch.get_num_threads()} threads)"
    if precision is None:
        return name
    dtype, why = precision_choice(precision, device)
    return f"{name}, {'bf16 autocast' if dtype is not None else 'fp32'} ({why})"


# CPU features with bf16 arithmetic in hardware (x86: AVX512-BF16, AMX; Arm: the BF16 extension). oneDNN's own check,
# torch.ops.mkldnn._is_mkldnn_bf16_supported(), also says yes on plain AVX-512, where bf16 is emulated and slower.
NATIVE_BF16_FEATURES = ("avx512_bf16", "amx_bf16", "bf16", "sve_bf16")
# Native bf16 is not always faster: on the development machine (a 2-core VM reporting "Intel(R) Xeon(R) Processor",
# AVX512_BF16 without AMX, torch 2.14.1) a training step under bf16 autocast ran at 0.70x of fp32, while the same
# network on a 2-core AMD EPYC with AVX512_BF16 ran 1.8x faster (issue 11). So `auto` measures before it picks bf16.
BF16_MIN_SPEEDUP = 1.2  # what the probe must show; below it the difference is noise, or not worth bf16's rounding


def cpu_bf16_feature() -> str | None:
    """The CPU feature that makes bf16 autocast native rather than an emulation, as torch's cpuinfo reports it."""
    caps = torch.cpu.get_capabilities()
    return next((f for f in NATIVE_BF16_FEATURES if caps.get(f) is True), None)


def cpu_has_native_bf16() -> bool:
    return cpu_bf16_feature() is not None


@functools.lru_cache(maxsize=1)
def cpu_bf16_speedup(reps: int = 3) -> float:
    """fp32 time / bf16-autocast time of a small conv block's training step (forward and backward, channels_last,
    the network's shapes), best of `reps` alternating rounds: about 0.1 s, once per process."""
    with torch.random.fork_rng(devices=[]):  # the probe must not move the run's random numbers
        block = torch.nn.Sequential(torch.nn.Conv2d(32, 32, 3, padding=1, bias=False), torch.nn.BatchNorm2d(32), torch.nn.ReLU(),
                                    torch.nn.Conv2d(32, 32, 3, padding=1, bias=False)).to(memory_format=torch.channels_last)
    x = torch.randn(64, 32, 16, 16, generator=torch.Generator().manual_seed(0)).to(memory_format=torch.channels_last)

    def step(bf16: bool) -> float:
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = block(x)
        out.float().sum().backward()
        return time.perf_counter() - t0

    step(False), step(True)  # warm-up: oneDNN picks its kernels
    best = {False: float("inf"), True: float("inf")}
    for _ in range(reps):
        for bf16 in (False, True):
            best[bf16] = min(best[bf16], step(bf16))
    return best[False] / best[True]


def precision_choice(precision: str, device: torch.device) -> tuple[torch.dtype | None, str]:
    """The autocast dtype for `precision` on `device` (None: plain fp32), and why, in a few words."""
    if precision == "fp32":
        return None, "--precision fp32"
    if precision == "bf16":
        return torch.bfloat16, "--precision bf16"
    if device.type == "cuda":
        return torch.bfloat16, "auto: CUDA"
    if device.type == "cpu":
        feature = cpu_bf16_feature()
        if feature is None:
            return None, "auto: this CPU has no native bf16"
        speedup = cpu_bf16_speedup()
        if speedup >= BF16_MIN_SPEEDUP:
            return torch.bfloat16, f"auto: this CPU has {feature.upper()}, and bf16 measured {speedup:.1f}x faster here"
        return None, f"auto: this CPU has {feature.upper()}, but bf16 measured {speedup:.2f}x of fp32 here"
    return None, f"auto: fp32 on {device.type.upper()}"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """None means plain fp32."""
    return precision_choice(precision, device)[0]


def prepare_device(device: torch.device) -> None:
    """Per-run device settings. On CUDA the run's GPU becomes the current device: CUDA-graph capture, the caching
    allocator and synchronize() act on the current device, so a sweep child on cuda:3 would otherwise create a second
    context on GPU 0."""
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True  # fixed input shapes: let cuDNN pick the fastest convolutions once

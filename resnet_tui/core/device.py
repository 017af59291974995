"""Choosing the training device and describing it."""

from __future__ import annotations

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
# Where `auto` picks bf16 on a CPU: AMX's bf16 tile multiplies. AVX512-BF16 alone is native too, but on the development
# machine (a 2-core VM reporting "Intel(R) Xeon(R) Processor" with AVX512_BF16 and AVX512_FP16, no AMX; torch 2.14.1,
# oneDNN 3.12 using its avx512_core_bf16 kernels) a training step under bf16 autocast ran at 0.70x of fp32 (the full
# model, batch 64, channels_last; 0.79x in NCHW), its convolutions taking 1.8x as long: there `auto` stays fp32 and
# --precision bf16 opts in.
AUTO_BF16_FEATURES = ("amx_bf16",)


def cpu_bf16_feature() -> str | None:
    """The CPU feature that makes bf16 autocast a speed-up rather than an emulation, as torch's cpuinfo reports it."""
    caps = torch.cpu.get_capabilities()
    return next((f for f in NATIVE_BF16_FEATURES if caps.get(f) is True), None)


def cpu_has_native_bf16() -> bool:
    return cpu_bf16_feature() is not None


def cpu_bf16_is_faster() -> bool:
    return any(torch.cpu.get_capabilities().get(f) is True for f in AUTO_BF16_FEATURES)


def precision_choice(precision: str, device: torch.device) -> tuple[torch.dtype | None, str]:
    """The autocast dtype for `precision` on `device` (None: plain fp32), and why, in a few words."""
    if precision == "fp32":
        return None, "--precision fp32"
    if precision == "bf16":
        return torch.bfloat16, "--precision bf16"
    if device.type == "cuda":
        return torch.bfloat16, "auto: CUDA"
    if device.type == "cpu":
        if cpu_bf16_is_faster():
            return torch.bfloat16, "auto: this CPU has AMX-BF16"
        feature = cpu_bf16_feature()
        if feature is not None:
            return None, f"auto: this CPU has {feature.upper()} but no AMX, where bf16 measured slower than fp32"
        return None, "auto: this CPU has no native bf16"
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

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


def cpu_bf16_feature() -> str | None:
    """The CPU feature that makes bf16 autocast a speed-up rather than an emulation, as torch's cpuinfo reports it."""
    caps = torch.cpu.get_capabilities()
    return next((f for f in NATIVE_BF16_FEATURES if caps.get(f) is True), None)


def cpu_has_native_bf16() -> bool:
    return cpu_bf16_feature() is not None


def cpu_bf16_choice() -> tuple[bool, str]:
    """Whether `auto` trains in bf16 on this CPU, and why, from the features torch reports (never the model name).

    - AMX-BF16 (Intel Sapphire Rapids and later): bf16 tile multiplies, where bf16 pays on a CPU.
    - AVX512-BF16 on a core without AVX512-FP16 (AMD Zen 4 and 5; Intel Cooper Lake): issue 11 measured the fast
      preset 1.8x faster in bf16 (442.6 against 251.2 images/s) on 2 cores of an AMD EPYC. Cooper Lake: not measured.
    - AVX512-BF16 with AVX512-FP16 but no AMX: an Intel server core of the Sapphire Rapids generation or later (which
      have AMX) in a VM that hides it. The development machine is one (a 2-core VM reporting "Intel(R) Xeon(R)
      Processor"; torch 2.14.1, oneDNN 3.12 running its avx512_core_bf16 kernels): there a training step under bf16
      autocast ran at 0.70x of fp32 (the full model, batch 64, channels_last; 0.79x in NCHW), its convolutions
      taking 1.8x as long. fp32.
    - Arm's BF16: not measured; fp32."""
    caps = torch.cpu.get_capabilities()
    if caps.get("amx_bf16") is True:
        return True, "auto: this CPU has AMX-BF16"
    if caps.get("avx512_bf16") is True:
        if caps.get("avx512_fp16") is not True:
            return True, "auto: this CPU has AVX512_BF16"
        return False, ("auto: this CPU has AVX512_BF16 and AVX512_FP16 but no AMX (an AMX CPU whose AMX is hidden, "
                       "as in a VM), where bf16 measured slower than fp32")
    feature = cpu_bf16_feature()
    if feature is not None:
        return False, f"auto: this CPU has {feature.upper()}, where bf16 has not been measured faster than fp32"
    return False, "auto: this CPU has no native bf16"


def precision_choice(precision: str, device: torch.device) -> tuple[torch.dtype | None, str]:
    """The autocast dtype for `precision` on `device` (None: plain fp32), and why, in a few words."""
    if precision == "fp32":
        return None, "--precision fp32"
    if precision == "bf16":
        return torch.bfloat16, "--precision bf16"
    if device.type == "cuda":
        return torch.bfloat16, "auto: CUDA"
    if device.type == "cpu":
        bf16, why = cpu_bf16_choice()
        return (torch.bfloat16 if bf16 else None), why
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

"""Speed paths that must stay correct: bf16 autocast on CPUs with native bf16, and the GPU code paths read on the CPU."""

from __future__ import annotations

import pytest
import torch

from resnet_tui.core import device as dev
from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_data
from resnet_tui.core.train import train

CPU = torch.device("cpu")


def caps(**features):
    return lambda: {"architecture": "x86_64", **features}


def test_auto_picks_bf16_on_a_cpu_with_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_f=True, avx512_bf16=True, amx_bf16=False))
    assert dev.autocast_dtype("auto", CPU) is torch.bfloat16
    assert dev.describe_device(CPU, "auto").endswith("bf16 autocast (auto: this CPU has AVX512_BF16)")
    # an explicit choice wins either way
    assert dev.autocast_dtype("fp32", CPU) is None
    assert "fp32 (--precision fp32)" in dev.describe_device(CPU, "fp32")


def test_auto_stays_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    # plain AVX-512 emulates bf16 (slower than fp32): oneDNN's own check would say yes here, ours says no
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_f=True, avx512_bf16=False, amx_bf16=False))
    assert dev.autocast_dtype("auto", CPU) is None
    assert dev.describe_device(CPU, "auto").endswith("fp32 (auto: this CPU has no native bf16)")
    assert dev.autocast_dtype("bf16", CPU) is torch.bfloat16


def test_amx_counts_as_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_bf16=False, amx_bf16=True))
    assert dev.autocast_dtype("auto", CPU) is torch.bfloat16


def test_the_real_detection_reads_torchs_cpu_capabilities():
    # no patching: whatever this CPU is, the answer is the capability torch reports
    reported = torch.cpu.get_capabilities()
    expected = any(reported.get(f) is True for f in dev.NATIVE_BF16_FEATURES)
    assert dev.cpu_has_native_bf16() is expected


@pytest.mark.slow
def test_bf16_learns_as_well_as_fp32(cifar_dir, tmp_path):
    """3 epochs on 2,000 real images, fp32 and bf16 autocast from the same seed, both evaluated in fp32 on 1,000 held-out
    images. Valid because both runs see the same images in the same order with the same initial weights: only the
    arithmetic differs. The bound (2 points) is about the spread between fp32 runs of different seeds in this setup
    (measured 44.0% and 42.6%), so bf16 costing accuracy beyond its rounding would show. A larger lr with momentum
    and a warm-up makes 3 epochs of the 8-layer network learn (about 44%, chance is 10%)."""
    splits = load_data(str(cifar_dir), None, 2000, 1000)
    accuracy = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(
            limit_train=2000, limit_eval=1000, layers=(1, 1, 1), batch_size=64, epochs=3, optimizer="sgd", lr=0.05,
            momentum=0.9, schedule="warmup-linear", warmup_epochs=1, device="cpu", precision=precision, seed=0,
        )
        events: list[ev.Event] = []
        end = train(cfg, tmp_path / precision, events.append, splits=splits)
        assert end.status == "finished", end.message
        start = next(e for e in events if isinstance(e, ev.TrainStart))
        assert ("bf16 autocast" in start.device) is (precision == "bf16")
        accuracy[precision] = next(e for e in events if isinstance(e, ev.EvalEnd)).result.accuracy
    assert accuracy["fp32"] > 0.3, accuracy  # it learned: the comparison means something
    assert abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.02, accuracy

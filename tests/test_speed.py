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


def test_auto_picks_bf16_on_a_cpu_with_amx(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_f=True, avx512_bf16=True, amx_bf16=True))
    assert dev.autocast_dtype("auto", CPU) is torch.bfloat16
    assert dev.describe_device(CPU, "auto").endswith("bf16 autocast (auto: this CPU has AMX-BF16)")
    # an explicit choice wins either way
    assert dev.autocast_dtype("fp32", CPU) is None
    assert "fp32 (--precision fp32)" in dev.describe_device(CPU, "fp32")


def test_auto_stays_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    # plain AVX-512 emulates bf16 (slower than fp32): oneDNN's own check would say yes here, ours says no
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_f=True, avx512_bf16=False, amx_bf16=False))
    assert dev.autocast_dtype("auto", CPU) is None
    assert dev.describe_device(CPU, "auto").endswith("fp32 (auto: this CPU has no native bf16)")
    assert dev.autocast_dtype("bf16", CPU) is torch.bfloat16


def test_avx512_bf16_without_avx512_fp16_picks_bf16_as_measured_on_an_amd_epyc(monkeypatch):
    # AMD Zen 4 and 5: native AVX512-BF16, no AVX512-FP16, no AMX; issue 11 measured bf16 1.8x faster there
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_f=True, avx512_bf16=True, avx512_fp16=False, amx_bf16=False))
    assert dev.autocast_dtype("auto", CPU) is torch.bfloat16
    assert dev.describe_device(CPU, "auto").endswith("bf16 autocast (auto: this CPU has AVX512_BF16)")
    assert dev.autocast_dtype("fp32", CPU) is None  # opting out still works


def test_an_amx_cpu_whose_amx_is_hidden_stays_fp32_where_it_measured_slower(monkeypatch):
    # the development machine: AVX512-BF16 and AVX512-FP16 (a Sapphire Rapids-class core) in a VM that hides AMX;
    # bf16 autocast trained at 0.70x of fp32 there (see core/device.py)
    monkeypatch.setattr(torch.cpu, "get_capabilities", caps(avx512_f=True, avx512_bf16=True, avx512_fp16=True, amx_bf16=False))
    assert dev.cpu_has_native_bf16() and dev.autocast_dtype("auto", CPU) is None
    assert dev.describe_device(CPU, "auto").endswith("fp32 (auto: this CPU has AVX512_BF16 and AVX512_FP16 but no AMX "
                                                     "(an AMX CPU whose AMX is hidden, as in a VM), where bf16 measured slower than fp32)")
    assert dev.autocast_dtype("bf16", CPU) is torch.bfloat16  # opting in still works


def test_arm_bf16_stays_fp32_until_measured(monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"architecture": "aarch64", "bf16": True})
    assert dev.autocast_dtype("auto", CPU) is None
    assert "has BF16, where bf16 has not been measured faster" in dev.describe_device(CPU, "auto")


def test_the_real_detection_reads_torchs_cpu_capabilities():
    # no patching: whatever this CPU is, the answer is the capability torch reports
    reported = torch.cpu.get_capabilities()
    assert dev.cpu_has_native_bf16() is any(reported.get(f) is True for f in dev.NATIVE_BF16_FEATURES)
    expected = reported.get("amx_bf16") is True or (reported.get("avx512_bf16") is True and reported.get("avx512_fp16") is not True)
    assert (dev.autocast_dtype("auto", CPU) is torch.bfloat16) is expected


@pytest.mark.slow
def test_bf16_learns_as_well_as_fp32(cifar_dir, tmp_path):
    """3 epochs on 2,000 real images, fp32 and bf16 autocast from the same seed, both evaluated in fp32 on 1,000 held-out
    images. Valid because both runs see the same images in the same order with the same initial weights: only the
    arithmetic differs. The bound (2 points) is about the spread between fp32 runs of different seeds in this setup
    (measured 44.0% and 42.6%), so bf16 costing accuracy beyond its rounding would show. A larger lr with momentum
    and a warm-up makes 3 epochs of the 8-layer network learn (about 44%, chance is 10%). The residual lens is off in
    both: it changes no weight (tests/test_lens.py), so the accuracies are the same with it, and it cost 10-30% of the time here."""
    splits = load_data(str(cifar_dir), None, 2000, 1000)
    accuracy = {}
    for precision in ("fp32", "bf16"):
        cfg = TrainConfig(
            limit_train=2000, limit_eval=1000, layers=(1, 1, 1), batch_size=64, epochs=3, optimizer="sgd", lr=0.05,
            momentum=0.9, schedule="warmup-linear", warmup_epochs=1, device="cpu", precision=precision, seed=0, lens_every=0,
        )
        events: list[ev.Event] = []
        end = train(cfg, tmp_path / precision, events.append, splits=splits)
        assert end.status == "finished", end.message
        start = next(e for e in events if isinstance(e, ev.TrainStart))
        assert ("bf16 autocast" in start.device) is (precision == "bf16")
        accuracy[precision] = next(e for e in events if isinstance(e, ev.EvalEnd)).result.accuracy
    assert accuracy["fp32"] > 0.3, accuracy  # it learned: the comparison means something
    assert abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.02, accuracy


# ---------------------------------------------------------------- GPU code paths, shown on the CPU


def tiny_cfg(cifar_dir, **changes) -> TrainConfig:
    base = dict(data=str(cifar_dir), limit_train=100, limit_eval=40, layers=(1, 1, 1), batch_size=16, epochs=1,
                lr=0.01, momentum=0.9, device="cpu", precision="fp32", seed=3, resume_every=0)
    return TrainConfig(**{**base, **changes})


@pytest.fixture
def compiles(monkeypatch):
    """torch.compile with a backend that records each graph dynamo builds and runs it eagerly: the real dynamo
    (tracing, guards, recompiles, its recompile limit) without the minutes inductor needs on 2 cores."""
    graphs: list[tuple[int, ...]] = []
    real = torch.compile

    def backend(gm, example_inputs):
        images = [t for t in example_inputs if isinstance(t, torch.Tensor) and t.shape[1:] == (3, 32, 32)]
        graphs.append(tuple(images[0].shape) if images else ())
        return gm.forward

    monkeypatch.setattr(torch, "compile", lambda model, mode=None, dynamic=None: real(model, backend=backend, dynamic=dynamic))
    return graphs


def run_events(cfg: TrainConfig, run_dir) -> tuple[ev.RunEnd, list[ev.Event]]:
    events: list[ev.Event] = []
    end = train(cfg, run_dir, events.append)
    return end, events


def notices(events) -> list[str]:
    return [e.text for e in events if isinstance(e, ev.Notice)]


def test_compiled_runs_drop_the_partial_last_batch_and_compile_once(cifar_dir, tmp_path, compiles):
    # 100 images at batch 16 leave a last batch of 4: it would compile a second graph every run
    end, events = run_events(tiny_cfg(cifar_dir, compile=True, epochs=2), tmp_path / "c")
    assert end.status == "finished", end.message
    assert next(e for e in events if isinstance(e, ev.TrainStart)).batches_per_epoch == 6
    assert len([e for e in events if isinstance(e, ev.BatchEnd)]) == 12
    assert compiles == [(16, 3, 32, 32)]  # one graph, one shape, over both epochs
    assert any("last 4 images" in n for n in notices(events))
    # without --compile the lab's rule holds: every image, 7 batches
    _, plain = run_events(tiny_cfg(cifar_dir), tmp_path / "p")
    assert next(e for e in plain if isinstance(e, ev.TrainStart)).batches_per_epoch == 7


def test_the_mechanism_a_smaller_batch_compiles_again(compiles):
    from resnet_tui.core.model import ResNet

    model = torch.compile(ResNet((1, 1, 1)))
    for n in (16, 16, 4):
        model(torch.randn(n, 3, 32, 32))
    assert len(compiles) == 2  # the partial batch forced a second compile: what dropping it avoids


def test_a_run_whose_compile_hits_dynamos_recompile_limit_says_so_in_a_notice(cifar_dir, tmp_path, compiles, monkeypatch):
    """Dynamo past its recompile limit runs the model eagerly and only logs it. Here the run keeps its partial last
    batch (a second shape) with the limit at 1: the real dynamo gives up at the end of epoch 1, and the run says so."""
    from resnet_tui.core import train as train_mod

    monkeypatch.setattr(torch._dynamo.config, "recompile_limit", 1)
    monkeypatch.setattr(train_mod, "drop_last_batch", lambda cfg, cohort, n: (False, ""))
    end, events = run_events(tiny_cfg(cifar_dir, compile=True, epochs=2), tmp_path / "run")
    assert end.status == "finished", end.message
    assert len([e for e in events if isinstance(e, ev.BatchEnd)]) == 14 and compiles == [(16, 3, 32, 32)]
    hit = [n for n in notices(events) if "torch.compile hit dynamo's recompile_limit (1) for 'forward'" in n]
    assert len(hit) == 1 and "the model runs without compile (eager)" in hit[0], notices(events)
    assert records_notices(tmp_path / "run") == hit  # in metrics.jsonl too: a run that stopped compiling says so later


def records_notices(run_dir) -> list[str]:
    from resnet_tui.core import records

    return [n.text for n in records.read_run(run_dir).of(ev.Notice) if "recompile_limit" in n.text]


def test_each_run_in_one_process_compiles_afresh(cifar_dir, tmp_path, compiles):
    for i in range(2):
        end, _ = run_events(tiny_cfg(cifar_dir, compile=True, limit_train=32), tmp_path / str(i))
        assert end.status == "finished"
    # dynamo is reset per run: the second run compiles its own graph instead of leaning on (and counting
    # against the recompile limit of) the first run's cache
    assert len(compiles) == 2


class BreaksInBackward(torch.nn.Module):
    """A compiled model whose backward graph fails to build, like a lazily compiled backward can."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model(x)

        def fail(grad):
            raise RuntimeError("backward compile failed (injected)")

        out.register_hook(fail)
        return out


def test_a_backward_compile_failure_falls_back_to_eager_and_trains_as_eager(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kw: BreaksInBackward(model))
    cfg = tiny_cfg(cifar_dir, limit_train=96)  # 6 full batches: no batch dropped, the same batches as eager
    end, events = run_events(cfg.replace(compile=True), tmp_path / "c")
    assert end.status == "finished", end.message
    assert any(n.startswith("torch.compile failed (RuntimeError: backward compile failed") for n in notices(events))
    _, eager = run_events(cfg, tmp_path / "e")
    losses = lambda evs: [e.loss for e in evs if isinstance(e, ev.BatchEnd)]  # noqa: E731
    # the trial step left no trace: BatchNorm statistics and gradients put back, the same losses to the last bit
    assert losses(events) == losses(eager)


class RunsOutOfMemory(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected)")


def test_out_of_memory_in_the_compiled_step_is_not_a_compile_failure(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kw: RunsOutOfMemory(model))
    end, events = run_events(tiny_cfg(cifar_dir, compile=True, batch_size=32), tmp_path / "oom")
    assert end.status == "failed"
    assert "ran out of memory at batch size 32; try --batch-size 16" in end.message
    assert not any("torch.compile failed" in n for n in notices(events))  # not retried eagerly on the held memory


def test_a_cuda_run_makes_its_gpu_the_current_device(monkeypatch):
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    dev.prepare_device(torch.device("cuda", 3))
    assert chosen == [torch.device("cuda", 3)] and torch.backends.cudnn.benchmark is True
    dev.prepare_device(CPU)
    assert len(chosen) == 1


# ---------------------------------------------------------------- test-time augmentation


def test_tta_accuracy_and_nll_match_a_computation_by_hand(cifar_dir, tmp_path):
    """The run's final evaluation with --tta, `evaluate --tta` (core.operations, as the CLI and the app call it)
    and a plain numpy computation on the same 30 test images agree."""
    import numpy as np

    from resnet_tui.core import operations as ops
    from resnet_tui.core.data import load_split
    from resnet_tui.core.model import ResNet
    from resnet_tui.core.records import read_run

    run_dir = tmp_path / "run"
    end, events = run_events(tiny_cfg(cifar_dir, limit_train=160, limit_eval=30, epochs=2, lr=0.05, tta=True), run_dir)
    assert end.status == "finished", end.message
    recorded = read_run(run_dir).last_eval.result
    assert recorded.tta is True and recorded.n == 30

    test = load_split(str(cifar_dir), "test", None, 30)
    ckpt = run_dir / "checkpoints" / "cifar10_model_epoch_1.pth"
    model = ResNet((1, 1, 1))
    model.load_state_dict(torch.load(ckpt, weights_only=True))
    model.eval()
    x = test.images.float() / 255 * 2 - 1  # ToTensor + Normalize(0.5, 0.5)
    with torch.no_grad():
        p = model(x).exp().double().numpy()
        p_mirror = model(x.flip(3)).exp().double().numpy()
    labels = test.labels.numpy()
    mean = (p + p_mirror) / 2
    by_hand_accuracy = float((mean.argmax(1) == labels).mean())
    by_hand_nll = float(-np.log(mean[np.arange(len(labels)), labels]).mean())

    done = ops.evaluate_source(ops.resolve_source(str(ckpt)), lambda: test, "cpu", tta=True)
    for result in (recorded, done.result):
        assert result.accuracy == pytest.approx(by_hand_accuracy, abs=1e-9)
        assert result.nll == pytest.approx(by_hand_nll, rel=1e-4)
    plain = ops.evaluate_source(ops.resolve_source(str(ckpt)), lambda: test, "cpu").result
    assert plain.tta is False
    assert plain.accuracy == pytest.approx(float((p.argmax(1) == labels).mean()), abs=1e-9)


def test_the_fast_preset_on_cuda_aims_at_the_record_and_compiles():
    from resnet_tui.core.config import preset_values

    gpu = preset_values("fast", "cuda")
    assert (gpu["epochs"], gpu["batch_size"], gpu["lr"], gpu["compile"], gpu["tta"]) == (40, 512, 0.4, True, True)
    assert preset_values("fast", "mps")["compile"] is False  # no CUDA graphs there
    cpu = preset_values("fast", "cpu")
    assert (cpu["epochs"], cpu["batch_size"], cpu["lr"], cpu["compile"], cpu["tta"]) == (30, 64, 0.025, False, True)


# ---------------------------------------------------------------- the GPU acceptance command, on the CPU


def test_the_gpu_acceptance_command_runs_its_code_paths_on_the_cpu(cifar_dir, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, str(root / "benchmarks" / "gpu.py"), "--smoke", "--data", str(cifar_dir),
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((tmp_path / "gpu.json").read_text())
    setups = [r["setup"] for r in results["throughput"]]
    assert setups == ["the notebook's loop", "lab preset", "fast preset, no compile", "fast preset, compile",
                      "app, lab preset (headless terminal)"]
    assert all(r["images_per_sec"] > 0 for r in results["throughput"])
    compiled = results["throughput"][3]
    assert "compile" in compiled["settings"] and not any("torch.compile failed" in n for n in compiled["notices"])
    t = results["time_to_accuracy"]
    assert t["tta_recorded"] is True and 0 <= t["accuracy"] <= 1 and 0 <= t["accuracy_tta"] <= 1 and t["train_seconds"] > 0
    assert results["eval_overhead"]["eval_seconds_tta"] > 0
    table = (tmp_path / "gpu.txt").read_text()
    assert "time to accuracy" in table and "with flip TTA" in table and table in proc.stdout


def test_evaluate_tta_on_the_command_line(tiny_run, capsys):
    from cli_helpers import run_in_process  # what evaluate prints, from cli.main in this process

    run_dir, _, _ = tiny_run
    data = ["--data", str(cifar_dir_of(run_dir)), "--limit-eval", "20", "--device", "cpu"]
    plain = run_in_process(capsys, "--no-ui", "evaluate", str(run_dir), *data)
    tta = run_in_process(capsys, "--no-ui", "evaluate", str(run_dir), *data, "--tta")
    assert plain.returncode == 0 and tta.returncode == 0, tta.stderr
    assert "(20 test images, with flip TTA)" in tta.stdout and "with flip TTA" not in plain.stdout


def cifar_dir_of(run_dir):
    import tomllib

    return tomllib.loads((run_dir / "config.toml").read_text())["data"]

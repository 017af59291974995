"""Runs that go wrong end cleanly: a diverging loss, CUDA out of memory (simulated on the CPU), and hostile or broken
checkpoint files, which must never run code."""

from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_tui.core import checkpoint
from resnet_tui.core import events as ev
from resnet_tui.core import train as train_mod
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_data
from resnet_tui.core.errors import UserError
from resnet_tui.core.model import ResNet

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def splits(cifar_dir):
    return load_data(str(cifar_dir), None, limit_train=96, limit_eval=20)  # 6 batches of 16


def patched_criterion(monkeypatch, at_step: int, make_bad):
    """Replace the training loss: from optimizer step `at_step` (counted from 1) on, make_bad(loss) is returned."""
    real = train_mod.loss_fn
    steps = [0]

    def loss_fn(cfg):
        crit = real(cfg)

        def wrapped(out, y):
            steps[0] += 1
            loss = crit(out, y)
            return make_bad(loss) if steps[0] >= at_step else loss

        return wrapped

    monkeypatch.setattr(train_mod, "loss_fn", loss_fn)
    return steps


# ---------------------------------------------------------------- divergence


def test_nan_loss_stops_the_run_names_the_batch_and_keeps_the_last_finite_checkpoint(splits, tmp_path, monkeypatch, metrics_of):
    patched_criterion(monkeypatch, at_step=6 + 4, make_bad=lambda loss: loss * float("nan"))  # epoch 2, batch 4
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=3, device="cpu", lr=0.01)
    seen: list[ev.Event] = []
    end = train_mod.train(cfg, tmp_path / "run", seen.append, splits=splits)

    assert end.status == "diverged"
    assert "epoch 2, batch 4" in end.message and "lower learning rate" in end.message
    assert isinstance(seen[-1], ev.RunEnd) and seen[-1].status == "diverged"
    assert not any(isinstance(e, ev.EvalEnd) for e in seen)

    events = metrics_of(tmp_path / "run" / "metrics.jsonl")  # strict JSON: a NaN would fail here
    assert "NaN" not in (tmp_path / "run" / "metrics.jsonl").read_text()
    batches = [(e["epoch"], e["batch"], e["loss"]) for e in events if e["event"] == "batch"]
    assert batches[-1] == (2, 4, None)  # the bad batch is recorded, as null, and nothing after it
    assert all(loss is not None and math.isfinite(loss) for _, _, loss in batches[:-1])
    assert [(e, b) for e, b, _ in batches] == [(1, b) for b in range(1, 7)] + [(2, b) for b in range(1, 5)]
    assert events[-1]["event"] == "end" and events[-1]["status"] == "diverged" and "epoch 2, batch 4" in events[-1]["message"]

    ck = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["cifar10_model_epoch_0.pth"]
    state = torch.load(ck / "cifar10_model_epoch_0.pth", weights_only=True)
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    resume = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)
    assert resume["epoch0"] == 1 and all(torch.isfinite(v).all() for v in resume["model"].values() if v.is_floating_point())


class _NanGrad(torch.autograd.Function):
    """Identity forward (the loss stays finite), NaN backward: the update, not the loss, goes non-finite."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return g * float("nan")


def test_non_finite_weights_at_an_epochs_end_are_not_saved_as_a_checkpoint(splits, tmp_path, monkeypatch):
    # the last step of epoch 2 has a finite loss but NaN gradients: the weights after it are NaN
    patched_criterion(monkeypatch, at_step=12, make_bad=lambda loss: _NanGrad.apply(loss))
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=3, device="cpu", lr=0.01)
    end = train_mod.train(cfg, tmp_path / "run", lambda e: None, splits=splits)
    assert end.status == "diverged"
    assert "lower learning rate" in end.message
    for p in (tmp_path / "run" / "checkpoints").iterdir():
        state = torch.load(p, weights_only=True)
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()), f"{p.name} holds NaN weights"
    resume = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in resume["model"].values() if v.is_floating_point())


def test_huge_learning_rate_stops_with_a_diverged_status_and_nonzero_exit(cli, cifar_dir, tiny, tmp_path, metrics_of):
    run_dir = tmp_path / "run"
    proc = cli("--no-ui", "train", *tiny(cifar_dir, limit_eval=20), "--epochs", "3", "--lr", "1e6", "--run-dir", str(run_dir))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "lower learning rate than 1e+06" in proc.stdout
    events = metrics_of(run_dir / "metrics.jsonl")
    end = events[-1]
    assert end["event"] == "end" and end["status"] == "diverged"
    last = [e for e in events if e["event"] == "batch"][-1]
    assert f"epoch {last['epoch']}, batch {last['batch']}" in end["message"]
    assert not any(e["event"] == "eval" for e in events)


# ---------------------------------------------------------------- out of memory


def _oom(loss):
    raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (simulated on the CPU by the test)")


def test_out_of_memory_ends_the_run_as_failed_with_a_smaller_batch_size_hint(splits, tmp_path, monkeypatch, metrics_of):
    patched_criterion(monkeypatch, at_step=9, make_bad=_oom)  # epoch 2, batch 3
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=3, device="cpu", lr=0.01)
    seen: list[ev.Event] = []
    end = train_mod.train(cfg, tmp_path / "run", seen.append, splits=splits)
    assert end.status == "failed"
    assert "out of memory" in end.message and "--batch-size 8" in end.message
    assert seen[-1] is end
    events = metrics_of(tmp_path / "run" / "metrics.jsonl")
    assert events[-1]["event"] == "end" and events[-1]["status"] == "failed" and "--batch-size 8" in events[-1]["message"]
    # the completed epoch's checkpoint is there
    assert (tmp_path / "run" / "checkpoints" / "cifar10_model_epoch_0.pth").exists()


def test_out_of_memory_in_the_headless_cli_exits_nonzero_with_the_hint(cifar_dir, tmp_path, tiny, metrics_of):
    code = (
        "import sys, torch\n"
        "import resnet_tui.core.train as t\n"
        "real = t.loss_fn\n"
        "def loss_fn(cfg):\n"
        "    crit = real(cfg)\n"
        "    n = [0]\n"
        "    def wrapped(out, y):\n"
        "        n[0] += 1\n"
        "        if n[0] == 3:\n"
        "            raise torch.OutOfMemoryError('CUDA out of memory. Tried to allocate 20.00 GiB')\n"
        "        return crit(out, y)\n"
        "    return wrapped\n"
        "t.loss_fn = loss_fn\n"
        "from resnet_tui.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run_dir = tmp_path / "run"
    args = ["--no-ui", "train", *tiny(cifar_dir, limit_eval=20), "--epochs", "2", "--run-dir", str(run_dir)]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "--batch-size 8" in proc.stdout and "failed" in proc.stdout
    assert metrics_of(run_dir / "metrics.jsonl")[-1]["status"] == "failed"


# ---------------------------------------------------------------- hostile and broken checkpoint files


class _System:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Exec:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        import builtins

        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


def _evil_files(tmp_path: Path) -> dict[str, tuple[Path, Path]]:
    """name -> (file, marker that the file creates when loaded with a plain pickle/torch.load)."""
    out = {}
    m = tmp_path / "marker-system"
    torch.save({"fc.weight": torch.zeros(10, 1024), "payload": _System(m)}, tmp_path / "system.pth")
    out["torch.save + os.system"] = (tmp_path / "system.pth", m)
    m = tmp_path / "marker-exec"
    torch.save(_Exec(m), tmp_path / "exec.pth")
    out["torch.save + builtins.exec"] = (tmp_path / "exec.pth", m)
    m = tmp_path / "marker-legacy"
    (tmp_path / "legacy.pth").write_bytes(pickle.dumps(_System(m), protocol=2))  # a bare pickle, not torch's zip
    out["bare pickle + os.system"] = (tmp_path / "legacy.pth", m)
    return out


def test_evil_checkpoints_are_live_payloads(tmp_path):
    """The test files really do run code under an unsafe load; otherwise the refusal test below proves nothing."""
    files = _evil_files(tmp_path)
    code = "import sys, torch\nfor p in sys.argv[1:]:\n    try:\n        torch.load(p, weights_only=False)\n    except Exception:\n        pass\n"
    subprocess.run([sys.executable, "-c", code, *(str(p) for p, _ in files.values())], capture_output=True, timeout=120, cwd=tmp_path)
    for name, (path, marker) in files.items():
        assert marker.exists(), f"{name}: the payload did not run under weights_only=False"


@pytest.mark.parametrize("name", ["torch.save + os.system", "torch.save + builtins.exec", "bare pickle + os.system"])
def test_evaluate_refuses_an_evil_checkpoint_and_runs_nothing(name, cli, tmp_path):
    path, marker = _evil_files(tmp_path)[name]
    proc = cli("--no-ui", "evaluate", str(path), "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert not marker.exists(), "loading the checkpoint ran its payload"
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1
    assert repr(str(path)) in err and ("refused" in err or "not a" in err)


def test_broken_checkpoint_files_are_one_line_errors(tmp_path, tiny_run):
    run_dir, proc, _ = tiny_run
    good = (run_dir / "checkpoints" / "cifar10_model_epoch_0.pth").read_bytes()
    rng = __import__("random").Random(0)
    files = {
        "truncated.pth": good[: len(good) // 2],
        "cut-at-start.pth": good[:100],
        "random.pth": bytes(rng.getrandbits(8) for _ in range(4096)),
        "empty.pth": b"",
        "text.pth": b"weights = [0.1, 0.2]\n",
        "json.pth": json.dumps({"fc.weight": [0.0]}).encode(),
    }
    for name, blob in files.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(UserError) as e:
            checkpoint.read_state_dict(tmp_path / name)
        msg = str(e.value)
        assert "\n" not in msg and repr(str(tmp_path / name)) in msg and "not a" in msg, (name, msg)
    # not a state_dict, though a valid torch file
    torch.save({"epoch": 3}, tmp_path / "meta.pth")
    with pytest.raises(UserError, match="expected a state_dict of tensors"):
        checkpoint.read_state_dict(tmp_path / "meta.pth")


def test_truncated_checkpoint_via_the_cli(cli, tmp_path, tiny_run):
    run_dir, _, _ = tiny_run
    good = (run_dir / "checkpoints" / "cifar10_model_epoch_1.pth").read_bytes()
    bad = tmp_path / "cifar10_model_epoch_1.pth"
    bad.write_bytes(good[: len(good) * 2 // 3])
    proc = cli("--no-ui", "evaluate", str(bad), "--device", "cpu")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "truncated or corrupt" in proc.stderr


def test_checkpoint_for_other_layers_is_refused_by_the_loader(tmp_path):
    path = tmp_path / "deep.pth"
    torch.save(ResNet((3, 3, 3)).state_dict(), path)
    state = checkpoint.read_state_dict(path)
    with pytest.raises(UserError) as e:
        checkpoint.load_into(ResNet((2, 2, 2)), state, str(path), (2, 2, 2))
    assert "saved for layers 3,3,3, not 2,2,2" in str(e.value) and "unexpected keys" in str(e.value)

"""Never lose a run: SIGINT/SIGTERM/SIGHUP stop a real headless process within seconds, save, and say how to resume;
--resume continues bit-identically on the CPU, from an epoch boundary or from the middle of an epoch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
EXIT_WITHIN_S = 10.0  # from the signal to the process's exit, saving included
# One intra-op thread per run: a reference run trains alongside the run under test without oversubscribing 2 cores
# (OpenMP threads that spin on a busy core slow both runs several-fold). Runs that are compared use the same setting.
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def start(args: list[str], out_dir: Path) -> subprocess.Popen:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "stdout.txt", "w") as out, open(out_dir / "stderr.txt", "w") as err:  # the child keeps its copies
        return subprocess.Popen([sys.executable, "-m", "resnet_tui", "--no-ui", "train", *args], stdout=out, stderr=err,
                                cwd=ROOT, env=ENV)


def wait_for_batches(proc: subprocess.Popen, metrics: Path, n: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metrics.exists() and metrics.read_text().count('"event": "batch"') >= n:
            return
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before {n} batches were recorded"
        time.sleep(0.03)
    proc.kill()
    pytest.fail(f"no {n} batch lines in {metrics} after {timeout} s")


def stop_with(proc: subprocess.Popen, sig: int) -> float:
    t0 = time.monotonic()
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"the run did not exit within 120 s of {signal.Signals(sig).name}")
    return time.monotonic() - t0


def finish(proc: subprocess.Popen, out_dir: Path, timeout: float = 600) -> None:
    """Wait for a run started with start() that should finish normally."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, (out_dir / "stdout.txt").read_text()[-3000:] + (out_dir / "stderr.txt").read_text()


def run(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "resnet_tui", "--no-ui", "train", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=ENV)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    return proc


def batch_losses(events: list[dict]) -> dict[tuple[int, int], list[float]]:
    out: dict[tuple[int, int], list[float]] = {}
    for e in events:
        if e["event"] == "batch":
            out.setdefault((e["epoch"], e["batch"]), []).append(e["loss"])
    return out


def assert_same_weights(a: Path, b: Path) -> None:
    sa, sb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert list(sa) == list(sb)
    differ = [k for k in sa if not torch.equal(sa[k], sb[k])]
    assert not differ, f"{a.name}: {len(differ)} tensors differ from the uninterrupted run, first {differ[0]}"


# ---------------------------------------------------------------- signals


# SIGHUP stops only with --on-hangup stop; by default it detaches the run (tests/test_ssh_drop.py)
@pytest.mark.parametrize("sig, code, extra", [(signal.SIGTERM, 143, []), (signal.SIGHUP, 129, ["--on-hangup", "stop"])])
def test_signal_stops_saves_and_says_how_to_resume(sig, code, extra, cifar_dir, tiny, tmp_path, metrics_of):
    run_dir = tmp_path / "run"
    proc = start([*tiny(cifar_dir, limit_train=480, limit_eval=20, batch_size=8), "--epochs", "3", "--run-dir", str(run_dir), *extra], tmp_path)
    wait_for_batches(proc, run_dir / "metrics.jsonl", 2)
    seconds = stop_with(proc, sig)
    out, err = (tmp_path / "stdout.txt").read_text(), (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == code, out[-2000:] + err
    assert seconds < EXIT_WITHIN_S, f"took {seconds:.1f} s to stop after {signal.Signals(sig).name}"
    assert "Traceback" not in err
    assert f"{signal.Signals(sig).name} received" in err
    assert f"--resume {run_dir}" in out + err
    events = metrics_of(run_dir / "metrics.jsonl")
    assert events[-1]["event"] == "end" and events[-1]["status"] == "interrupted"
    assert (run_dir / "resume.pt").exists()
    state = torch.load(run_dir / "resume.pt", weights_only=True)
    last = [e for e in events if e["event"] == "batch"][-1]
    assert (state["epoch0"], state["batch0"]) in {(last["epoch"] - 1, last["batch"]), (last["epoch"], 0)}


# ---------------------------------------------------------------- resume


def test_resume_from_an_epoch_boundary_is_bit_identical(cifar_dir, tiny, tmp_path, metrics_of):
    flags = [*tiny(cifar_dir, limit_train=96, limit_eval=40, batch_size=16), "--momentum", "0.9", "--augment", "--seed", "5"]
    ref, part = tmp_path / "uninterrupted", tmp_path / "resumed"
    reference = start([*flags, "--epochs", "2", "--run-dir", str(ref)], tmp_path / "ref-logs")  # alongside, to save time
    run([*flags, "--epochs", "1", "--run-dir", str(part)])
    assert not (part / "checkpoints" / "cifar10_model_epoch_1.pth").exists()
    proc = run(["--resume", str(part), "--epochs", "2"])
    assert "resuming at epoch 2, batch 1" in proc.stdout
    finish(reference, tmp_path / "ref-logs")

    for n in (0, 1):
        assert_same_weights(part / "checkpoints" / f"cifar10_model_epoch_{n}.pth", ref / "checkpoints" / f"cifar10_model_epoch_{n}.pth")
    got, want = metrics_of(part / "metrics.jsonl"), metrics_of(ref / "metrics.jsonl")
    got_losses, want_losses = batch_losses(got), batch_losses(want)
    assert all(len(v) == 1 for v in got_losses.values()), "a batch was recorded twice"
    assert got_losses == want_losses  # every batch of both epochs, once, with the same loss
    assert [e["train_loss"] for e in got if e["event"] == "epoch"] == [e["train_loss"] for e in want if e["event"] == "epoch"]
    assert [e["accuracy"] for e in got if e["event"] == "eval"][-1] == [e["accuracy"] for e in want if e["event"] == "eval"][-1]
    starts = [e for e in got if e["event"] == "start"]
    assert [s["resumed_at"] for s in starts] == [None, {"epoch": 2, "batch": 1}]
    assert starts[1]["config"]["epochs"] == 2


def test_resume_after_sigint_mid_epoch_replays_every_batch_once_and_is_bit_identical(cifar_dir, tiny, tmp_path, metrics_of):
    # momentum, Nesterov, weight decay, augmentation and a warm-up schedule: optimizer, scheduler and data order must all resume
    flags = [*tiny(cifar_dir, limit_train=320, limit_eval=40, batch_size=8), "--epochs", "2", "--seed", "11", "--lr", "0.02",
             "--momentum", "0.9", "--nesterov", "--weight-decay", "5e-4", "--augment", "--schedule", "warmup-linear",
             "--warmup-epochs", "0.5"]
    nb = 40
    part, ref = tmp_path / "interrupted", tmp_path / "uninterrupted"
    proc = start([*flags, "--run-dir", str(part)], tmp_path / "logs")
    wait_for_batches(proc, part / "metrics.jsonl", 3)
    seconds = stop_with(proc, signal.SIGINT)
    out = (tmp_path / "logs" / "stdout.txt").read_text()
    err = (tmp_path / "logs" / "stderr.txt").read_text()
    assert proc.returncode == 130, out[-2000:] + err
    assert seconds < EXIT_WITHIN_S
    assert "Traceback" not in err and "SIGINT received" in err
    assert f"resume with: resnet-tui --no-ui train --resume {part}" in out

    first = metrics_of(part / "metrics.jsonl")
    assert first[-1]["event"] == "end" and first[-1]["status"] == "interrupted"
    stopped = [(e["epoch"], e["batch"]) for e in first if e["event"] == "batch"][-1]
    state = torch.load(part / "resume.pt", weights_only=True)
    assert stopped[0] == 1 and 3 <= stopped[1] < nb, f"the test needs a stop in the middle of epoch 1, got {stopped}"
    assert (state["epoch0"], state["batch0"]) == (0, stopped[1])  # the next run starts at the next batch
    assert not (part / "checkpoints" / "cifar10_model_epoch_0.pth").exists()

    reference = start([*flags, "--run-dir", str(ref)], tmp_path / "ref-logs")  # alongside the resumed run, to save time
    resumed = run(["--resume", str(part)])
    assert f"resuming at epoch 1, batch {stopped[1] + 1}" in resumed.stdout

    finish(reference, tmp_path / "ref-logs")

    got, want = metrics_of(part / "metrics.jsonl"), metrics_of(ref / "metrics.jsonl")
    got_losses, want_losses = batch_losses(got), batch_losses(want)
    assert sorted(got_losses) == [(e, b) for e in (1, 2) for b in range(1, nb + 1)]
    assert all(len(v) == 1 for v in got_losses.values()), "a batch was recorded twice"
    assert got_losses == want_losses
    got_batches = [e for e in got if e["event"] == "batch"]
    assert [e["images"] for e in got_batches] == [8 * (i + 1) for i in range(2 * nb)]  # the image count carries over
    assert [e["lr"] for e in got_batches] == [e["lr"] for e in want if e["event"] == "batch"]  # the schedule carries over
    # the epoch summary of the interrupted epoch covers both halves
    assert [e["train_loss"] for e in got if e["event"] == "epoch"] == [e["train_loss"] for e in want if e["event"] == "epoch"]
    for n in (0, 1):
        assert_same_weights(part / "checkpoints" / f"cifar10_model_epoch_{n}.pth", ref / "checkpoints" / f"cifar10_model_epoch_{n}.pth")
    assert [e["status"] for e in got if e["event"] == "end"] == ["interrupted", "finished"]
    assert [e for e in got if e["event"] == "eval"][-1]["confusion"] == [e for e in want if e["event"] == "eval"][-1]["confusion"]


def test_resume_can_only_change_epochs_and_device(cifar_dir, tiny, tiny_run, cli):
    run_dir, proc, _ = tiny_run
    assert proc.returncode == 0
    res = cli("--no-ui", "train", "--resume", str(run_dir), "--lr", "0.5")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--resume" in res.stderr and "--lr" in res.stderr and "--epochs" in res.stderr


def test_resume_with_more_epochs_trains_with_the_learning_rate_it_records(cifar_dir, tmp_path, monkeypatch):
    """--resume --epochs N stretches the warm-up/decay schedule; the lr each step uses is the lr metrics.jsonl records,
    from the first resumed batch on."""
    from resnet_tui.core import train as train_mod
    from resnet_tui.core.config import TrainConfig
    from resnet_tui.core.data import load_data
    from resnet_tui.core.records import read_run

    used: list[float] = []
    real_build = train_mod.build_optimizer

    def recording_build(cfg, model):
        opt = real_build(cfg, model)
        opt.register_step_pre_hook(lambda o, args, kwargs: used.append(o.param_groups[0]["lr"]))
        return opt

    monkeypatch.setattr(train_mod, "build_optimizer", recording_build)
    splits = load_data(str(cifar_dir), None, limit_train=64, limit_eval=10)  # 4 batches of 16
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=1, lr=0.1, momentum=0.9, schedule="warmup-linear",
                      warmup_epochs=0.5, device="cpu")
    run_dir = tmp_path / "run"
    assert train_mod.train(cfg, run_dir, lambda e: None, splits=splits).status == "finished"
    assert train_mod.train(cfg.replace(epochs=3), run_dir, lambda e: None, resume=True, splits=splits).status == "finished"

    recorded = [b.lr for b in read_run(run_dir).batches]
    assert len(used) == len(recorded) == 4 + 8
    assert used == pytest.approx(recorded, rel=1e-12, abs=1e-15)
    # and the stretched schedule is really used after the resume: not the 1-epoch schedule's end (lr 0)
    assert used[4] > 0

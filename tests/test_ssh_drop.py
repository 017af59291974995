"""A dropped SSH connection loses nothing and stops nothing: real processes, real signals, a real pseudo-terminal.

An SSH drop closes the pty master of the session: the kernel sends SIGHUP to the terminal's foreground
process group, and every later write to the terminal fails with EIO. A closed pipe (`| head -3`) gives
EPIPE. Either way the run goes on to its end (or, with --on-hangup stop, stops and saves).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path

import pytest

from resnet_tui.core import records

from cli_helpers import run_in_process

ROOT = Path(__file__).resolve().parents[1]


def flags(cifar_dir: Path, run_dir: Path, *extra: str, limit_train: int = 384, batch_size: int = 8, epochs: int = 2) -> list[str]:
    return ["--data", str(cifar_dir), "--limit-train", str(limit_train), "--limit-eval", "40", "--layers", "1,1,1",
            "--batch-size", str(batch_size), "--device", "cpu", "--epochs", str(epochs), "--run-dir", str(run_dir), *extra]


class PtyProcess:
    """A process whose controlling terminal is a fresh pseudo-terminal, as under an SSH session."""

    def __init__(self, args: list[str], cols: int = 100, rows: int = 30, env: dict | None = None, cwd: Path = ROOT) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            env={**os.environ, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows), **(env or {})},
        )
        os.close(slave)
        self.output = bytearray()
        self._closed = False
        self._reader = threading.Thread(target=self._drain, daemon=True)  # a full pty buffer would block the child
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def hang_up(self) -> None:
        """What an SSH drop does to the session: the terminal's master side closes."""
        if not self._closed:
            self._closed = True
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.hang_up()


def wait_for(predicate, timeout: float = 120, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def batches_recorded(run_dir: Path) -> int:
    return len(records.read_run(run_dir).batches)


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "resnet_tui", *args]


def assert_every_batch_once(run_dir: Path, epochs: int, per_epoch: int) -> None:
    run = records.read_run(run_dir)
    seen = [(b.epoch, b.batch) for b in run.batches]
    assert seen == [(e, b) for e in range(1, epochs + 1) for b in range(1, per_epoch + 1)]


def train_log_batch_lines(run_dir: Path) -> list[str]:
    return [ln for ln in (run_dir / "train.log").read_text().splitlines() if "train-loss:" in ln and "batch:" in ln]


# ---------------------------------------------------------------- headless


def test_headless_run_in_a_pty_goes_on_when_the_terminal_hangs_up(cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    p = PtyProcess(cli_args("--no-ui", "train", *flags(cifar_dir, run_dir)))
    try:
        wait_for(lambda: (run_dir / "metrics.jsonl").exists() and batches_recorded(run_dir) >= 3, what="the first batches")
        p.hang_up()
        assert p.proc.wait(180) == 0
    finally:
        p.kill()
    run = records.read_run(run_dir)
    assert run.end is not None and run.end.status == "finished"
    assert_every_batch_once(run_dir, 2, 48)
    assert len(train_log_batch_lines(run_dir)) == 96  # the lab's line for every batch, though the terminal was gone
    assert not (run_dir / "lock").exists() or records.read_run(run_dir).end is not None


def test_headless_run_in_a_pty_stops_and_saves_on_hangup_when_asked(cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    p = PtyProcess(cli_args("--no-ui", "train", *flags(cifar_dir, run_dir, "--on-hangup", "stop")))
    try:
        wait_for(lambda: (run_dir / "metrics.jsonl").exists() and batches_recorded(run_dir) >= 3, what="the first batches")
        p.hang_up()
        assert p.proc.wait(60) == 129
    finally:
        p.kill()
    run = records.read_run(run_dir)
    assert run.end is not None and run.end.status == "interrupted"
    assert (run_dir / "resume.pt").exists()
    proc = subprocess.run(cli_args("--no-ui", "train", "--resume", str(run_dir)), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert records.read_run(run_dir).end.status == "finished"
    assert_every_batch_once(run_dir, 2, 48)


def test_headless_run_piped_into_head_finishes_with_only_a_notice(cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    cmd = " ".join(cli_args("--no-ui", "train", *flags(cifar_dir, run_dir))) + f" 2> {tmp_path / 'err.txt'} | head -3"
    proc = subprocess.run(["bash", "-c", cmd + "; echo ${PIPESTATUS[0]} > " + str(tmp_path / "rc")], capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0
    assert len(proc.stdout.splitlines()) == 3
    assert (tmp_path / "rc").read_text().strip() == "0"
    err = (tmp_path / "err.txt").read_text().strip().splitlines()
    assert len(err) == 1 and err[0].startswith("[NOTICE] output stopped (Broken pipe); training goes on"), err
    assert records.read_run(run_dir).end.status == "finished"
    assert len(train_log_batch_lines(run_dir)) == 96


# ---------------------------------------------------------------- run locks


def test_a_second_trainer_on_a_live_run_is_refused_naming_the_pid(cifar_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    first = subprocess.Popen(cli_args("--no-ui", "train", *flags(cifar_dir, run_dir, epochs=3)), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        wait_for(lambda: (run_dir / "metrics.jsonl").exists() and batches_recorded(run_dir) >= 1, what="the first run")
        for args in (flags(cifar_dir, run_dir), ["--resume", str(run_dir)]):
            second = subprocess.run(cli_args("--no-ui", "train", *args), capture_output=True, text=True, timeout=120, cwd=ROOT)
            assert second.returncode == 2, second.stderr
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and f"pid {first.pid}" in lines[0] and "is being trained by" in lines[0], lines
        listed = run_in_process(capsys, "runs", "list", "--runs-dir", str(tmp_path), "--json")  # a reader: the trainer is the other process
        assert json.loads(listed.stdout)[0]["status"] == "running"
        stopped = subprocess.run(cli_args("stop", str(run_dir)), capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert stopped.returncode == 0, stopped.stderr
        assert f"pid {first.pid}" in stopped.stdout and "resume with" in stopped.stdout
        assert first.wait(30) == 143
    finally:
        if first.poll() is None:
            first.kill()
    assert records.read_run(run_dir).end.status == "interrupted"
    again = subprocess.run(cli_args("stop", str(run_dir)), capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert again.returncode == 2 and "no live process" in again.stderr


def test_sigkill_after_a_resume_interval_resumes_to_the_end_with_every_batch_once(cifar_dir, tmp_path, capsys):
    run_dir = tmp_path / "run"
    p = subprocess.Popen(cli_args("--no-ui", "train", *flags(cifar_dir, run_dir, "--resume-every", "0.5", limit_train=768)),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        # the first resume state is written after 0.5 s of training; kill somewhere after it, mid-epoch 1
        wait_for(lambda: (run_dir / "resume.pt").exists(), what="the first resume state")
        wait_for(lambda: batches_recorded(run_dir) >= 30, what="more batches")
        p.send_signal(signal.SIGKILL)
        p.wait(10)
    finally:
        if p.poll() is None:
            p.kill()
    listed = run_in_process(capsys, "runs", "list", "--runs-dir", str(tmp_path), "--json")  # a reader, in this process
    assert json.loads(listed.stdout)[0]["status"] == "crashed"
    proc = subprocess.run(cli_args("--no-ui", "train", "--resume", str(run_dir)), capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert records.read_run(run_dir).end.status == "finished"
    assert_every_batch_once(run_dir, 2, 96)


# ---------------------------------------------------------------- the app


def test_the_app_in_a_pty_finishes_its_run_detached_when_the_terminal_hangs_up_and_then_exits(cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    p = PtyProcess(cli_args("train", *flags(cifar_dir, run_dir, limit_train=768)))
    try:
        wait_for(lambda: (run_dir / "metrics.jsonl").exists() and batches_recorded(run_dir) >= 3, what="the first batches")
        p.hang_up()
        assert p.proc.wait(180) == 0  # the process is gone once its run has ended, with the run's status
    finally:
        p.kill()
    run = records.read_run(run_dir)
    assert run.end is not None and run.end.status == "finished"
    assert_every_batch_once(run_dir, 2, 96)
    assert len(train_log_batch_lines(run_dir)) == 192


def test_sigterm_to_a_detached_app_stops_and_saves_within_20_s(cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    p = PtyProcess(cli_args("train", *flags(cifar_dir, run_dir, limit_train=2000, epochs=3)))
    try:
        wait_for(lambda: (run_dir / "metrics.jsonl").exists() and batches_recorded(run_dir) >= 3, what="the first batches")
        p.hang_up()
        time.sleep(1.0)
        assert p.proc.poll() is None  # detached, still training
        sent = time.monotonic()
        p.proc.send_signal(signal.SIGTERM)
        assert p.proc.wait(20) == 143
        assert time.monotonic() - sent < 20
    finally:
        p.kill()
    run = records.read_run(run_dir)
    assert run.end is not None and run.end.status == "interrupted"
    assert (run_dir / "resume.pt").exists() and not (run_dir / "lock").read_text() == ""


def test_two_s_in_one_terminal_read_start_one_run_and_q_still_quits(tmp_path):
    """The idle app with the lab's defaults (the bundled sample, as offline): `ss` arrives in one read."""
    p = PtyProcess(cli_args(), env={"XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": str(ROOT)}, cwd=tmp_path)
    runs = tmp_path / "runs"
    try:
        wait_for(lambda: b"Start" in p.output, 60, "the app to draw")
        time.sleep(1.0)
        p.write(b"ss")
        wait_for(lambda: runs.is_dir() and any(runs.iterdir()), 60, "a run folder")
        (run_dir,) = list(runs.iterdir())
        wait_for(lambda: batches_recorded(run_dir) >= 1, 120, "the run to train")
        time.sleep(1.0)
        assert len(list(runs.iterdir())) == 1  # exactly one run started
        assert len(records.read_run(run_dir).of(records.ev.TrainStart)) == 1
        p.write(b"q")
        time.sleep(1.0)
        p.write(b"y")
        assert p.proc.wait(60) == 0
        assert records.read_run(run_dir).end.status == "interrupted"
        wait_for(lambda: b"resume with: resnet-tui --no-ui train --resume" in p.output, 5, "the resume command")
    finally:
        p.kill()


# ---------------------------------------------------------------- a full disk


def test_a_full_tmpfs_during_a_checkpoint_fails_the_run_cleanly_and_it_resumes_once_space_is_freed(cifar_dir, tmp_path, capsys):
    disk = tmp_path / "small-disk"
    disk.mkdir()
    # room for the first epoch's checkpoint and resume state (about 0.45 MB each for layers 1,1,1), not for the second's
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); tests/test_disk_full.py injects ENOSPC instead")
    try:
        run_dir = disk / "run"
        args = ["--data", str(cifar_dir), "--limit-train", "128", "--limit-eval", "40", "--layers", "1,1,1", "--batch-size", "16",
                "--device", "cpu", "--epochs", "3", "--run-dir", str(run_dir)]
        proc = subprocess.run(cli_args("--no-ui", "train", *args), capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
        end = records.read_run(run_dir).end
        assert end is not None and end.status == "failed"
        assert "the disk is full" in end.message and f"--resume {run_dir}" in end.message
        assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["cifar10_model_epoch_0.pth"]  # no torn file
        listed = run_in_process(capsys, "runs", "list", "--runs-dir", str(disk), "--json")  # a reader, in this process
        assert json.loads(listed.stdout)[0]["status"] == "failed"
        subprocess.run(["mount", "-o", "remount,size=16m", str(disk)], check=True)  # space freed
        resumed = subprocess.run(cli_args("--no-ui", "train", "--resume", str(run_dir)), capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert records.read_run(run_dir).end.status == "finished"
        assert_every_batch_once(run_dir, 3, 8)
    finally:
        subprocess.run(["umount", str(disk)], capture_output=True)

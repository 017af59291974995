"""Notifications when a run ends (resnet_tui.notify): the bell, OSC 9 and OSC 777 written to a real terminal (a pty),
never to a pipe; tmux's passthrough; the headless CLI in a real pty and in a pipe; the app."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from resnet_tui.core.config import TrainConfig
from resnet_tui.notify import DriverOutput, notification_codes, notify_terminal

ROOT = Path(__file__).resolve().parents[1]
FINISHED = "run runs/x finished: 71.5% accuracy"
CODES = f"\a\x1b]9;resnet-tui: {FINISHED}\a\x1b]777;notify;resnet-tui;{FINISHED}\a"


class Pty:
    """A pseudo-terminal: `tty` is its terminal side as a text stream; `read()` is what reached the other side."""

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        self.tty = os.fdopen(slave, "w", encoding="utf-8")

    def read(self) -> str:
        self.tty.close()
        out = b""
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the terminal side is closed and everything is read
                break
            if not chunk:
                break
            out += chunk
        os.close(self.master)
        return out.decode("utf-8", "replace")


def test_the_codes_go_to_a_terminal_and_never_to_a_pipe() -> None:
    pty = Pty()
    assert notify_terminal(pty.tty, FINISHED, env={})
    assert pty.read() == CODES
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as pipe:
        assert not notify_terminal(pipe, FINISHED, env={})
    with os.fdopen(read_end) as r:
        assert r.read() == ""


def test_control_characters_never_reach_the_terminal() -> None:
    codes = notification_codes("res;net\x07", "failed: line\nnext \x1b]0;title\x07 \x9b2J end")
    title, body = "res,net", "failed: line next ]0;title 2J end"  # ';' would move part of the title into the body
    assert codes == f"\a\x1b]9;{title}: {body}\a\x1b]777;notify;{title};{body}\a"


def test_inside_tmux_the_codes_go_through_its_passthrough_and_the_bell_to_tmux() -> None:
    pty = Pty()
    assert notify_terminal(pty.tty, FINISHED, env={"TMUX": "/tmp/tmux-1000/default,123,0"})
    assert pty.read() == (f"\a\x1bPtmux;\x1b\x1b]9;resnet-tui: {FINISHED}\a\x1b\\"
                          f"\x1bPtmux;\x1b\x1b]777;notify;resnet-tui;{FINISHED}\a\x1b\\")


def test_the_app_writes_through_its_driver_only_to_a_terminal() -> None:
    class Driver:  # what a Textual driver offers: write and flush
        def __init__(self, out) -> None:
            self.write, self.flush = out.write, out.flush

    pty = Pty()
    assert notify_terminal(DriverOutput(Driver(pty.tty), terminal=pty.tty), FINISHED, env={})
    assert pty.read() == CODES
    with open(os.devnull, "w") as devnull:  # the app's terminal is gone (output sent to /dev/null)
        assert not notify_terminal(DriverOutput(Driver(devnull), terminal=devnull), FINISHED, env={})


def run_in_pty(args: list[str]) -> tuple[int, str]:
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "resnet_tui", *args], stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT, env={**os.environ, "TERM": "xterm-256color", "TMUX": ""})
    os.close(slave)
    out = bytearray()

    def drain() -> None:  # a full pty buffer would block the child
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            if not chunk:
                return
            out.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    code = proc.wait(300)
    reader.join(10)
    os.close(master)
    return code, out.decode("utf-8", "replace")


def test_the_headless_cli_notifies_in_a_terminal_at_the_end_of_a_run(cifar_dir, tiny, tmp_path) -> None:
    code, out = run_in_pty(["--no-ui", "train", *tiny(cifar_dir, 32, 20), "--run-dir", str(tmp_path / "run"), "--notify"])
    assert code == 0, out[-3000:]
    osc9 = out[out.index("\x1b]9;"):]
    assert osc9.startswith(f"\x1b]9;resnet-tui: run {tmp_path / 'run'} finished: ") and "% accuracy\a" in osc9
    assert "\x1b]777;notify;resnet-tui;run " in out
    assert out.index("training images/s over") < out.index("\x1b]9;")  # after the run's last line


def test_a_piped_run_gets_no_escape_codes(tiny_run) -> None:
    _, proc, _ = tiny_run  # --notify is on by default; its stdout and stderr are pipes
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\a" not in proc.stdout + proc.stderr


async def test_the_app_notifies_when_its_run_finishes(cifar_dir, tmp_path, monkeypatch) -> None:
    from resnet_tui.app.app import ResNetApp

    monkeypatch.delenv("TMUX", raising=False)
    cfg = TrainConfig(data=str(cifar_dir), epochs=1, batch_size=32, layers=(1, 1, 1), limit_train=32, limit_eval=20, device="cpu")
    app = ResNetApp(mode="train", config=cfg, run_dir=tmp_path / "run", device_label="CPU")  # notify: on by default
    pty = Pty()
    app.notification_stream = pty.tty  # the app's terminal, as its driver would write to it
    async with app.run_test(size=(100, 30)):
        end = await app.wait_for_run_end(timeout=120)
        accuracy = app.train_screen.eval_result.accuracy
    assert end is not None and end.status == "finished"
    expected = f"run {tmp_path / 'run'} finished: {accuracy:.1%} accuracy"
    assert pty.read() == f"\a\x1b]9;resnet-tui: {expected}\a\x1b]777;notify;resnet-tui;{expected}\a"


async def test_the_app_with_notify_off_writes_nothing(tmp_path) -> None:
    from resnet_tui.app.app import ResNetApp

    app = ResNetApp(runs_root=tmp_path / "runs", device_label="CPU", notify=False)
    pty = Pty()
    app.notification_stream = pty.tty
    async with app.run_test(size=(100, 30)):
        app._notify_terminal(FINISHED)
    assert pty.read() == ""


def test_train_and_sweep_in_the_app_take_the_flag(monkeypatch, tmp_path) -> None:
    import resnet_tui.app
    from resnet_tui.cli import main

    opened: list[dict] = []
    monkeypatch.setattr(resnet_tui.app, "run_app", lambda **kwargs: opened.append(kwargs))
    assert main(["train", "--run-dir", str(tmp_path / "a")]) == 0
    assert main(["train", "--no-notify", "--run-dir", str(tmp_path / "b")]) == 0
    assert main(["sweep", "--lr", "0.1,0.01", "--no-notify", "--out", str(tmp_path / "sweep")]) == 0
    assert [(call["mode"], call["notify"]) for call in opened] == [("train", True), ("train", False), ("sweep", False)]

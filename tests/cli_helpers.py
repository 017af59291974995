"""Helpers shared by the engine and CLI tests (imported by name: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

FOLDER_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_folder(src: Path, dest: Path, classes=FOLDER_CLASSES, n_train: int = 4, n_test: int = 2) -> Path:
    """A small image folder made of real CIFAR-10 JPEGs copied from the shared set."""
    for split, n in (("train", n_train), ("test", n_test)):
        for cls in classes:
            (dest / split / cls).mkdir(parents=True, exist_ok=True)
            for f in sorted((src / split / cls).iterdir())[:n]:
                shutil.copy2(f, dest / split / cls / f.name)
    return dest


def assert_one_line_error(proc, *needles: str) -> str:
    """A refused command: exit 2, no traceback, one line on stderr starting with error: and naming each needle."""
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout[-2000:]}\nstderr: {proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr + proc.stdout
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def run_in_process(capsys, *args: str) -> subprocess.CompletedProcess:
    """`resnet-tui <args>` as cli.main in this process (as the entry point calls it), its output read from capsys:
    for tests about what a command prints, where the process itself is not the point (no torch import to pay again)."""
    from resnet_tui import cli

    capsys.readouterr()  # only this command's output
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["resnet-tui", *args], code, out, err)

"""A full disk in the middle of a run: the run ends with a clear message and the last good files stay readable."""

from __future__ import annotations

import errno
import json

import torch

from resnet_tui.core import runs as runs_mod
from resnet_tui.core import train as train_mod
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import load_data


def test_disk_full_while_saving_keeps_the_last_checkpoint(cifar_dir, tmp_path, monkeypatch):
    splits = load_data(str(cifar_dir), None, limit_train=64, limit_eval=20)
    real_atomic_write = runs_mod.atomic_write

    def atomic_write_until_full(path, write, mode="wb"):
        # the second epoch's checkpoint hits a full disk halfway through writing its temp file
        if path.name == "cifar10_model_epoch_1.pth":
            def half_then_fail(f):
                f.write(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device")
            return real_atomic_write(path, half_then_fail, mode)
        return real_atomic_write(path, write, mode)

    monkeypatch.setattr(runs_mod, "atomic_write", atomic_write_until_full)
    monkeypatch.setattr(train_mod, "atomic_write", atomic_write_until_full)
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=32, epochs=3, device="cpu")
    end = train_mod.train(cfg, tmp_path / "run", lambda e: None, splits=splits)

    assert end.status == "failed"
    assert "No space left on device" in end.message and "--resume" in end.message
    ck_dir = tmp_path / "run" / "checkpoints"
    assert sorted(p.name for p in ck_dir.iterdir()) == ["cifar10_model_epoch_0.pth"]  # no torn file, no temp left
    state = torch.load(ck_dir / "cifar10_model_epoch_0.pth", weights_only=True)
    assert "fc.weight" in state
    resume = torch.load(tmp_path / "run" / "resume.pt", weights_only=True)
    assert resume["epoch0"] == 1  # the resume state of the last completed epoch is intact
    last = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "end" and last["status"] == "failed"


def test_bad_data_leaves_no_run_folder_behind(tmp_path):
    import pytest

    from resnet_tui.core.errors import UserError

    cfg = TrainConfig(data=str(tmp_path / "missing"), layers=(1, 1, 1), device="cpu")
    with pytest.raises(UserError, match="--data"):
        train_mod.train(cfg, tmp_path / "run", lambda e: None)
    assert not (tmp_path / "run").exists()


def test_a_write_failure_names_its_cause_disk_or_permission(tmp_path):
    from pathlib import Path

    full = train_mod.write_failure(Path("runs/x"), OSError(errno.ENOSPC, "No space left on device"))
    assert "the disk is full (No space left on device)" in full and "free space, then --resume runs/x" in full
    denied = train_mod.write_failure(Path("runs/x"), PermissionError(errno.EACCES, "Permission denied"))
    assert "permission denied (Permission denied)" in denied and "disk" not in denied and "space" not in denied
    other = train_mod.write_failure(Path("runs/x"), OSError(errno.EIO, "Input/output error"))
    assert "Input/output error" in other and "disk is full" not in other

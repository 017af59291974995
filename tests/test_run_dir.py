"""What a headless run leaves behind and prints: the run directory (config.toml, metrics.jsonl, checkpoints),
the lab's log lines on a pipe, `evaluate --json`, atomic writes and an unwritable run directory."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

from resnet_tui.core.config import TrainConfig, read_toml, tomllib
from resnet_tui.core.runs import atomic_write, atomic_write_text

LOG = r"\[LOG \d{8}-\d{2}:\d{2}:\d{2}\]"
BATCH_LINE = re.compile(rf"^{LOG} epoch: (\d+), batch: (\d+) train-loss: (\d+\.\d{{4}})$")
# the lab's epoch line, then the machine's figures (`· cpu 198% · rss 1.03 GiB · ram 7%`; on a GPU `· gpu 97% ...`)
EPOCH_LINE = re.compile(rf"^{LOG} epoch: (\d+) train-loss: (\d+\.\d{{4}}) \(.*images/s\) · (?:gpu|cpu) .*$")
EVAL_LINE = re.compile(rf"^{LOG} eval-loss: (\d+\.\d{{4}}) accuracy: (\d+\.\d\d)% \((\d+) test images\)$")


@pytest.fixture(scope="module")
def finished(tiny_run):
    run_dir, proc, expected = tiny_run
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return run_dir, proc, expected


def test_run_dir_holds_config_metrics_checkpoints_and_nothing_torn(finished):
    run_dir, _, _ = finished
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["checkpoints", "config.toml", "lock", "metrics.jsonl", "resume.pt", "train.log"]
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["cifar10_model_epoch_0.pth", "cifar10_model_epoch_1.pth"]
    assert not [p for p in run_dir.rglob("*") if p.name.endswith(".tmp") or p.name.startswith(".")]


def test_config_toml_is_the_resolved_config_and_parses_back(finished, metrics_of):
    run_dir, _, expected = finished
    raw = tomllib.loads((run_dir / "config.toml").read_text())
    parsed = read_toml(run_dir / "config.toml")  # validated like a user's --config file
    assert raw["epochs"] == parsed["epochs"] == expected["epochs"]
    cfg = TrainConfig(**parsed)
    start = metrics_of(run_dir / "metrics.jsonl")[0]
    assert start["event"] == "start"
    assert cfg.to_dict() == start["config"]  # the file and the metrics record the same, complete config
    assert cfg.data and cfg.layers == (1, 1, 1) and cfg.limit_train == 96


def test_metrics_jsonl_is_a_complete_series(finished, metrics_of):
    run_dir, _, expected = finished
    events = metrics_of(run_dir / "metrics.jsonl")
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    start = events[0]
    nb, epochs = expected["batches_per_epoch"], expected["epochs"]
    assert start["batches_per_epoch"] == nb and start["n_train"] == 96 and start["n_test"] == 40
    assert start["param_count"] == 108_122 and start["resumed_at"] is None

    batches = [e for e in events if e["event"] == "batch"]
    assert [(b["epoch"], b["batch"]) for b in batches] == [(e, b) for e in range(1, epochs + 1) for b in range(1, nb + 1)]
    assert [b["images"] for b in batches] == [16 * (i + 1) for i in range(len(batches))]
    assert all(isinstance(b["loss"], float) and 0 < b["loss"] < 10 for b in batches)
    assert all(b["lr"] == pytest.approx(expected["lr"]) for b in batches)
    assert all(b2["time"] >= b1["time"] for b1, b2 in zip(batches, batches[1:]))

    epoch_events = [e for e in events if e["event"] == "epoch"]
    assert [e["epoch"] for e in epoch_events] == list(range(1, epochs + 1))
    for e in epoch_events:
        mean = float(np.mean([b["loss"] for b in batches if b["epoch"] == e["epoch"]]))
        assert e["train_loss"] == pytest.approx(mean, rel=1e-12)
        assert e["images_per_sec"] > 0

    checkpoints = [e for e in events if e["event"] == "checkpoint"]
    assert [(c["epoch"], c["path"]) for c in checkpoints] == [
        (n + 1, f"checkpoints/cifar10_model_epoch_{n}.pth") for n in range(epochs)
    ]

    (ev,) = [e for e in events if e["event"] == "eval"]
    assert ev["n"] == 40 and ev["epoch"] == epochs
    assert 0.0 <= ev["accuracy"] <= 1.0 and ev["nll"] > 0
    conf = np.asarray(ev["confusion"])
    assert conf.shape == (10, 10) and conf.sum() == 40 and conf.sum(1).tolist() == [4] * 10
    assert ev["accuracy"] == pytest.approx(np.trace(conf) / 40)
    assert ev["classes"][:2] == ["plane", "car"]

    end = events[-1]
    assert end["status"] == "finished" and end["images_per_sec"] > 0 and end["message"] == ""


def test_headless_pipe_output_is_the_labs_log_format(finished, metrics_of):
    run_dir, proc, expected = finished
    assert "Traceback" not in proc.stderr
    lines = proc.stdout.splitlines()
    batches = [m for m in map(BATCH_LINE.match, lines) if m]
    metric_batches = [e for e in metrics_of(run_dir / "metrics.jsonl") if e["event"] == "batch"]
    assert len(batches) == len(metric_batches) == expected["batches_per_epoch"] * expected["epochs"]
    for m, e in zip(batches, metric_batches):
        assert (int(m[1]), int(m[2])) == (e["epoch"], e["batch"])
        assert m[3] == f"{e['loss']:.4f}"

    epochs = [m for m in map(EPOCH_LINE.match, lines) if m]
    metric_epochs = [e for e in metrics_of(run_dir / "metrics.jsonl") if e["event"] == "epoch"]
    assert [(int(m[1]), m[2]) for m in epochs] == [(e["epoch"], f"{e['train_loss']:.4f}") for e in metric_epochs]

    (ev,) = [m for m in map(EVAL_LINE.match, lines) if m]
    metric_eval = [e for e in metrics_of(run_dir / "metrics.jsonl") if e["event"] == "eval"][0]
    assert ev[1] == f"{metric_eval['nll']:.4f}" and int(ev[3]) == 40
    assert float(ev[2]) == pytest.approx(metric_eval["accuracy"] * 100, abs=0.006)
    # no progress bar escape codes on a pipe
    assert "\x1b[" not in proc.stdout


def test_evaluate_json_prints_one_object_that_matches_the_runs_eval(finished, cli, cifar_dir, metrics_of):
    run_dir, _, _ = finished
    # a run directory as CHECKPOINT means its last epoch checkpoint, which the run evaluated at its end
    proc = cli("--no-ui", "evaluate", str(run_dir), "--data", str(cifar_dir), "--limit-eval", "40", "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr
    out_lines = proc.stdout.strip().splitlines()
    assert len(out_lines) == 1
    result = json.loads(out_lines[0])
    assert set(result) == {"accuracy", "nll", "n", "classes", "confusion"}
    assert result["n"] == 40 and len(result["classes"]) == 10
    assert np.asarray(result["confusion"]).sum() == 40
    run_eval = [e for e in metrics_of(run_dir / "metrics.jsonl") if e["event"] == "eval"][0]
    assert result["accuracy"] == run_eval["accuracy"]
    assert result["confusion"] == run_eval["confusion"]
    assert result["nll"] == pytest.approx(run_eval["nll"], rel=1e-6)

    # the human report has the same numbers and a confusion matrix
    proc = cli("--no-ui", "evaluate", str(run_dir / "checkpoints" / "cifar10_model_epoch_1.pth"),
               "--data", str(cifar_dir), "--limit-eval", "40", "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert f"accuracy: {run_eval['accuracy']:.2%}" in proc.stdout and "confusion matrix" in proc.stdout


# ---------------------------------------------------------------- atomic writes


def test_atomic_write_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "cifar10_model_epoch_0.pth"
    torch.save({"w": torch.arange(5)}, target)
    before = target.read_bytes()

    def torn(f):
        f.write(b"PK\x03\x04 half a zip")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, torn)
    assert target.read_bytes() == before
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.arange(5))
    assert [p.name for p in tmp_path.iterdir()] == [target.name]

    # an interrupt mid-write (Ctrl+C twice) is no different
    def interrupted(f):
        f.write("partial")
        raise KeyboardInterrupt

    text = tmp_path / "config.toml"
    atomic_write_text(text, "epochs = 1\n")
    with pytest.raises(KeyboardInterrupt):
        atomic_write(text, interrupted, mode="w")
    assert text.read_text() == "epochs = 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, "config.toml"])

    # and a successful write replaces the file whole
    atomic_write(target, lambda f: torch.save({"w": torch.ones(3)}, f))
    assert torch.equal(torch.load(target, weights_only=True)["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name, "config.toml"])


def test_run_dir_that_cannot_be_created_fails_before_training(cli, tmp_path, cifar_dir, tiny):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run_dir = blocker / "run"
    proc = cli("--no-ui", "train", *tiny(cifar_dir), "--epochs", "1", "--run-dir", str(run_dir))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1
    assert "--run-dir" in err and repr(str(run_dir)) in err and "writable folder" in err
    assert "batch:" not in proc.stdout  # nothing was trained
    assert blocker.read_text() == "not a folder"


def test_a_new_run_into_a_finished_runs_folder_is_refused_not_mixed_in(finished, cli, cifar_dir, tiny, tmp_path):
    """Training again with --run-dir of an existing run would overwrite its checkpoints and append a second series to its
    metrics.jsonl; it must be refused with a pointer to --resume, and leave the run as it was."""
    import shutil

    src, _, _ = finished
    run_dir = tmp_path / "run"
    shutil.copytree(src, run_dir)
    before = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    proc = cli("--no-ui", "train", *tiny(cifar_dir), "--epochs", "1", "--run-dir", str(run_dir))
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and len(err.splitlines()) == 1
    assert "--run-dir" in err and repr(str(run_dir)) in err and f"--resume {run_dir}" in err
    after = {p.relative_to(run_dir): p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    assert after == before


def test_run_files_get_the_usual_permissions_not_private_temp_file_ones(finished, tmp_path):
    """atomic_write goes through a temp file; the result must still be created like a plain open() would create it
    (0o666 minus the umask), as the lab's torch.save files are, so that others on a shared server can read a run."""
    import os

    mask = os.umask(0o022)
    os.umask(mask)
    expected = 0o666 & ~mask
    run_dir, _, _ = finished
    plain = (run_dir / "metrics.jsonl").stat().st_mode & 0o777  # written with open()
    assert plain == expected
    for p in [run_dir / "config.toml", run_dir / "resume.pt", *sorted((run_dir / "checkpoints").iterdir())]:
        assert p.stat().st_mode & 0o777 == expected, f"{p.name}: {oct(p.stat().st_mode & 0o777)}, not {oct(expected)}"
    target = tmp_path / "x.txt"
    atomic_write_text(target, "x")
    assert target.stat().st_mode & 0o777 == expected

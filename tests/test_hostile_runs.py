"""Hostile run folders never break the readers of metrics.jsonl: `runs list`, `runs export`, `evaluate --best` and
`train --resume` (on real folders in tmp_path). A bad line is skipped and counted, a bad folder is listed as what it
is while the other runs are still listed, or the command says what is wrong in one line (exit 2). Strings from files
(statuses, folder names) are shown as text: never read as Rich markup, no raw escape codes.
What `runs list`, `runs export` and `evaluate` print is read from the CLI in this process (cli.main, its output captured
as a pipe would take it); the one-line errors and `train --resume` run in real CLI processes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.checkpoint import save_state_dict
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.model import ResNet

from cli_helpers import assert_one_line_error, run_in_process

CFG = TrainConfig(epochs=2, batch_size=32, layers=(1, 1, 1))
CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def start() -> ev.TrainStart:
    return ev.TrainStart(CFG.to_dict(), "", "CPU", 78042, 64, 50, 2, time_utc="2026-11-28 10:00:00")


def finished_run(run_dir: Path, accuracy: float = 0.5) -> list[ev.Event]:
    """The events of a finished 2-epoch run whose epoch 1 has the lower training loss."""
    out: list[ev.Event] = [start()]
    for epoch, loss in ((1, 2.0), (2, 2.1)):
        out += [ev.BatchEnd(epoch, b, loss, 32 * (2 * epoch - 2 + b), float(b), 0.001) for b in (1, 2)]
        out += [ev.EpochEnd(epoch, loss, 1.0, 64.0), ev.CheckpointSaved(epoch, str(run_dir / "checkpoints" / f"cifar10_model_epoch_{epoch - 1}.pth"))]
    confusion = [[5 if i == j else 0 for j in range(10)] for i in range(10)]
    result = ev.EvalResult(1.5, accuracy, 50, CLASSES, confusion, [1.0] * 10, [1.0] * 10, [1.0] * 10, [], [])
    return out + [ev.EvalEnd(2, result), ev.RunEnd("finished", 64.0, 2.0, "")]


def make_run(run_dir: Path, *raw_lines: bytes | str, events: list[ev.Event] | None = None) -> Path:
    """A run folder: config.toml, and metrics.jsonl with the events of a finished run, then raw lines as given."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(CFG.to_toml())
    records.write_records(run_dir, finished_run(run_dir) if events is None else events)
    with open(run_dir / "metrics.jsonl", "ab") as f:
        f.write(b"".join(x if isinstance(x, bytes) else x.encode() for x in raw_lines))
    return run_dir


@pytest.fixture
def cli_here(capsys):
    """run_in_process(capsys, *args) as a fixture: the CLI in this process."""
    return lambda *args: run_in_process(capsys, *args)


def listed(stdout: str) -> dict[str, list[str]]:
    """The rows of the `runs list` table printed to a pipe, by run name."""
    rows = [[c.strip() for c in line.strip("│").split("│")] for line in stdout.splitlines() if line.startswith("│")]
    return {row[0]: row for row in rows}


# ---------------------------------------------------------------- runs list

HOSTILE_FOLDERS: dict[str, tuple[str, list[bytes | str], str]] = {
    # case: (folder name, raw lines appended to a finished run, the status `runs list` shows)
    "a line that is not UTF-8": ("not-utf8", [b'{"event": "notice", "text": "caf\xe9"}\n'], "finished"),
    "epoch a string": ("epoch-x", ['{"event": "epoch", "epoch": "x", "train_loss": 1.0}\n'], "finished"),
    "epoch null": ("epoch-null", ['{"event": "epoch", "epoch": null, "train_loss": 1.0}\n'], "finished"),
    "epoch NaN": ("epoch-nan", ['{"event": "epoch", "epoch": NaN, "train_loss": 1.0}\n'], "finished"),
    "epoch 1e999": ("epoch-inf", ['{"event": "epoch", "epoch": 1e999, "train_loss": 1.0}\n'], "finished"),
    "status a number": ("status-5", ['{"event": "end", "status": 5}\n'], "finished"),
    "event a list": ("event-list", ['{"event": ["x"]}\n'], "finished"),
}


@pytest.mark.parametrize("case", list(HOSTILE_FOLDERS))
def test_runs_list_skips_a_damaged_line_counts_it_and_still_lists_every_run(cli_here, case: str, tmp_path: Path) -> None:
    name, lines, status = HOSTILE_FOLDERS[case]
    make_run(tmp_path / "runs" / "good")
    make_run(tmp_path / "runs" / name, *lines)
    proc = cli_here("runs", "list", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = listed(proc.stdout)
    assert rows["good"][2] == "finished" and rows["good"][7] == "50.00%"
    assert rows[name][2] == status and rows[name][3] == "2/2"
    assert f"skipped 1 damaged line(s) of metrics.jsonl (not UTF-8, not JSON, or not a valid record) in: {name} (1)" in proc.stdout
    as_json = {r["name"]: r for r in json.loads(cli_here("runs", "list", "--runs-dir", str(tmp_path / "runs"), "--json").stdout)}
    assert as_json[name]["skipped_lines"] == 1 and as_json["good"]["skipped_lines"] == 0


def status_line(status: str) -> str:
    return json.dumps({"event": "end", "status": status, "images_per_sec": 1.0, "train_seconds": 1.0, "message": ""}) + "\n"


@pytest.mark.parametrize("folder, sweep, status", [
    ("[baseline]", None, "finished"),  # read as a style tag, it showed blank
    ("]b", "a[", "finished"),  # the name below the root, a[/]b, closed a tag that was never opened: MarkupError
    ("closing-tag", None, "[/]"),
    ("bold", None, "[bold]done"),
])
def test_folder_names_and_statuses_are_shown_as_text_not_markup(cli_here, folder: str, sweep: str | None, status: str, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    parent = root
    if sweep is not None:
        parent = root / sweep
        parent.mkdir(parents=True)
        (parent / "sweep.json").write_text('{"version": 1, "runs": []}\n')
    make_run(parent / folder, status_line(status))
    make_run(root / "good")
    proc = cli_here("runs", "list", "--runs-dir", str(root))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = listed(proc.stdout)
    name = folder if sweep is None else f"{sweep}/{folder}"
    assert rows[name][2] == status and rows["good"][2] == "finished"


def test_an_escape_sequence_in_a_status_never_reaches_the_terminal_raw(cli_here, tmp_path: Path) -> None:
    make_run(tmp_path / "runs" / "ansi", status_line("\x1b[2J\x1b[31mowned\x07"))
    proc = cli_here("runs", "list", "--runs-dir", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert listed(proc.stdout)["ansi"][2] == "\\x1b[2J\\x1b[31mowned\\x07"


def test_a_metrics_file_or_config_that_is_a_folder_is_listed_as_such_beside_the_other_runs(cli_here, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root / "good")
    (root / "metrics-folder" / "metrics.jsonl").mkdir(parents=True)
    config_folder = make_run(root / "config-folder")
    (config_folder / "config.toml").unlink()
    (config_folder / "config.toml").mkdir()
    proc = cli_here("runs", "list", "--runs-dir", str(root))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    rows = listed(proc.stdout)
    assert rows["good"][2] == "finished" and rows["metrics-folder"][2] == "unreadable"
    assert rows["config-folder"][2] == "finished" and rows["config-folder"][3] == "2/?"


# ---------------------------------------------------------------- runs export


def test_runs_export_skips_lines_that_are_not_utf8_or_not_records(cli_here, tmp_path: Path) -> None:
    run = make_run(tmp_path / "run", b"\xff\xfe\n", '{"event": ["x"]}\n', '{"event": "batch", "epoch": 1, "batch": "2"}\n')
    proc = cli_here("runs", "export", str(run), "--csv", "-", "--confusion-csv", str(tmp_path / "confusion.csv"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    kinds = [line.split(",")[0] for line in proc.stdout.splitlines()[1:]]
    assert kinds == ["batch", "batch", "epoch", "batch", "batch", "epoch", "eval"]
    assert (tmp_path / "confusion.csv").read_text().splitlines()[0] == "true\\predicted," + ",".join(CLASSES)


def test_a_confusion_matrix_that_is_not_square_is_one_line(cli, tmp_path: Path) -> None:
    events = finished_run(tmp_path / "run")[:-2]  # no eval, no end
    bad_eval = records.to_record(finished_run(tmp_path / "run")[-2])
    bad_eval["confusion"] = [row + [0] for row in bad_eval["confusion"]]  # 10 x 11
    run = make_run(tmp_path / "run", json.dumps(bad_eval) + "\n", events=events)
    proc = cli("runs", "export", str(run), "--confusion-csv", str(tmp_path / "confusion.csv"))
    assert_one_line_error(proc, "--confusion-csv", "has no evaluation", "1 damaged line(s) skipped")
    assert not (tmp_path / "confusion.csv").exists()


def test_runs_export_of_a_metrics_file_that_is_a_folder_is_one_line(cli, tmp_path: Path) -> None:
    (tmp_path / "run" / "metrics.jsonl").mkdir(parents=True)
    proc = cli("runs", "export", str(tmp_path / "run"), "--csv", str(tmp_path / "out.csv"))
    assert_one_line_error(proc, "RUN_DIR", "metrics.jsonl (a file)")


# ---------------------------------------------------------------- evaluate --best and --resume


def run_with_checkpoints(run_dir: Path, *raw_lines: bytes | str) -> Path:
    make_run(run_dir, *raw_lines)
    (run_dir / "checkpoints").mkdir()
    for epoch0 in (0, 1):
        torch.manual_seed(epoch0)
        save_state_dict(ResNet((1, 1, 1)), run_dir / "checkpoints" / f"cifar10_model_epoch_{epoch0}.pth")
    return run_dir


def test_evaluate_best_reads_past_damaged_lines(cli_here, tmp_path: Path, cifar_dir: Path) -> None:
    run = run_with_checkpoints(tmp_path / "run", b"\xff\n", '{"event": "epoch", "epoch": 1e999, "train_loss": 0.1}\n')
    proc = cli_here("--no-ui", "evaluate", str(run), "--best", "--data", str(cifar_dir), "--limit-eval", "20", "--device", "cpu", "--json")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    best = json.loads(proc.stdout)["best"]
    assert best["epoch"] == 1 and best["checkpoint"].endswith("cifar10_model_epoch_0.pth")


def test_evaluate_best_on_a_metrics_file_that_is_a_folder_is_one_line(cli, tmp_path: Path) -> None:
    run = run_with_checkpoints(tmp_path / "run")
    (run / "metrics.jsonl").unlink()
    (run / "metrics.jsonl").mkdir()
    proc = cli("--no-ui", "evaluate", str(run), "--best", "--device", "cpu")
    assert_one_line_error(proc, "--best")


def test_resume_after_a_killed_writer_starts_its_records_on_a_line_of_their_own(cli, cli_here, tmp_path: Path, cifar_dir: Path) -> None:
    from resnet_tui.core.train import train

    run = tmp_path / "run"  # the first epoch by the engine; the CLI's --resume is under test
    cfg = TrainConfig(data=str(cifar_dir), limit_train=64, limit_eval=20, layers=(1, 1, 1), batch_size=32, device="cpu", epochs=1)
    assert train(cfg, run, lambda e: None).status == "finished"
    with open(run / "metrics.jsonl", "ab") as f:
        f.write(b'{"event": "notice", "text": "\xff"}\n{"event": "batch", "epoch": 2, "ba')  # not UTF-8, then killed mid-line
    proc = cli("--no-ui", "train", "--resume", str(run), "--epochs", "2")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = (run / "metrics.jsonl").read_bytes().split(b"\n")
    assert b'{"event": "batch", "epoch": 2, "ba' in lines  # the torn line stays as it was, alone
    got = records.read_run(run)
    assert got.skipped == 2 and [s.resumed_at for s in got.of(ev.TrainStart)] == [None, (2, 1)]
    assert [(b.epoch, b.batch) for b in got.batches] == [(1, 1), (1, 2), (2, 1), (2, 2)] and got.end.status == "finished"
    proc = cli_here("runs", "list", "--runs-dir", str(tmp_path))
    assert listed(proc.stdout)["run"][2] == "finished" and "in: run (2)" in proc.stdout


def test_class_names_from_an_image_folder_are_shown_as_text_by_evaluate(cli_here, tmp_path: Path, cifar_dir: Path) -> None:
    data = tmp_path / "data"
    names = {"cat": "[bold]cat", "dog": "\x1b[31mdog"}
    for split, n in (("train", 1), ("test", 2)):
        for cls in sorted(p.name for p in (cifar_dir / split).iterdir()):
            (data / split / names.get(cls, cls)).mkdir(parents=True)
            for f in sorted((cifar_dir / split / cls).iterdir())[:n]:
                shutil.copy2(f, data / split / names.get(cls, cls) / f.name)
    save_state_dict(ResNet((1, 1, 1)), tmp_path / "model.pth")
    proc = cli_here("--no-ui", "evaluate", str(tmp_path / "model.pth"), "--data", str(data), "--device", "cpu")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "\x1b" not in proc.stdout
    per_class = {row[0]: row for row in (line.strip("│ ").split() for line in proc.stdout.splitlines()) if row}
    assert "[bold]cat" in per_class and "\\x1b[31mdog" in per_class

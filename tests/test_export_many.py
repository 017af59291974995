"""`runs export` of several runs or a whole folder: one long CSV with a row per (run, record), the run's path and its
config in every row; a run that cannot be read among many is skipped with a warning; no runs at all is one line, exit 2.
Real run folders written through core.records; the CLI is called in-process."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from resnet_tui import cli
from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.config import FIELDS, TrainConfig
from resnet_tui.core.export import METRIC_COLUMNS, metric_rows

CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_run(run_dir: Path, cfg: TrainConfig, started: str, accuracy: float | None = 0.5) -> Path:
    events: list[ev.Event] = [ev.TrainStart(cfg.to_dict(), "", "CPU", 78042, 64, 50, 2, time_utc=started)]
    for epoch in range(1, cfg.epochs + 1):
        events += [ev.BatchEnd(epoch, b, 2.0 - 0.1 * b - 0.01 * epoch, 32 * b, 0.5 * b, cfg.lr) for b in (1, 2)]
        events.append(ev.EpochEnd(epoch, 1.85, 1.0, 64.0))
    if accuracy is not None:
        confusion = [[5 if i == j else 0 for j in range(10)] for i in range(10)]
        events.append(ev.EvalEnd(cfg.epochs, ev.EvalResult(1.25, accuracy, 50, CLASSES, confusion, [1.0] * 10, [1.0] * 10, [1.0] * 10, [], [])))
        events.append(ev.RunEnd("finished", 64.0, 2.0, ""))
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(cfg.to_toml())
    records.write_records(run_dir, events)
    return run_dir


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """runs/: two runs and a sweep folder with one run (paths relative to tmp_path, the working directory)."""
    monkeypatch.chdir(tmp_path)
    write_run(Path("runs/a"), TrainConfig(epochs=2, lr=0.01, optimizer="adam"), "2026-11-28 10:00:00")
    write_run(Path("runs/b"), TrainConfig(epochs=1, layers=(1, 1, 1), skip=False), "2026-11-28 11:00:00", accuracy=None)
    Path("runs/sweep-x").mkdir()
    Path("runs/sweep-x/sweep.json").write_text('{"version": 1, "runs": []}\n')
    write_run(Path("runs/sweep-x/seed=3"), TrainConfig(epochs=1, seed=3), "2026-11-28 12:00:00", accuracy=0.75)
    return Path("runs")


def export(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(["--no-ui", "runs", "export", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def read_csv(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def expected_rows(run: str, cfg: TrainConfig) -> list[dict[str, str]]:
    """The single-run export's rows of `run` (core.export.metric_rows), as a CSV reader gives them, with the run and its config."""
    config = {f"config.{k}": ("true" if v else "false") if isinstance(v, bool) else ",".join(map(str, v)) if isinstance(v, (list, tuple))
              else "" if v is None else repr(v) if isinstance(v, float) else str(v) for k, v in cfg.to_dict().items()}
    return [{"run": run, **{c: "" if r[c] is None else repr(r[c]) if isinstance(r[c], float) else str(r[c]) for c in METRIC_COLUMNS},
             **config} for r in metric_rows(run)]


def test_a_whole_folder_is_one_long_csv_with_the_run_and_its_config(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = export(capsys, "runs/", "--csv", "all.csv")
    assert code == 0, err
    header, rows = read_csv("all.csv")
    assert header == ["run", *METRIC_COLUMNS, *(f"config.{f.name}" for f in FIELDS)]
    # every run once, newest first, each with exactly its records and its config
    assert [r["run"] for r in rows] == ["runs/sweep-x/seed=3"] * 4 + ["runs/b"] * 3 + ["runs/a"] * 7
    assert rows == (expected_rows("runs/sweep-x/seed=3", TrainConfig(epochs=1, seed=3))
                    + expected_rows("runs/b", TrainConfig(epochs=1, layers=(1, 1, 1), skip=False))
                    + expected_rows("runs/a", TrainConfig(epochs=2, lr=0.01, optimizer="adam")))
    a_eval = next(r for r in rows if r["run"] == "runs/a" and r["kind"] == "eval")
    assert (a_eval["accuracy"], a_eval["nll"], a_eval["config.optimizer"], a_eval["config.lr"]) == ("0.5", "1.25", "adam", "0.01")
    b_batch = next(r for r in rows if r["run"] == "runs/b")
    assert (b_batch["config.layers"], b_batch["config.skip"], b_batch["lr"]) == ("1,1,1", "false", "0.001")
    assert err == "14 rows of 3 runs written to all.csv\n"


def test_several_runs_in_the_order_given_and_each_once(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = export(capsys, "runs/a", "runs/sweep-x", "runs/a/", "--csv", "-")
    assert code == 0 and err == "", err
    with open("x.csv", "w") as f:
        f.write(out)
    _, rows = read_csv("x.csv")
    assert [r["run"] for r in rows] == ["runs/a"] * 7 + ["runs/sweep-x/seed=3"] * 4
    # one run directory alone keeps the single-run columns
    code, out, err = export(capsys, "runs/a", "--csv", "-")
    assert code == 0 and out.splitlines()[0] == ",".join(METRIC_COLUMNS)


def test_a_damaged_run_among_many_is_skipped_with_a_warning(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("runs/damaged/metrics.jsonl").mkdir(parents=True)  # listed as a run, unreadable
    code, out, err = export(capsys, "runs", "--csv", "all.csv")
    assert code == 0, err
    assert err.splitlines() == ["warning: skipped runs/damaged: runs/damaged/metrics.jsonl cannot be read (Is a directory)",
                                "14 rows of 3 runs written to all.csv"]
    assert {r["run"] for r in read_csv("all.csv")[1]} == {"runs/a", "runs/b", "runs/sweep-x/seed=3"}


@pytest.mark.parametrize("argv, needles", [
    (["empty", "--csv", "x.csv"], ["RUN_DIR: no runs in 'empty'"]),
    (["runs/a", "nowhere", "--csv", "x.csv"], ["RUN_DIR: got 'nowhere', expected a run directory"]),
    (["elsewhere/damaged", "elsewhere/damaged/", "--csv", "x.csv"], ["none of the 1 run(s) could be read"]),
    (["runs", "--confusion-csv", "x.csv"], ["--confusion-csv: got 3 runs, expected one run directory"]),
])
def test_no_runs_to_export_is_one_line_exit_2_and_nothing_written(root: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                                                   needles: list[str]) -> None:
    Path("empty").mkdir()
    Path("elsewhere/damaged/metrics.jsonl").mkdir(parents=True)
    code, out, err = export(capsys, *argv)
    assert code == 2 and out == "", (code, out, err)
    lines = err.splitlines()
    assert lines[-1].startswith("error: ") and all(line.startswith("warning: ") for line in lines[:-1]), err
    for needle in needles:
        assert needle in lines[-1], err
    assert not Path("x.csv").exists()

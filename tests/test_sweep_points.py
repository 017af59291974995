"""Sweeps over a cluster: `sweep --plan` writes the grid, then one `sweep --point K` process per point (as the jobs of
a Slurm array run them, on machines that share the folder) trains it; the ranked table and `runs list` read every
point's result from its own run directory. Real processes on a few hundred of the real CIFAR-10 images; the points
train one at a time (the machine has 2 cores).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet_tui import cli
from resnet_tui.core.lock import RunLock
from resnet_tui.core.runs import summarize

from cli_helpers import assert_one_line_error

NAMES = ["lr=0.01", "lr=0.02", "lr=0.05"]


def grid(cifar_dir: Path) -> list[str]:
    return ["--lr", "0.01,0.02,0.05", "--epochs", "1", "--layers", "1,1,1", "--limit-train", "128", "--limit-eval", "100",
            "--batch-size", "64", "--data", str(cifar_dir), "--device", "cpu"]


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table printed to a pipe."""
    return [[c.strip() for c in line.strip("│").split("│")] for line in text.splitlines() if line.startswith("│")]


def eval_accuracy(run_dir: Path) -> float:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in records if r["event"] == "eval"][-1]["accuracy"]


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The entry point in this process (no interpreter start-up), for the commands that only read the folder."""
    capsys.readouterr()
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_then_three_point_processes_and_the_ranked_table_reads_them_all(
        cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, cli) -> None:
    run_cli = cli  # `python -m resnet_tui` in a fresh process (conftest)
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    out = tmp_path / "shared" / "sw"
    code, stdout, err = in_process(capsys, "--no-ui", "sweep", *grid(cifar_dir), "--out", str(out), "--plan")
    assert code == 0, err
    assert stdout.startswith(f"3 points planned in {out}/sweep.json; nothing trained")
    assert "sbatch --array=0-2 " in stdout and "--point $SLURM_ARRAY_TASK_ID" in stdout
    planned = (out / "sweep.json").read_bytes()
    doc = json.loads(planned)
    assert doc["status"] == "planned"
    assert [(r["name"], r["run_dir"], r["status"], r["config"]["lr"]) for r in doc["runs"]] == [
        (n, n, "pending", lr) for n, lr in zip(NAMES, (0.01, 0.02, 0.05))]
    assert [p for p in out.iterdir() if p.is_dir()] == []  # nothing trained

    # point 0 by --point; point 1 from another working directory that reaches the folder by another path;
    # point 2 by the job array's index in the environment, without --point
    elsewhere = tmp_path / "node2"
    elsewhere.mkdir()
    procs = [run_cli("--no-ui", "sweep", "--out", str(out), "--point", "0"),
             run_cli("--no-ui", "sweep", "--out", "../shared/sw", "--point", "1", cwd=elsewhere),
             run_cli("--no-ui", "sweep", "--out", str(out), env={"SLURM_ARRAY_TASK_ID": "2"})]
    for k, (proc, name) in enumerate(zip(procs, NAMES)):
        assert proc.returncode == 0, proc.stderr
        assert f"point {k} ({k + 1}/3) of " in proc.stdout and name in proc.stdout
        assert "[LOG " in proc.stdout and "finished:" in proc.stdout  # a train run's headless output
        assert summarize(out / name).status == "finished"
        assert f"lr = {name[3:]}" in (out / name / "config.toml").read_text()
    assert (out / "sweep.json").read_bytes() == planned  # points never write the shared sweep.json

    accuracy = {n: eval_accuracy(out / n) for n in NAMES}
    code, stdout, err = in_process(capsys, "--no-ui", "sweep", "--out", str(out), "--status")
    assert code == 0, err
    rows = table_rows(stdout)
    assert [r[1] for r in rows] == sorted(NAMES, key=lambda n: (-accuracy[n], NAMES.index(n)))
    assert all(r[2] == "finished" and r[-1] == f"{accuracy[r[1]]:.2%}" for r in rows)
    assert "3 point(s): 3 finished" in stdout

    code, stdout, err = in_process(capsys, "runs", "list", "--runs-dir", str(out), "--json")
    assert code == 0, err
    assert sorted((r["name"], r["status"], r["accuracy"]) for r in json.loads(stdout)) == sorted(
        (n, "finished", accuracy[n]) for n in NAMES)

    # a finished point is not trained again, and the same sweep started on one machine keeps all three
    metrics = {n: (out / n / "metrics.jsonl").read_bytes() for n in NAMES}
    code, stdout, err = in_process(capsys, "--no-ui", "sweep", "--out", str(out), "--point", "1")
    assert code == 0 and "already finished" in stdout and "[LOG " not in stdout, err
    for flags in (grid(cifar_dir), []):  # the grid again, or none: the planned folder's own
        code, stdout, err = in_process(capsys, "--no-ui", "sweep", *flags, "--out", str(out))
        assert code == 0, err
        assert "kept from an earlier start: lr=0.01, lr=0.02, lr=0.05" in stdout and "run 1/3:" not in stdout
    assert {n: (out / n / "metrics.jsonl").read_bytes() for n in NAMES} == metrics


@pytest.fixture(scope="module")
def planned(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("planned") / "sw"
    assert cli.main(["--no-ui", "sweep", *grid(cifar_dir), "--out", str(out), "--plan"]) == 0
    return out


class Refused:
    """A refused command run through the entry point in this process, as assert_one_line_error reads it."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.returncode, self.stdout, self.stderr = code, out, err


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> Refused:
    capsys.readouterr()
    code = cli.main(["--no-ui", "sweep", *argv])
    out, err = capsys.readouterr()
    return Refused(code, out, err)


@pytest.mark.parametrize("point, env, needles", [
    ("abc", None, ["--point: got 'abc'", "from 0 to 2"]),
    ("3", None, ["--point: got 3", "from 0 to 2"]),
    ("-1", None, ["--point: got -1", "from 0 to 2"]),
    (None, "x1", ["SLURM_ARRAY_TASK_ID: got 'x1'", "from 0 to 2"]),
    (None, "5", ["SLURM_ARRAY_TASK_ID: got 5", "from 0 to 2"]),
])
def test_a_bad_point_number_is_one_line_exit_2(point: str | None, env: str | None, needles: list[str], planned: Path,
                                               capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLURM_ARRAY_TASK_ID", raising=False)
    if env is not None:
        monkeypatch.setenv("SLURM_ARRAY_TASK_ID", env)
    proc = refused(capsys, "--out", str(planned), *(["--point", point] if point is not None else []))
    assert_one_line_error(proc, *needles)
    assert [p for p in planned.iterdir() if p.is_dir()] == []


@pytest.mark.parametrize("sweep_json, needles", [
    (None, ["--out: got", "holds no sweep.json", "--plan"]),
    ('{"version": 1, "runs": [', ["sweep.json' is damaged", "expected the sweep.json that --plan writes"]),
    ('{"runs": [{"name": "a", "run_dir": "a", "values": {}, "config": {"lr": "fast"}}]}', ["damaged (run 0: lr: got 'fast'"]),
    ('{"runs": [{"name": "a", "run_dir": "../a", "values": {}, "config": {}}]}', ["damaged (run 0: run_dir '../a'"]),
])
def test_a_missing_or_damaged_sweep_json_is_one_line_exit_2(sweep_json: str | None, needles: list[str], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    out.mkdir()
    if sweep_json is not None:
        (out / "sweep.json").write_text(sweep_json)
    assert_one_line_error(refused(capsys, "--out", str(out), "--point", "0"), *needles)


def test_point_takes_its_grid_from_the_folder(planned: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert_one_line_error(refused(capsys, "--out", str(planned), "--point", "0", "--lr", "0.1"),
                          "--point: got --lr too", "only --out SWEEP_DIR")
    assert_one_line_error(refused(capsys, "--point", "0"), "--point: expected --out SWEEP_DIR")
    assert_one_line_error(refused(capsys, "--out", str(planned), "--point", "0", "--plan"), "--plan: got it with --point")


def test_a_point_being_trained_elsewhere_is_left_alone(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A second job of the same index (a requeue while the first still runs), or the whole sweep started on one
    machine while a point trains on another, is refused before it touches the live run's folder."""
    out = tmp_path / "sw"
    assert cli.main(["--no-ui", "sweep", *grid(cifar_dir), "--out", str(out), "--plan"]) == 0
    live = out / NAMES[0]
    live.mkdir()
    (live / "metrics.jsonl").write_text("")  # it has started writing; no resume state yet
    lock = RunLock(live)
    lock.acquire()
    try:
        assert_one_line_error(refused(capsys, "--out", str(out), "--point", "0"), "--point:", "is being trained by pid")
        assert_one_line_error(refused(capsys, *grid(cifar_dir), "--out", str(out)), "--out: run 'lr=0.01'", "is being trained by pid")
    finally:
        lock.release()
    assert sorted(p.name for p in live.iterdir()) == ["lock", "metrics.jsonl"]  # nothing set aside, nothing trained
    assert [p.name for p in out.iterdir() if p.is_dir()] == [NAMES[0]]

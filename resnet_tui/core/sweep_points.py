"""Sweeps spread over machines: plan the grid into sweep.json once, then train its points one by one, each in
its own process on any machine that shares the sweep folder (Slurm job arrays, or any scheduler that sets an index).

Engine code: no UI imports, no torch.

sweep.json is the plan: the grid and each point's run directory and config, written once by `--plan` (and by an
ordinary sweep started in the folder). A point never writes it: processes on several machines would race on one
file, and locks on network filesystems are not to be trusted. Each point's own run directory (its metrics.jsonl
and its end record) is the truth about how it went, and every reader (the ranked table, `runs list`, the Runs
screen) reads the results from there, so a point trained anywhere shows up.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from resnet_tui.core.config import FIELD_BY_NAME, TrainConfig, parse_field, parse_mapping
from resnet_tui.core.errors import UserError
from resnet_tui.core.lock import busy_error, holder
from resnet_tui.core.runs import SWEEP_NAME
from resnet_tui.core.sweep import (
    DONE_STATUSES, SweepPlan, SweepPoint, SweepResult, prepare_run_dir, check_data_folders, check_out_dir, read_result,
    write_sweep_json,
)

# the index of this job in a Slurm job array; other schedulers pass theirs with --point (e.g. --point $PBS_ARRAY_INDEX)
POINT_ENV = "SLURM_ARRAY_TASK_ID"
PLANNED = "planned"  # sweep.json's status when --plan wrote it


def write_plan(plan: SweepPlan) -> list[SweepResult]:
    """Write sweep.json for `plan` (status planned) and train nothing. The folder must be new, empty, or hold this
    same sweep (planning it again keeps what its points have trained). Returns each point's result so far."""
    if not plan.points:
        raise UserError("sweep: the grid is empty")
    check_out_dir(plan)
    check_data_folders(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    results = [read_result(p) for p in plan.points]
    write_sweep_json(plan, results, PLANNED, [])
    return results


def has_plan(sweep_dir: str | Path) -> bool:
    return (Path(sweep_dir) / SWEEP_NAME).is_file()


def load_plan(sweep_dir: str | Path, what: str = "--out") -> SweepPlan:
    """The plan in SWEEP_DIR/sweep.json, its run directories inside SWEEP_DIR as this process sees the folder (so
    machines that mount it elsewhere, or start in another working directory, find the same runs).
    Raises a one-line UserError naming `what` when the folder or its sweep.json is missing or damaged."""
    out = Path(sweep_dir)
    path = out / SWEEP_NAME
    expected = f"expected a sweep folder planned with `resnet-tui --no-ui sweep ... --out {out} --plan`"
    if not out.is_dir():
        raise UserError(f"{what}: got {str(out)!r}, {expected} (no such folder)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what}: got {str(out)!r}, {expected} (it holds no {SWEEP_NAME})") from None
    except (OSError, ValueError) as e:  # ValueError: not UTF-8 or not JSON
        raise UserError(f"{what}: {str(path)!r} is damaged ({_one_line(e)}); expected the {SWEEP_NAME} that --plan writes") from None
    runs = doc.get("runs") if isinstance(doc, dict) else None
    if not isinstance(runs, list) or not runs:
        raise UserError(f"{what}: {str(path)!r} is damaged (no list of runs); expected the {SWEEP_NAME} that --plan writes")
    points = [_point_of(i, run, out, f"{what}: {str(path)!r} is damaged (run {i}") for i, run in enumerate(runs)]
    if len({p.name for p in points}) != len(points):
        raise UserError(f"{what}: {str(path)!r} is damaged (two runs share a run directory); expected the {SWEEP_NAME} that --plan writes")
    axes = doc.get("axes") if isinstance(doc.get("axes"), dict) else {}
    fixed = doc.get("fixed") if isinstance(doc.get("fixed"), dict) else {}
    return SweepPlan(out, axes, fixed, points)


def _point_of(index: int, run: Any, out: Path, damaged: str) -> SweepPoint:
    """One entry of sweep.json's runs, validated the way a config file is."""
    if not isinstance(run, dict):
        raise UserError(f"{damaged} is not an object)")
    name, run_dir, values, config = run.get("name"), run.get("run_dir"), run.get("values"), run.get("config")
    if not isinstance(name, str) or not isinstance(run_dir, str) or not isinstance(values, dict) or not isinstance(config, dict):
        raise UserError(f"{damaged} lacks its name, run_dir, values or config)")
    if run_dir in ("", ".", "..") or Path(run_dir).name != run_dir or "\\" in run_dir:
        raise UserError(f"{damaged}: run_dir {run_dir!r} is not a folder name inside the sweep folder)")
    try:
        cfg = TrainConfig(**parse_mapping(config))
        chosen = {k: parse_field(k, v) for k, v in values.items() if k in FIELD_BY_NAME}
    except UserError as e:
        raise UserError(f"{damaged}: {e})") from None
    if len(chosen) != len(values):
        raise UserError(f"{damaged}: its values name a field that is not a config field)")
    return SweepPoint(index, name, chosen, cfg, out / run_dir)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:200]


def point_index(plan: SweepPlan, raw: str | None, environ: Mapping[str, str]) -> int:
    """Which point to train: --point K, else the job array's index in $SLURM_ARRAY_TASK_ID (from 0)."""
    source = "--point"
    if raw is None:
        raw, source = environ.get(POINT_ENV), POINT_ENV
    n = len(plan.points)
    allowed = f"a point number from 0 to {n - 1} (the {n} point{'s' if n != 1 else ''} of {plan.out})"
    if raw is None:
        raise UserError(f"--point: got none (and no {POINT_ENV} in the environment), expected {allowed}")
    if not re.fullmatch(r"\s*-?\d{1,18}\s*", raw):
        raise UserError(f"{source}: got {raw!r}, expected {allowed}")
    k = int(raw)
    if not 0 <= k < n:
        raise UserError(f"{source}: got {k}, expected {allowed}")
    return k


def prepare_point(point: SweepPoint) -> tuple[TrainConfig, bool]:
    """The config to train `point` with and whether it resumes, exactly as the sweep trains it. Refuses a point
    that another process is training now (a second job of the same index), before its folder is touched."""
    who = holder(point.run_dir)
    if who is not None:
        raise busy_error(point.run_dir, who, "--point")
    return point.config, prepare_run_dir(point)


def is_done(result: SweepResult) -> bool:
    """A point the sweep does not train again (the same rule as starting the same sweep again)."""
    return result.status in DONE_STATUSES


def point_results(plan: SweepPlan) -> list[SweepResult]:
    """Each point's result as its run directory says, wherever it was trained."""
    return [read_result(p) for p in plan.points]


def array_range(plan: SweepPlan) -> str:
    """The --array value of sbatch for every point of `plan`, e.g. 0-5."""
    n = len(plan.points)
    return "0" if n == 1 else f"0-{n - 1}"


__all__ = ["POINT_ENV", "PLANNED", "write_plan", "has_plan", "load_plan", "point_index", "prepare_point", "is_done",
           "point_results", "array_range"]

"""Sweeps: train every combination of a grid of config values, one run directory each.

Engine code: no UI imports. Values are validated through `config.parse_field` before anything runs.
Torch is imported only where runs are trained, so planning a sweep (the CLI, the app's form) stays fast.

Layout of a sweep folder:
    sweep.json                 the grid, each combination's run directory, status and result as this process
                               last saw them (the run directories are the truth: see sweep_points)
    <name>/                    one ordinary run directory per combination, e.g. optimizer=adam,lr=0.01/
    <name>/train.log           the run's log lines (every run writes one)
    <name>/stderr.log          (runs in subprocesses only) the subprocess's own stderr

With one device the runs train one after another in this process (the data is loaded once). With several
CUDA GPUs each run trains in its own `resnet-tui --no-ui train` subprocess on one GPU (device cuda:i), one
run per GPU at a time: subprocesses rather than threads, so that the runs do not share one GIL.
Over several machines (a Slurm job array), each point trains in its own job: resnet_tui.core.sweep_points.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TypeVar

from resnet_tui.core.config import FIELD_BY_NAME, ConfigError, TrainConfig, build_config, parse_field
from resnet_tui.core.errors import UserError
from resnet_tui.core.events import RunEnd
from resnet_tui.core.records import read_run
from resnet_tui.core.runs import CONFIG_NAME, METRICS_NAME, SWEEP_NAME, RunDir, atomic_write_text, summarize

SWEEP_VERSION = 1
STDERR_NAME = "stderr.log"  # a run subprocess's own stderr (a crash's traceback); its log lines are in train.log
# layers is itself a comma list, so its values are separated by ';' ("2,2,2;8,8,8")
SEPARATORS = {"layers": ";"}
# fields that take one value in a sweep: the device is chosen per run, and a download folder is not a grid axis
SINGLE_VALUED = ("device", "gpus", "data_dir", "on_hangup", "resume_every", "lens_every")
# a run in one of these states is not trained again when the same sweep is started again
DONE_STATUSES = ("finished", "diverged", "failed")


def separator(name: str) -> str:
    return SEPARATORS.get(name, ",")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


# ---------------------------------------------------------------- the grid


def split_values(name: str, raw: Any) -> list[Any]:
    """A flag's text split into its list items ("sgd,adam" -> ["sgd", "adam"]). Non-strings are one value."""
    if not isinstance(raw, str):
        return list(raw) if isinstance(raw, (list, tuple)) and name != "layers" else [raw]
    if name in SINGLE_VALUED:
        return [raw]
    return [part.strip() for part in raw.split(separator(name))]


def parse_axes(raw: Mapping[str, Any], source: str = "") -> dict[str, list[Any]]:
    """Validate every value of every list through config.parse_field. Keeps the given order of fields
    (it is the order of the grid: the first field varies slowest) and drops repeated values.

    Errors are UserErrors naming the flag, the value and what is allowed."""
    axes: dict[str, list[Any]] = {}
    for name, text in raw.items():
        if text is None:
            continue
        if name not in FIELD_BY_NAME:
            raise UserError(f"{name}: not a config field; known fields: {', '.join(FIELD_BY_NAME)}")
        items = split_values(name, text)
        if any(isinstance(i, str) and not i for i in items) and len(items) > 1:
            sep = separator(name)
            raise UserError(f"{flag(name)}: got {text!r}, expected values separated by {sep!r} with none empty"
                            + (" (layers are lists themselves, so a sweep separates them with ';', like 2,2,2;8,8,8)" if name == "layers" and "," in str(text) else ""))
        values: list[Any] = []
        for item in items:
            try:
                v = parse_field(name, item, source)
            except ConfigError as e:
                if name == "layers" and isinstance(text, str) and ";" not in text and text.count(",") > 2:
                    raise UserError(f"--layers: got {text!r}, expected layer lists separated by ';', like 2,2,2;8,8,8") from None
                if FIELD_BY_NAME[name].flag_bool:
                    raise UserError(f"{flag(name)}: got {item!r}, expected on or off (or true, false), like on,off") from None
                raise UserError(e.as_flag()) from None
            if v not in values:
                values.append(v)
        axes[name] = values
    return axes


def value_text(name: str, value: Any) -> str:
    """A value as it appears in a run's name: on/off for booleans, 2-2-2 for layers, 0.01 for numbers."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "layers":
        return "-".join(str(n) for n in value)
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "all"
    text = str(value)
    if name == "data" and ("/" in text or os.sep in text):
        text = Path(text).name or text
    return text


_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+-]")


def point_name(values: Mapping[str, Any]) -> str:
    """The run directory name of one combination, e.g. optimizer=adam,lr=0.01."""
    if not values:
        return "run"
    name = ",".join(f"{k}={value_text(k, v)}" for k, v in values.items())
    return _UNSAFE.sub("_", name)


def json_value(v: Any) -> Any:
    return list(v) if isinstance(v, tuple) else v


@dataclass
class SweepPoint:
    """One combination of the grid."""

    index: int  # from 0, in grid order
    name: str
    values: dict[str, Any]  # the varying fields' values
    config: TrainConfig
    run_dir: Path

    def to_json(self, sweep_dir: Path) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "run_dir": _relative(self.run_dir, sweep_dir),
                "values": {k: json_value(v) for k, v in self.values.items()}, "config": self.config.to_dict()}


@dataclass
class SweepPlan:
    out: Path
    axes: dict[str, list[Any]]  # fields with two or more values, in grid order
    fixed: dict[str, Any]  # fields given one value (they apply to every run)
    points: list[SweepPoint]

    @property
    def device(self) -> str:
        return self.points[0].config.device if self.points else "auto"


def default_sweep_dir(runs_root: str | Path = "runs") -> Path:
    base = Path(runs_root) / ("sweep-" + datetime.now().strftime("%Y%m%d-%H%M%S"))
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def plan_sweep(
    out: str | Path,
    values: Mapping[str, Sequence[Any]],
    file_values: Mapping[str, Any] | None = None,
    device_type: str = "cpu",
) -> SweepPlan:
    """The cartesian product of `values` (already parsed, see parse_axes), in their order: the first field
    varies slowest. Fields with one value are fixed for every run. `file_values` is a parsed --config file."""
    out = Path(out)
    axes = {k: list(v) for k, v in values.items() if len(v) > 1}
    fixed = {k: v[0] for k, v in values.items() if len(v) == 1}
    for k in axes:
        if k in SINGLE_VALUED:
            raise UserError(f"{flag(k)}: got {len(axes[k])} values, expected one (a sweep picks the device of each run itself)"
                            if k == "device" else f"{flag(k)}: got {len(axes[k])} values, expected one")
    gpus = fixed.get("gpus", (file_values or {}).get("gpus", 1))
    if gpus != 1:
        raise UserError(f"--gpus: got {gpus!r}, expected 1 in a sweep (it trains one run per GPU at a time; for one run "
                        "on several GPUs, train it with resnet-tui --no-ui train --gpus N)")
    points: list[SweepPoint] = []
    names: set[str] = set()
    for index, combo in enumerate(itertools.product(*axes.values())):
        chosen = dict(zip(axes, combo))
        cfg = build_config(file_values, {**fixed, **chosen}, device_type)
        name = point_name(chosen)
        if name in names:  # two values that print alike (e.g. two data folders with the same name)
            n = 2
            while f"{name}-{n}" in names:
                n += 1
            name = f"{name}-{n}"
        names.add(name)
        points.append(SweepPoint(index, name, chosen, cfg, out / name))
    return SweepPlan(out, axes, fixed, points)


# ---------------------------------------------------------------- devices and scheduling


def plan_slots(device: str, cuda_count: int) -> list[str]:
    """Where runs train, one run per entry at a time. Several entries (cuda:0, cuda:1, ...) only when the
    device is auto or cuda and several CUDA GPUs are visible; otherwise the one device, runs one after another."""
    if device in ("auto", "cuda") and cuda_count > 1:
        return [f"cuda:{i}" for i in range(cuda_count)]
    return [device]


class Handle(Protocol):
    def poll(self) -> int | None: ...

    def stop(self) -> None: ...


J = TypeVar("J")


def run_scheduled(
    jobs: Sequence[J],
    slots: Sequence[str],
    start: Callable[[J, str], Handle],
    on_done: Callable[[J, str, int], None],
    should_stop: Callable[[], bool] = lambda: False,
    poll_seconds: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> list[J]:
    """Run `jobs` in order, at most one per slot at a time; a freed slot takes the next job.

    `start(job, slot)` launches a job and returns a handle; `on_done(job, slot, code)` is called when its
    poll() returns an exit code. When should_stop() turns true, running jobs get stop() once, no new job
    starts, and the jobs never started are returned."""
    pending: deque[J] = deque(jobs)
    running: dict[str, tuple[J, Handle]] = {}
    stopping = False
    try:
        while running or (pending and not stopping):
            if not stopping and should_stop():
                stopping = True
                for _, handle in running.values():
                    handle.stop()
            if not stopping:
                for slot in slots:
                    if slot not in running and pending:
                        job = pending.popleft()
                        running[slot] = (job, start(job, slot))
            for slot, (job, handle) in list(running.items()):
                code = handle.poll()
                if code is not None:
                    del running[slot]
                    on_done(job, slot, code)
            if running:
                sleep(poll_seconds)
    except BaseException:  # an abort (a second Ctrl+C) or a bug here: leave no job running behind
        for _, handle in running.values():
            getattr(handle, "kill", handle.stop)()
        raise
    return list(pending)


class ProcessHandle:
    """A `resnet-tui --no-ui train` subprocess. stop() sends it one SIGTERM: it stops after the batch and saves."""

    def __init__(self, args: list[str], stderr_path: Path, env: Mapping[str, str] | None = None):
        stderr_path.parent.mkdir(parents=True, exist_ok=True)
        self.stderr = open(stderr_path, "ab")  # its log lines go to RUN/train.log (the trainer writes it)
        # A session of its own: the terminal's Ctrl+C reaches only the sweep, which forwards one SIGTERM;
        # a second signal would make the child abort without saving.
        kwargs: dict[str, Any] = {"start_new_session": True} if os.name == "posix" else {}
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=self.stderr, stdin=subprocess.DEVNULL,
                                     env=dict(env) if env is not None else None, **kwargs)
        self.stopped = False

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None and not self.stderr.closed:
            self.stderr.close()
        return code

    def stop(self) -> None:
        if self.stopped or self.proc.poll() is not None:
            return
        self.stopped = True
        if os.name == "posix":
            self.proc.send_signal(signal.SIGTERM)
        else:  # pragma: no cover
            self.proc.terminate()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if not self.stderr.closed:
            self.stderr.close()


def train_command(run_dir: Path, device: str, resume: bool) -> list[str]:
    """The subprocess that trains one run: its config is the run directory's config.toml, written beforehand."""
    cmd = [sys.executable, "-m", "resnet_tui", "--no-ui", "train"]
    if resume:
        return cmd + ["--resume", str(run_dir), "--device", device]
    return cmd + ["--config", str(run_dir / CONFIG_NAME), "--run-dir", str(run_dir), "--device", device]


# ---------------------------------------------------------------- events and results


@dataclass
class SweepResult:
    index: int
    name: str
    run_dir: Path
    values: dict[str, Any]
    status: str = "pending"  # pending | running | finished | interrupted | diverged | failed | skipped
    device: str = ""
    accuracy: float | None = None
    nll: float | None = None
    train_loss: float | None = None  # the last epoch's
    epochs_done: int = 0
    message: str = ""

    def to_json(self, sweep_dir: Path) -> dict[str, Any]:
        return {"index": self.index, "name": self.name, "run_dir": _relative(self.run_dir, sweep_dir),
                "values": {k: json_value(v) for k, v in self.values.items()}, "status": self.status, "device": self.device,
                "accuracy": _finite(self.accuracy), "nll": _finite(self.nll), "train_loss": _finite(self.train_loss),
                "epochs_done": self.epochs_done, "message": self.message}


@dataclass
class SweepStarted:
    plan: SweepPlan
    slots: list[str]
    processes: bool  # runs train in subprocesses (their per-batch events are in each run's metrics.jsonl)
    skipped: list[int] = field(default_factory=list)  # indices done by an earlier start of the same sweep


@dataclass
class RunStarted:
    index: int
    name: str
    run_dir: Path
    device: str
    resume: bool


@dataclass
class RunEvent:
    """A training event (resnet_tui.core.events) of the run `index`; in-process runs only."""

    index: int
    event: Any


@dataclass
class RunFinished:
    result: SweepResult


@dataclass
class SweepFinished:
    results: list[SweepResult]
    status: str  # finished | interrupted

    def ranked(self) -> list[SweepResult]:
        return rank(self.results)


SweepEvent = SweepStarted | RunStarted | RunEvent | RunFinished | SweepFinished


def rank(results: Iterable[SweepResult]) -> list[SweepResult]:
    """Best test accuracy first; runs without an accuracy last, in grid order."""
    def key(r: SweepResult) -> tuple[int, float, int]:
        ok = r.accuracy is not None and math.isfinite(r.accuracy)
        return (0 if ok else 1, -(r.accuracy or 0.0) if ok else 0.0, r.index)

    return sorted(results, key=key)


def read_result(point: SweepPoint, device: str = "") -> SweepResult:
    """What a run directory says about how its run went."""
    r = SweepResult(point.index, point.name, point.run_dir, dict(point.values), device=device)
    if not (point.run_dir / METRICS_NAME).exists():
        r.status = "pending"
        return r
    records = read_run(point.run_dir)
    s = summarize(point.run_dir, records)
    # running: another process trains it now (a --point job); a crashed run counts as interrupted (it resumes)
    r.status = s.status if s.status in ("finished", "interrupted", "diverged", "failed", "running") else "interrupted"
    r.epochs_done = s.epochs_done
    last_eval, epochs, ends = records.last_eval, records.epochs, records.of(RunEnd)
    if last_eval is not None:
        r.accuracy, r.nll = last_eval.result.accuracy, _finite(last_eval.result.nll)
    if epochs:
        r.train_loss = _finite(epochs[-1].train_loss)
    if ends:
        r.message = ends[-1].message
    return r


# ---------------------------------------------------------------- sweep.json


def _relative(path: Path, base: Path) -> str:
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _comparable(plan_runs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(r["name"], {k: v for k, v in r["config"].items() if k != "device"}) for r in plan_runs]


def write_sweep_json(plan: SweepPlan, results: list[SweepResult], status: str, slots: Sequence[str]) -> None:
    doc = {
        "version": SWEEP_VERSION,
        "updated_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "status": status,
        "axes": {k: [json_value(v) for v in vs] for k, vs in plan.axes.items()},
        "fixed": {k: json_value(v) for k, v in plan.fixed.items()},
        "slots": list(slots),
        "runs": [{**p.to_json(plan.out), **{k: v for k, v in r.to_json(plan.out).items() if k not in ("index", "name", "run_dir", "values")}}
                 for p, r in zip(plan.points, results)],
    }
    atomic_write_text(plan.out / SWEEP_NAME, json.dumps(doc, indent=2) + "\n")


def read_sweep_json(sweep_dir: str | Path) -> dict[str, Any]:
    path = Path(sweep_dir) / SWEEP_NAME
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"SWEEP_DIR: got {str(sweep_dir)!r}, expected a sweep folder with {SWEEP_NAME}") from None
    except (OSError, ValueError) as e:
        raise UserError(f"SWEEP_DIR: {str(path)!r} is not readable ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list):
        raise UserError(f"SWEEP_DIR: {str(path)!r} is not a sweep file (no runs list)")
    return doc


def check_out_dir(plan: SweepPlan) -> None:
    """The sweep folder must be new, empty, or hold this same sweep (then its finished runs are kept)."""
    out = plan.out
    if out.exists() and not out.is_dir():
        raise UserError(f"--out: got {str(out)!r}, expected a folder (it is a file)")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not (out / SWEEP_NAME).exists():
        raise UserError(f"--out: got {str(out)!r}, a folder that is not empty and holds no {SWEEP_NAME}; choose a new folder")
    doc = read_sweep_json(out)
    ours = _comparable([p.to_json(out) for p in plan.points])
    try:
        theirs = _comparable(doc["runs"])
    except (KeyError, TypeError, AttributeError):
        theirs = []
    if ours != theirs:
        raise UserError(f"--out: got {str(out)!r}, which holds a different sweep ({SWEEP_NAME}); choose a new folder, "
                        "or repeat that sweep's own command to continue it")


# ---------------------------------------------------------------- running


def run_sweep(
    plan: SweepPlan,
    on_event: Callable[[SweepEvent], None] = lambda e: None,
    should_stop: Callable[[], bool] = lambda: False,
    slots: Sequence[str] | None = None,
    processes: bool | None = None,
    poll_seconds: float = 0.5,
) -> SweepFinished:
    """Train every point of `plan` not done yet. `slots` default: plan_slots(device, visible CUDA GPUs).
    `processes` default: subprocesses when there are several slots, else in this process."""
    if not plan.points:
        raise UserError("sweep: the grid is empty")
    check_out_dir(plan)
    if slots is None:
        import torch

        slots = plan_slots(plan.device, torch.cuda.device_count() if torch.cuda.is_available() else 0)
    slots = list(slots)
    if processes is None:
        processes = len(slots) > 1
    check_data_folders(plan)
    plan.out.mkdir(parents=True, exist_ok=True)

    results = [read_result(p) for p in plan.points]
    check_not_running(plan, results)
    todo = [p for p, r in zip(plan.points, results) if r.status not in DONE_STATUSES]
    skipped = [p.index for p in plan.points if p not in todo]  # done in an earlier start of this sweep: kept as recorded
    write_sweep_json(plan, results, "running", slots)
    on_event(SweepStarted(plan, slots, processes, skipped))

    def finish(point: SweepPoint, device: str, message: str = "") -> None:
        r = read_result(point, device)
        if r.status == "pending":  # never wrote a metrics line
            r.status = "failed"
        if message and not r.message:
            r.message = message
        results[point.index] = r
        write_sweep_json(plan, results, "running", slots)
        on_event(RunFinished(r))

    try:
        interrupted = _run_points(plan, todo, slots, processes, results, on_event, should_stop, finish, poll_seconds)
    except BaseException:  # an abort or an error: sweep.json says so, then it goes on up
        write_sweep_json(plan, results, "failed", slots)
        raise
    status = "interrupted" if interrupted and any(r.status not in DONE_STATUSES for r in results) else "finished"
    write_sweep_json(plan, results, status, slots)
    end = SweepFinished(results, status)
    on_event(end)
    return end


def check_data_folders(plan: SweepPlan) -> None:
    """A missing image folder fails now, not after the runs before it."""
    folders = {p.config.data for p in plan.points if p.config.data not in ("auto", "cifar10", "sample")}
    if folders:
        from resnet_tui.core.data import check_image_folder

        for folder in sorted(folders):
            check_image_folder(folder)


def check_not_running(plan: SweepPlan, results: Sequence[SweepResult]) -> None:
    """A run of this sweep that another process trains now (a `--point` job on another machine sharing the folder)
    is refused before anything starts: starting it here would set its metrics aside under the live run."""
    busy = [p for p, r in zip(plan.points, results) if r.status == "running"]
    if busy:
        from resnet_tui.core.lock import holder

        who = holder(busy[0].run_dir)
        by = who.describe() if who is not None else "another process"
        raise UserError(f"--out: run {busy[0].name!r} of {str(plan.out)!r} is being trained by {by}"
                        + (f" (and {len(busy) - 1} more run(s))" if len(busy) > 1 else "")
                        + "; wait for it to end, then start the sweep again (finished runs are kept)")


def _run_points(
    plan: SweepPlan,
    todo: list[SweepPoint],
    slots: list[str],
    processes: bool,
    results: list[SweepResult],
    on_event: Callable[[SweepEvent], None],
    should_stop: Callable[[], bool],
    finish: Callable[[SweepPoint, str, str], None],
    poll_seconds: float,
) -> bool:
    """Train the points; True when stopped before all were done."""
    if processes:
        def start(point: SweepPoint, slot: str) -> Handle:
            resume = prepare_run_dir(point)
            cfg = point.config.replace(device=slot)
            atomic_write_text(point.run_dir / CONFIG_NAME, cfg.to_toml())
            results[point.index].status, results[point.index].device = "running", slot
            write_sweep_json(plan, results, "running", slots)
            on_event(RunStarted(point.index, point.name, point.run_dir, slot, resume))
            return ProcessHandle(train_command(point.run_dir, slot, resume), point.run_dir / STDERR_NAME)

        def done(point: SweepPoint, slot: str, code: int) -> None:
            finish(point, slot, "" if code in (0, 1, 129, 130, 143) else f"exit code {code}; see {point.run_dir / STDERR_NAME}: {_last_line(point.run_dir / STDERR_NAME)}")

        not_started = run_scheduled(todo, slots, start, done, should_stop, poll_seconds)
        return bool(not_started) or should_stop()
    return _run_in_process(plan, todo, slots[0], results, on_event, should_stop, finish, slots)


def _run_in_process(
    plan: SweepPlan,
    todo: list[SweepPoint],
    device: str,
    results: list[SweepResult],
    on_event: Callable[[SweepEvent], None],
    should_stop: Callable[[], bool],
    finish: Callable[[SweepPoint, str, str], None],
    slots: Sequence[str],
) -> bool:
    """One run after another; the data of equal (data, limits) is loaded once. Returns True when stopped."""
    from resnet_tui.core.data import load_data
    from resnet_tui.core.train import train

    splits: dict[tuple[Any, ...], Any] = {}
    for point in todo:
        if should_stop():
            return True
        cfg = point.config.replace(device=device)
        resume = prepare_run_dir(point)
        key = (cfg.data, cfg.data_dir, cfg.limit_train, cfg.limit_eval)
        if key not in splits:
            splits[key] = load_data(*key)
        results[point.index].status, results[point.index].device = "running", device
        write_sweep_json(plan, results, "running", slots)
        on_event(RunStarted(point.index, point.name, point.run_dir, device, resume))
        end = train(cfg, point.run_dir, lambda e, i=point.index: on_event(RunEvent(i, e)), should_stop, resume=resume, splits=splits[key])
        finish(point, device, "")
        if end.status == "interrupted":
            return True
    return False


def prepare_run_dir(point: SweepPoint) -> bool:
    """Whether the run resumes: it stopped mid-way in an earlier start of this sweep and left its resume state.
    A run that stopped before its first epoch's end starts over; its old metrics are set aside, not mixed in."""
    run = RunDir(point.run_dir)
    if run.resume_path.exists() and run.config_path.exists():
        return True
    if run.metrics_path.exists():
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        run.metrics_path.rename(run.path / f"metrics.abandoned-{stamp}.jsonl")
    return False


def _last_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


__all__ = [
    "SweepPlan", "SweepPoint", "SweepResult", "SweepStarted", "RunStarted", "RunEvent", "RunFinished", "SweepFinished",
    "parse_axes", "plan_sweep", "plan_slots", "run_scheduled", "run_sweep", "rank", "read_sweep_json", "default_sweep_dir",
    "point_name", "split_values", "separator", "SEPARATORS", "SINGLE_VALUED",
]

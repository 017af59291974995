"""Run directories: config.toml, metrics.jsonl, checkpoints/, resume state. Written atomically where it matters.

Layout of a run directory:
    config.toml                       the resolved config
    metrics.jsonl                     one JSON object per line, each with an "event" key (a stable, public format)
    checkpoints/cifar10_model_epoch_{N}.pth   plain state_dicts, N from 0 as in the lab
    resume.pt                         model, optimizer, scheduler and position, for --resume
"""

from __future__ import annotations

import difflib
import io
import math
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from resnet_tui.core.errors import UserError
from resnet_tui.core.lock import holder
from resnet_tui.core.records import METRICS_NAME, RunRecords, read_run

CONFIG_NAME = "config.toml"
RESUME_NAME = "resume.pt"
LOG_NAME = "train.log"  # the lab's log lines of every run, whatever front end started it
CHECKPOINT_DIR = "checkpoints"
SWEEP_NAME = "sweep.json"  # a sweep folder (resnet_tui.core.sweep): one run directory per combination


def checkpoint_name(epoch0: int) -> str:
    return f"cifar10_model_epoch_{epoch0}.pth"


def default_run_dir(runs_root: str | Path = "runs") -> Path:
    base = Path(runs_root) / datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():  # two runs started in the same second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask sets it, racing other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through a temp file in the same folder, fsync, then rename: a crash or a full disk
    leaves either the old file or the new one, never a torn one.

    `write` fills an in-memory buffer first (the files are small: a checkpoint is under 2 MB), so a full
    disk or a permission error surfaces as the OSError it is, never as a serializer's RuntimeError
    (torch.save reports a short write as "enforce fail ... unexpected pos")."""
    buffer: Any = io.BytesIO() if "b" in mode else io.StringIO()
    write(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0o600; the file gets the mode a plain open() would give it
        with os.fdopen(fd, mode) as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), mode="w")


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_NAME

    @property
    def resume_path(self) -> Path:
        return self.path / RESUME_NAME

    @property
    def log_path(self) -> Path:
        return self.path / LOG_NAME

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT_DIR

    def checkpoint_path(self, epoch0: int) -> Path:
        return self.checkpoints / checkpoint_name(epoch0)

    def prepare(self) -> None:
        """Create the folders and prove they are writable, before any training time is spent."""
        try:
            self.checkpoints.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as e:
            raise UserError(f"--run-dir: got {str(self.path)!r}, expected a writable folder ({e.strerror or e})") from None

    def list_checkpoints(self) -> list[tuple[int, Path]]:
        """(epoch counted from 0, path), in epoch order."""
        out = []
        if self.checkpoints.is_dir():
            for p in self.checkpoints.glob("cifar10_model_epoch_*.pth"):
                try:
                    out.append((int(p.stem.rsplit("_", 1)[1]), p))
                except ValueError:
                    continue
        return sorted(out)


@dataclass
class RunSummary:
    """What the Runs screen and `runs list` show for one run directory."""

    path: Path
    started: str = ""
    optimizer: str = ""
    lr: float | None = None
    epochs: int | None = None
    epochs_done: int = 0
    last_loss: float | None = None
    accuracy: float | None = None
    # running (its lock is held) | finished | interrupted | diverged | failed | crashed (no end record and nobody
    # holds its lock: killed, out of memory, power loss) | unreadable | unknown
    status: str = "unknown"
    resumable: bool = False  # an interrupted, crashed or failed (e.g. full disk) run with a resume state
    config: dict[str, Any] = field(default_factory=dict)
    skipped: int = 0  # lines of metrics.jsonl skipped as damaged (records.RunRecords.skipped)
    nll: float | None = None  # the last evaluation's NLL (eval loss)
    train_loss: float | None = None  # the last epoch's mean training loss
    images_per_sec: float | None = None  # the end record's training throughput, else the last epoch's


def _read_config(path: Path) -> dict[str, Any]:
    from resnet_tui.core.config import tomllib

    try:
        return tomllib.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):  # missing, a folder, not UTF-8, not TOML
        return {}


def finite_number(x: Any) -> float | None:
    """x as a float if it is a finite number (not a bool), else None: what a summary or a filter reads comes from files."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    try:
        return float(x) if math.isfinite(x) else None
    except OverflowError:  # an integer too large for a float
        return None


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None


def summarize(path: Path, records: RunRecords | None = None) -> RunSummary:
    """One run directory as the run lists show it. Never raises on what the folder holds. records: read_run(path), if read already."""
    rec = read_run(path) if records is None else records
    s = RunSummary(path=path, config=_read_config(path), skipped=rec.skipped)
    s.optimizer = s.config["optimizer"] if isinstance(s.config.get("optimizer"), str) else ""
    s.lr = finite_number(s.config.get("lr"))
    epochs = s.config.get("epochs")
    s.epochs = epochs if isinstance(epochs, int) and not isinstance(epochs, bool) else None
    s.epochs_done = max((e.epoch for e in rec.epochs), default=0)
    batches, last_eval = rec.batches, rec.last_eval
    s.last_loss = finite_number(batches[-1].loss) if batches else None
    s.accuracy = last_eval.result.accuracy if last_eval is not None else None
    s.nll = finite_number(last_eval.result.nll) if last_eval is not None else None
    s.train_loss = finite_number(rec.epochs[-1].train_loss) if rec.epochs else None
    s.images_per_sec = _throughput(rec)
    s.started = rec.start.time_utc if rec.start is not None else ""
    s.status = _status(path, rec)
    s.resumable = s.status in ("interrupted", "crashed", "failed") and (path / RESUME_NAME).is_file()
    if not s.started:
        mtime = _mtime(path)
        s.started = datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M") if mtime is not None else ""
    return s


def _throughput(rec: RunRecords) -> float | None:
    """Training images/s: the end record's (over the whole run), else the last epoch's (a run still training)."""
    for x in ([rec.end.images_per_sec] if rec.end is not None else []) + [e.images_per_sec for e in reversed(rec.epochs)]:
        if finite_number(x) and x > 0:  # 0: a run that ended before it trained a batch
            return x
    return None


def _status(path: Path, rec: RunRecords) -> str:
    if rec.missing:
        return "unknown"
    if rec.error:
        return "unreadable"
    if holder(path) is not None:
        return "running"  # also a resumed run whose earlier part ended
    return rec.end.status if rec.end is not None else "crashed"


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir()]
    except OSError:  # unreadable: nothing to list there
        return []


def list_runs(runs_root: str | Path = "runs", include_sweeps: bool = False) -> list[RunSummary]:
    """The run directories in `runs_root`, newest start first (sort_runs). include_sweeps: also the runs inside
    sweep folders (those with sweep.json) one level down."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    found = [p for p in _subfolders(root) if (p / METRICS_NAME).exists()]
    if include_sweeps:
        for sweep in (p for p in _subfolders(root) if (p / SWEEP_NAME).exists()):
            found += [p for p in _subfolders(sweep) if (p / METRICS_NAME).exists()]
    return sort_runs([summarize(p) for p in found])


# ---------------------------------------------------------------- sorting (runs list --sort, the Runs screen's columns)


def _text_or_none(x: Any) -> str | None:
    return x if isinstance(x, str) and x else None


# column -> (the value a run is sorted by, None where it has none; whether the column sorts descending by default:
# the newest, the most accurate, the fastest first; the lowest loss first)
SORT_COLUMNS: dict[str, tuple[Callable[[RunSummary], Any], bool]] = {
    "started": (lambda s: _text_or_none(s.started), True),  # "YYYY-MM-DD HH:MM[:SS]" sorts as text
    "name": (lambda s: str(s.path), False),
    "status": (lambda s: s.status, False),
    "optimizer": (lambda s: _text_or_none(s.optimizer), False),
    "lr": (lambda s: s.lr, False),
    "epochs": (lambda s: (s.epochs_done, s.epochs or 0), True),
    "last_loss": (lambda s: s.last_loss, False),
    "train_loss": (lambda s: s.train_loss, False),
    "accuracy": (lambda s: s.accuracy, True),
    "nll": (lambda s: s.nll, False),
    "images_per_sec": (lambda s: s.images_per_sec, True),
}
SORT_ALIASES = {"date": "started", "start": "started", "time": "started", "run": "name", "folder": "name", "acc": "accuracy",
                "loss": "last_loss", "eval_loss": "nll", "img/s": "images_per_sec", "speed": "images_per_sec"}


def sort_column(name: str, what: str = "--sort") -> str:
    """The sort column a user's name stands for: a column of SORT_COLUMNS, an alias, or a config field. UserError otherwise."""
    from resnet_tui.core.config import FIELD_BY_NAME

    key = name.strip().lower().replace("-", "_")
    key = SORT_ALIASES.get(key, key)
    if key in SORT_COLUMNS or key in FIELD_BY_NAME:
        return key
    known = [*SORT_COLUMNS, *SORT_ALIASES, *FIELD_BY_NAME]
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "expected one of " + ", ".join([*SORT_COLUMNS, "or a config field"])
    raise UserError(f"{what}: got {name!r}, not a column; {hint}")


def default_descending(column: str) -> bool:
    return SORT_COLUMNS[column][1] if column in SORT_COLUMNS else False


def _config_value(column: str) -> Callable[[RunSummary], Any]:
    """A config field as a sort value: numbers by value, anything else (a choice, layers, a path) by its text."""

    def value(s: RunSummary) -> Any:
        v = s.config.get(column)
        if v is None:
            return None
        number = finite_number(v) if not isinstance(v, bool) else float(v)
        return (0, number, "") if number is not None else (1, 0.0, ",".join(map(str, v)) if isinstance(v, list) else str(v))

    return value


def sort_runs(summaries: list[RunSummary], column: str = "started", descending: bool | None = None) -> list[RunSummary]:
    """The runs sorted by a column (sort_column's names), in its default direction unless `descending` says; runs without
    a value go last either way (in name order). Ties go by folder name in the same direction: two runs started in the
    same second, 20261128-100000 and 20261128-100000-2, are newest first too."""
    value = SORT_COLUMNS[column][0] if column in SORT_COLUMNS else _config_value(column)
    if descending is None:
        descending = default_descending(column)
    keyed = [(value(s), str(s.path), s) for s in summaries]
    present = sorted((k for k in keyed if k[0] is not None), key=lambda k: (k[0], k[1]), reverse=descending)
    missing = sorted((k for k in keyed if k[0] is None), key=lambda k: k[1])
    return [s for _, _, s in present + missing]


# ---------------------------------------------------------------- epoch losses (core.operations chooses the best epoch by them)


def epoch_train_losses(run_dir: str | Path) -> dict[int, float]:
    """Epoch (from 1) -> train_loss from metrics.jsonl's "epoch" records (NaN for a non-finite one); a later record
    of an epoch wins, and a resumed run's superseded records are left out. Raises UserError if the file cannot be read."""
    rec = read_run(run_dir)
    if rec.error:
        raise UserError(f"--best: {rec.error}; expected a readable {METRICS_NAME}")
    return {e.epoch: e.train_loss for e in rec.epochs}

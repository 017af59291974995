"""Run directories: config.toml, metrics.jsonl, checkpoints/, resume state. Written atomically where it matters.

Layout of a run directory:
    config.toml                       the resolved config
    metrics.jsonl                     one JSON object per line, each with an "event" key (a stable, public format)
    checkpoints/cifar10_model_epoch_{N}.pth   plain state_dicts, N from 0 as in the lab
    resume.pt                         model, optimizer, scheduler and position, for --resume
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from resnet_tui.core.errors import UserError

CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.jsonl"
RESUME_NAME = "resume.pt"
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

    def read_metrics(self) -> list[dict[str, Any]]:
        return list(iter_metrics(self.metrics_path))


def iter_metrics(path: Path) -> Iterator[dict[str, Any]]:
    """Parse metrics.jsonl, skipping a torn last line (a writer may be mid-line)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and "event" in obj:
                    yield obj
    except FileNotFoundError:
        return


class MetricsWriter:
    """Appends one JSON object per line. Lines are flushed as written; fsync at epoch ends and at the end."""

    def __init__(self, path: Path):
        self.path = path
        self._f = open(path, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        self.write_many([{"event": event, **fields}])

    def write_many(self, objs: list[dict[str, Any]]) -> None:
        self._f.write("".join(json.dumps(o, separators=(", ", ": ")) + "\n" for o in objs))
        self._f.flush()

    def sync(self) -> None:
        self._f.flush()
        try:
            os.fsync(self._f.fileno())
        except OSError:
            pass

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()


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
    status: str = "unknown"  # running | finished | interrupted | diverged | failed | unknown
    config: dict[str, Any] = field(default_factory=dict)


def summarize(path: Path) -> RunSummary:
    from resnet_tui.core.config import tomllib

    s = RunSummary(path=path)
    try:
        s.config = tomllib.loads((path / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        s.config = {}
    s.optimizer = str(s.config.get("optimizer", ""))
    s.lr = s.config.get("lr")
    s.epochs = s.config.get("epochs")
    status = "running"
    for ev in iter_metrics(path / METRICS_NAME):
        kind = ev["event"]
        if kind == "start":
            s.started = ev.get("time_utc", s.started)
            status = "running"
        elif kind == "batch":
            s.last_loss = ev.get("loss")
        elif kind == "epoch":
            s.epochs_done = max(s.epochs_done, int(ev.get("epoch", 0)))
        elif kind == "eval":
            s.accuracy = ev.get("accuracy")
        elif kind == "end":
            status = ev.get("status", "unknown")
    if not (path / METRICS_NAME).exists():
        status = "unknown"
    elif status == "running":
        # a writer that died without an "end" line leaves a run that is not growing
        age = time.time() - (path / METRICS_NAME).stat().st_mtime
        if age > 600:
            status = "stale"
    s.status = status
    if not s.started:
        s.started = datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return s


def list_runs(runs_root: str | Path = "runs", include_sweeps: bool = False) -> list[RunSummary]:
    """The run directories in `runs_root`, newest name first. include_sweeps: also the runs inside
    sweep folders (those with sweep.json) one level down, sorted by their path below the root."""
    root = Path(runs_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and (p / METRICS_NAME).exists()]
    if include_sweeps:
        for sweep in (p for p in root.iterdir() if p.is_dir() and (p / SWEEP_NAME).exists()):
            found += [p for p in sweep.iterdir() if p.is_dir() and (p / METRICS_NAME).exists()]
    return sorted((summarize(p) for p in found), key=lambda s: str(s.path.relative_to(root)), reverse=True)


# ---------------------------------------------------------------- the best epoch checkpoint

BEST_BY = ("train_loss", "eval_loss")


@dataclass
class BestCheckpoint:
    """The epoch checkpoint of a run with the lowest loss, and the losses it was chosen from."""

    epoch: int  # counted from 1; the file name counts from 0, as in the lab
    path: Path
    by: str  # train_loss | eval_loss
    value: float
    losses: dict[int, float]  # epoch (from 1) -> loss, for every epoch checkpoint considered
    result: Any = None  # by eval_loss: the chosen checkpoint's evaluate.EvalResult

    def reason(self) -> str:
        listing = ", ".join(f"{e}: {v:.4f}" for e, v in sorted(self.losses.items()))
        what = "mean training loss of the epoch" if self.by == "train_loss" else "eval loss (NLL on the test split)"
        return (f"best checkpoint: epoch {self.epoch} ({self.path.name}), the lowest {what} of {len(self.losses)} "
                f"epoch checkpoint(s): {self.value:.4f} (by epoch: {listing})")


def epoch_train_losses(run_dir: str | Path) -> dict[int, float]:
    """Epoch (from 1) -> train_loss from metrics.jsonl's "epoch" records; a later record of an epoch wins."""
    out: dict[int, float] = {}
    for e in iter_metrics(Path(run_dir) / METRICS_NAME):
        if e["event"] == "epoch":
            try:
                out[int(e["epoch"])] = float(e["train_loss"])
            except (KeyError, TypeError, ValueError):
                continue
    return out


def best_candidates(run_dir: str | Path, by: str = "train_loss") -> dict[int, Path]:
    """Epoch (from 1) -> checkpoint path, for the epochs `best_checkpoint` chooses among. Raises UserError."""
    import math

    if by not in BEST_BY:
        raise UserError(f"--by: got {by!r}, expected one of {', '.join(BEST_BY)}")
    run = RunDir(run_dir)
    if not run.path.is_dir() or not run.metrics_path.exists():
        raise UserError(f"--best: got {str(run_dir)!r}, expected a run directory with {METRICS_NAME}")
    losses = epoch_train_losses(run.path)
    if not losses:
        raise UserError(f"--best: {str(run_dir)!r} has no epoch records in {METRICS_NAME} (no epoch finished), so there is no epoch to choose")
    files = {epoch0 + 1: p for epoch0, p in run.list_checkpoints()}
    if by == "train_loss":
        found = {e: files[e] for e, v in losses.items() if e in files and math.isfinite(v)}
    else:
        found = {e: files[e] for e in losses if e in files}
    if not found:
        raise UserError(f"--best: {str(run_dir)!r} has epoch records but none with a finite {by} and its checkpoint "
                        f"in {CHECKPOINT_DIR}/ (epochs recorded: {', '.join(map(str, sorted(losses)))})")
    return dict(sorted(found.items()))


def best_checkpoint(
    run_dir: str | Path,
    by: str = "train_loss",
    split: Any = None,
    device: Any = None,
    layers: tuple[int, int, int] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BestCheckpoint | None:
    """The epoch checkpoint with the lowest loss; ties go to the earlier epoch.

    by="train_loss": the epochs' mean training loss from metrics.jsonl (no evaluation, no torch).
    by="eval_loss": each epoch checkpoint evaluated on `split` (a data.Split, usually the test split) on
    `device`; the lowest NLL wins. on_progress(done, total) counts checkpoints. None if should_stop()."""
    import math

    candidates = best_candidates(run_dir, by)
    results: dict[int, Any] = {}
    if by == "train_loss":
        losses = epoch_train_losses(run_dir)
        values = {e: losses[e] for e in candidates}
    else:
        if split is None or device is None:
            raise ValueError("best_checkpoint(by='eval_loss') needs the split to evaluate on and a device")
        from resnet_tui.core.evaluate import evaluate_checkpoint

        values = {}
        for i, (e, path) in enumerate(candidates.items()):
            if should_stop is not None and should_stop():
                return None
            r = evaluate_checkpoint(str(path), split, device, layers=layers, should_stop=should_stop)
            if r is None:
                return None
            results[e] = r
            if math.isfinite(r.nll):
                values[e] = r.nll
            if on_progress is not None:
                on_progress(i + 1, len(candidates))
        if not values:
            raise UserError(f"--best: no checkpoint of {str(run_dir)!r} has a finite eval loss (the weights diverged)")
    epoch = min(values, key=lambda e: (values[e], e))
    return BestCheckpoint(epoch, candidates[epoch], by, values[epoch], values, results.get(epoch))

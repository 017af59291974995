"""Run directories: config.toml, metrics.jsonl, checkpoints/, resume state. Written atomically where it matters.

Layout of a run directory:
    config.toml                       the resolved config
    metrics.jsonl                     one JSON object per line, each with an "event" key (a stable, public format)
    checkpoints/cifar10_model_epoch_{N}.pth   plain state_dicts, N from 0 as in the lab
    resume.pt                         model, optimizer, scheduler and position, for --resume
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

from resnet_tui.errors import UserError

CONFIG_NAME = "config.toml"
METRICS_NAME = "metrics.jsonl"
RESUME_NAME = "resume.pt"
CHECKPOINT_DIR = "checkpoints"


def checkpoint_name(epoch0: int) -> str:
    return f"cifar10_model_epoch_{epoch0}.pth"


def default_run_dir(runs_root: str | Path = "runs") -> Path:
    base = Path(runs_root) / datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():  # two runs started in the same second
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write through a temp file in the same folder, fsync, then rename: a crash or a full disk
    leaves either the old file or the new one, never a torn one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
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
    from resnet_tui.config import tomllib

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


def list_runs(runs_root: str | Path = "runs") -> list[RunSummary]:
    root = Path(runs_root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and (p / METRICS_NAME).exists()]
    return sorted((summarize(p) for p in found), key=lambda s: s.path.name, reverse=True)

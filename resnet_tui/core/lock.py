"""RUN/lock: which process trains a run directory.

A live run holds an OS lock (fcntl.flock) on RUN/lock, which names its pid, host and start time. The
kernel frees the lock when the holder dies in any way (SIGKILL, out-of-memory kill, power loss of a
process), so "is this run alive?" is answered by trying the lock, never by guessing from file ages.
On systems without fcntl (Windows) runs are not locked.
"""

from __future__ import annotations

import errno
import json
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from resnet_tui.core.errors import UserError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_NAME = "lock"
# flock's answers that mean "another process holds it"; any other error means this filesystem has no working file locks
# (NFS without locking, Lustre without -o flock): ENOLCK, EOPNOTSUPP, ENOSYS, ...
HELD_ERRNOS = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


@dataclass(frozen=True)
class Holder:
    """Who holds a run's lock (fields may be empty when the file was unreadable or mid-write)."""

    pid: int | None
    host: str
    started: str

    @property
    def here(self) -> bool:
        return self.host == socket.gethostname()

    def describe(self) -> str:
        who = f"pid {self.pid}" if self.pid is not None else "another process"
        return f"{who} on host {self.host or '?'}" + (f" (since {self.started} UTC)" if self.started else "")


def _read_holder(f: IO[str]) -> Holder:
    try:
        f.seek(0)
        info = json.loads(f.read(4096) or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        info = {}
    if not isinstance(info, dict):
        info = {}
    pid = info.get("pid")
    return Holder(pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
                  str(info.get("host", ""))[:200], str(info.get("started", ""))[:40])


def _open(path: Path) -> IO[str]:
    # a+ creates it if needed and never truncates the holder's record
    return open(path, "a+", encoding="utf-8", errors="replace")


class RunLock:
    """Held for the life of one training run: `acquire()` or refuse, `release()` when the run has ended."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self._f: IO[str] | None = None
        self.unenforced = ""  # why the OS lock could not be taken on this filesystem ("" when it is held)

    def acquire(self, what: str = "--run-dir") -> None:
        """Take the lock, or raise UserError naming the holder."""
        if fcntl is None:
            return
        try:
            f = _open(self.path)
        except OSError as e:
            raise UserError(f"{what}: cannot create {str(self.path)!r} ({e.strerror or e})") from None
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in HELD_ERRNOS:  # no file locks here: train, and say the lock is not enforced
                self.unenforced = e.strerror or str(e)
            else:
                who = _read_holder(f)
                f.close()
                raise busy_error(self.path.parent, who, what) from None
        record = {"pid": os.getpid(), "host": socket.gethostname(),
                  "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")}
        f.seek(0)
        f.truncate()
        f.write(json.dumps(record) + "\n")
        f.flush()
        self._f = f

    @property
    def held(self) -> bool:
        return self._f is not None

    def release(self) -> None:
        if self._f is not None:
            try:
                if not self.unenforced:
                    fcntl.flock(self._f.fileno(), fcntl.LOCK_UN)  # type: ignore[union-attr]
            finally:
                self._f.close()
                self._f = None

    def __enter__(self) -> "RunLock":
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def busy_error(run_dir: str | Path, who: Holder, what: str = "--run-dir") -> UserError:
    return UserError(f"{what}: {str(run_dir)!r} is being trained by {who.describe()}; "
                     f"wait for it, or stop it with: resnet-tui stop {run_dir}")


def holder(run_dir: str | Path) -> Holder | None:
    """Who trains this run now, or None when nobody does (no lock file, or its lock is free)."""
    path = Path(run_dir) / LOCK_NAME
    if fcntl is None or not path.is_file():
        return None
    try:
        f = open(path, encoding="utf-8", errors="replace")
    except OSError:
        return None
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            return _read_holder(f) if e.errno in HELD_ERRNOS else None  # no file locks here: nobody is known to hold it
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        return None
    finally:
        f.close()


def request_stop(run_dir: str | Path) -> Holder:
    """Ask the process training `run_dir` to stop after its batch and save (SIGTERM, as a clean stop).
    Raises UserError when nobody trains it, or when it trains on another host."""
    import signal

    who = holder(run_dir)
    if who is None:
        raise UserError(f"RUN_DIR: got {str(run_dir)!r}, which no live process is training (nothing to stop)")
    if not who.here or who.pid is None:
        raise UserError(f"RUN_DIR: {str(run_dir)!r} is trained by {who.describe()}; stop it on that host")
    try:
        os.kill(who.pid, signal.SIGTERM)
    except ProcessLookupError:
        raise UserError(f"RUN_DIR: the process training {str(run_dir)!r} (pid {who.pid}) has just ended") from None
    except PermissionError:
        raise UserError(f"RUN_DIR: not allowed to signal pid {who.pid}, which trains {str(run_dir)!r} (another user's run)") from None
    return who


def wait_released(run_dir: str | Path, timeout: float, poll: float = 0.2) -> bool:
    """Wait until nobody holds the run's lock; False if `timeout` seconds passed first."""
    import time

    deadline = time.monotonic() + timeout
    while holder(run_dir) is not None:
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True

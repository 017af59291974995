"""A run on several processes, started by the app: `python -m resnet_tui --no-ui train` (whose --gpus launches the
ranks through torch.distributed's launcher) as a detached subprocess, in its own session like a run under nohup, and
followed through its metrics.jsonl as `resnet-tui watch` follows a run (MetricsFollower).

The app does not own such a run as it owns a run in its training thread: it asks it to stop as `resnet-tui stop` does
(SIGTERM to rank 0, the holder of the run's lock; every rank stops after the same batch and saves), and quitting the
app, a hang-up or a signal to the app leave it training. No torch here: the subprocess imports it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from resnet_tui.core.config import TrainConfig
from resnet_tui.core.lock import Holder, request_stop
from resnet_tui.core.records import METRICS_NAME
from resnet_tui.app.metrics_follow import MetricsFollower
from resnet_tui.plain_text import printable

LOG_TAIL_BYTES = 8192  # the end of the launcher's output, for the line that says why it failed


def launch_command(run_dir: Path, config_file: Path | None, resume_epochs: int | None = None) -> list[str]:
    """The run's command line: a new run reads the app's config from `config_file`; a resumed one keeps its own
    config.toml, with the epochs the app asks for."""
    train = [sys.executable, "-m", "resnet_tui", "--no-ui", "train"]
    if resume_epochs is not None:
        return [*train, "--resume", str(run_dir), "--epochs", str(resume_epochs)]
    return [*train, "--config", str(config_file), "--run-dir", str(run_dir)]


class DdpJob:
    """One launched run: its launcher process, its run directory and the follower of its metrics.jsonl."""

    def __init__(self, process: subprocess.Popen[bytes], run_dir: Path, processes: int, folder: Path,
                 follower: MetricsFollower) -> None:
        self.process = process
        self.run_dir = run_dir
        self.processes = processes
        self.folder = folder  # the config file and the launcher's output (stdout and stderr)
        self.follower = follower
        self.stop_requested = False  # a second SIGTERM would abort the run without saving: it is sent once
        self.rank0_pid: int | None = None  # once it holds the run's lock: the process the machine panel shows

    @property
    def log_path(self) -> Path:
        return self.folder / "launcher.log"

    @classmethod
    def start(cls, cfg: TrainConfig, run_dir: Path, processes: int, resume: bool = False) -> "DdpJob":
        """Launch `cfg` into `run_dir` (or resume the run there). Raises OSError when it cannot be started."""
        folder = Path(tempfile.mkdtemp(prefix="resnet-tui-ddp-"))
        follower = MetricsFollower(run_dir / METRICS_NAME, run_dir)
        if resume:  # this launch's records only, as the app shows a resume it trains itself; an earlier end is not its end
            follower.offset = _size(follower.path)
        try:
            config_file = None
            if not resume:
                config_file = folder / "config.toml"
                config_file.write_text(cfg.to_toml(), encoding="utf-8")
            command = launch_command(run_dir, config_file, cfg.epochs if resume else None)
            with open(folder / "launcher.log", "wb") as log:
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           start_new_session=True)
        except OSError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return cls(process, run_dir, processes, folder, follower)

    def exit_code(self) -> int | None:
        """The launcher's exit code once it has ended (every rank has), else None."""
        return self.process.poll()

    def stop(self) -> Holder:
        """Ask the run to stop after its batch and save, as `resnet-tui stop` does. Raises UserError while no rank
        holds the run's lock yet (the ranks are starting) or once the run is over."""
        who = request_stop(self.run_dir)
        self.stop_requested = True
        return who

    def failure(self, code: int) -> str:
        """Why the launcher ended without an end record: the error its ranks printed, or its last line."""
        lines = [printable(line.strip()) for line in _tail(self.log_path).splitlines() if line.strip()]
        errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
        why = errors[-1] if errors else (lines[-1] if lines else "it printed nothing")
        return f"{why} (the {self.processes}-process run exited with code {code} before it ended; its output: {self.log_path})"

    def clean_up(self) -> None:
        """Remove the config file and the launcher's output (the run directory keeps train.log)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def goes_on_text(self) -> str:
        return (f"the {self.processes}-process run goes on (launcher pid {self.process.pid}); watch it with "
                f"resnet-tui watch {self.run_dir}, stop it with resnet-tui stop {self.run_dir}")


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _tail(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, _size(path) - LOG_TAIL_BYTES))
            return f.read(LOG_TAIL_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""

"""One run on several processes: data parallelism with torch.distributed (DDP), launched by torchrun or by `--gpus N`.

A run of world size W is W processes ("ranks"). Every rank holds the whole split on its device and trains its slice
of each global batch (the --batch-size images a one-process run trains in that step), so a run follows the same
schedule on any world size: the same images, order and augmentation at every optimizer step. Each rank's loss is
weighted by its share of the batch, so the averaged gradient is the global batch's mean even when the batch does not
split evenly. Rank 0 alone writes the run directory. The ranks agree on whatever ends an epoch or the run (a stop, a
bad loss) at the loss read-back, in the one all-reduce each read-back costs; nothing is synchronised per batch.

`Cohort()` is the one-process run: every method is then a no-op or an identity, so the trainer has one code path.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import torch

from resnet_tui.core.errors import PeerRefused, UserError

if TYPE_CHECKING:
    from resnet_tui.core.config import TrainConfig

TIMEOUT_ENV = "RESNET_TUI_DIST_TIMEOUT"
# How long a rank waits in a collective before it gives up on its peers. Longer than anything rank 0 does alone
# while the others wait (an evaluation of the test split, a checkpoint write): on a GPU, seconds.
DEFAULT_TIMEOUT_SECONDS = 300.0
MAX_FLUSH_BATCHES = 1000


def launched_by_torchrun() -> bool:
    """This process is one rank of a run that torchrun (or `--gpus N`) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and "LOCAL_RANK" in os.environ


@dataclass
class Cohort:
    """This process's place in its run: rank `rank` of `world_size`."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    peers: list[tuple[str, int]] = field(default_factory=list)  # (host, pid) of every rank, by rank

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def describe(self) -> str:
        return f" × {self.world_size} processes (DDP, {self.backend})" if self.distributed else ""

    def device(self, device: torch.device) -> torch.device:
        """Rank r trains on cuda:LOCAL_RANK; on the CPU every rank uses the CPU."""
        return torch.device("cuda", self.local_rank) if self.distributed and device.type == "cuda" else device

    # -- the collectives; each is one call on every rank, in the same order
    def vote(self, ok: bool, device: torch.device) -> bool:
        """True when every rank says ok."""
        return not self._failed_ranks(ok, device)

    def broadcast(self, value: Any) -> Any:
        """Rank 0's value (any picklable object) on every rank."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def reduce_flush(self, shares: torch.Tensor, stop: bool, seconds: float) -> tuple[list[float], bool, float]:
        """At a loss read-back: each batch's loss (summed over ranks' shares), whether any rank wants to stop, and the
        ranks' mean seconds since the last read-back, in one all-reduce and one transfer."""
        if not self.distributed:
            return shares.tolist(), stop, seconds
        import torch.distributed as dist

        extra = torch.tensor([1.0 if stop else 0.0, seconds], device=shares.device)
        buf = torch.cat([shares.float(), extra])
        dist.all_reduce(buf)
        values = buf.tolist()
        return values[:-2], values[-2] > 0, values[-1] / self.world_size

    def gather(self, x: float, device: torch.device) -> list[float]:
        """Every rank's x, by rank."""
        if not self.distributed:
            return [x]
        import torch.distributed as dist

        buf = torch.zeros(self.world_size, dtype=torch.float64 if device.type != "mps" else torch.float32, device=device)
        buf[self.rank] = x
        dist.all_reduce(buf)
        return buf.tolist()

    @contextmanager
    def together(self, what: str, device: torch.device | None = None) -> Iterator[None]:
        """A step every rank must get through before any goes on. When one fails, all stop, and one speaks: rank 0
        when it failed too (a bad flag or data folder fails every rank alike), else the rank that failed; the
        others raise PeerRefused, which the CLI does not print."""
        dev = device or torch.device("cpu")
        try:
            yield
        except BaseException as e:
            if not self.distributed:
                raise
            try:
                failed = self._failed_ranks(False, dev)
            except Exception:  # the others may be gone already
                raise e from None
            if not self.main and 0 in failed and isinstance(e, UserError):
                raise PeerRefused(str(e)) from None  # rank 0 says the same
            raise
        if self.distributed and self._failed_ranks(True, dev):
            raise PeerRefused(f"rank {self.rank}: another process of the run failed while {what}")

    def _failed_ranks(self, ok: bool, device: torch.device) -> list[int]:
        return [rank for rank, flag in enumerate(self.gather(1.0 if ok else 0.0, device)) if flag == 0]

    # -- the weighting of each rank's slice of a global batch
    def loss_scale(self, share: int, batch: int) -> float:
        """DDP averages the ranks' gradients; weighting each rank's mean loss by W * share / batch makes that average
        the global batch's mean gradient."""
        return self.world_size * share / batch

    # -- failures
    def is_peer_failure(self, e: BaseException) -> bool:
        if not self.distributed:
            return False
        import torch.distributed as dist

        text = str(e)
        return isinstance(e, dist.DistError) or any(
            s in text for s in ("gloo", "Gloo", "NCCL", "Connection closed by peer", "Connection reset by peer", "timed out"))

    def failed_peers(self, wait: float = 3.0) -> list[int]:
        """The ranks on this host whose process has ended (waiting up to `wait` s for the launcher to see it)."""
        here = socket.gethostname()
        deadline = time.monotonic() + wait
        while True:
            dead = [r for r, (host, pid) in enumerate(self.peers) if r != self.rank and host == here and not _alive(pid)]
            if dead or time.monotonic() >= deadline:
                return dead
            time.sleep(0.1)

    def failure_message(self, e: BaseException) -> str:
        dead = self.failed_peers()
        if dead:
            who = ", ".join(f"rank {r} (pid {self.peers[r][1]})" for r in dead)
            return f"{who} failed: {'its process' if len(dead) == 1 else 'their processes'} ended"
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return f"another process of the run failed ({first})"

    def close(self) -> None:
        """Tear the process group down while Python is whole. A finished run's DDP model, garbage in a reference
        cycle, holds the group; left to the collection at interpreter exit, a gloo worker thread could free its last
        all-reduce (and its tensors' Python objects) during Py_FinalizeEx, where a thread that takes the GIL is
        ended, and the rank died of std::terminate (SIGABRT) after a finished run. Seen once training froze the
        objects it started with (gc_freeze.py; they are then in the oldest generation): 3 of 54 two-process runs
        here, none of 24 with this collection first (none of 14 before the freeze)."""
        if self.distributed:
            import gc

            import torch.distributed as dist

            gc.collect()
            if dist.is_initialized():
                dist.destroy_process_group()


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def timeout_seconds() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_SECONDS
    except ValueError:
        raise UserError(f"{TIMEOUT_ENV}: got {raw!r}, expected a number of seconds > 0") from None
    if not value > 0:
        raise UserError(f"{TIMEOUT_ENV}: got {raw!r}, expected a number of seconds > 0")
    return value


def join(device: torch.device) -> Cohort:
    """This process's place in its run: a Cohort of one, or, under torchrun with WORLD_SIZE > 1, its rank in a
    process group (NCCL on CUDA, gloo on the CPU) whose collectives give up after timeout_seconds()."""
    if not launched_by_torchrun() or int(os.environ["WORLD_SIZE"]) <= 1:
        return Cohort()
    from datetime import timedelta

    import torch.distributed as dist

    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if device.type == "mps":
        raise UserError("--gpus: several processes train on CUDA GPUs or on the CPU, not on MPS; use --gpus 1")
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        if local >= torch.cuda.device_count():
            raise UserError(f"--gpus: local rank {local} has no GPU (this machine has {torch.cuda.device_count()})")
        torch.cuda.set_device(local)
    elif "OMP_NUM_THREADS" not in os.environ:  # the ranks on one host share its cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    dist.init_process_group(backend, timeout=timedelta(seconds=timeout_seconds()))
    peers: list[Any] = [None] * world
    dist.all_gather_object(peers, (socket.gethostname(), os.getpid()))
    return Cohort(rank, world, local, backend, [tuple(p) for p in peers])


def check_world(cfg: "TrainConfig", world_size: int, device_type: str) -> None:
    """What a run of world_size processes cannot do, as the one-line error of its flag (checked before launching, and by
    every rank)."""
    if world_size <= 1:
        return
    if cfg.batch_size < world_size:
        raise UserError(f"--batch-size: got {cfg.batch_size} with {world_size} processes, expected at least one "
                        f"image per process (>= {world_size}); --batch-size is the global batch")
    if cfg.sync_bn and device_type != "cuda":
        raise UserError(f"--sync-bn: got it on {device_type}, expected CUDA (SyncBatchNorm runs on GPUs); use --no-sync-bn")
    if cfg.device.startswith("cuda:"):
        raise UserError(f"--device: got {cfg.device!r} with {world_size} processes, expected cuda or auto "
                        "(each process trains on the GPU of its local rank)")


def processes(gpus: int | str, device_type: str) -> int:
    """How many processes `--gpus` asks for on this machine ("all": one per visible CUDA GPU)."""
    count = torch.cuda.device_count() if device_type == "cuda" else 0
    if gpus == "all":
        if count == 0:
            raise UserError("--gpus: got 'all', but no CUDA GPU is visible here; give a number (with --device cpu: CPU processes)")
        return count
    n = int(gpus)
    if device_type == "cuda" and n > count:
        raise UserError(f"--gpus: got {n}, expected at most {count} (the CUDA GPUs visible here)")
    if device_type == "mps" and n > 1:
        raise UserError(f"--gpus: got {n}, but several processes train on CUDA GPUs or on the CPU, not on MPS; use --gpus 1")
    return n


# ---------------------------------------------------------------- `--gpus N`: torch.distributed's launcher, in-process

def launch(nproc: int, args: list[str], on_hangup: str) -> tuple[int, str]:
    """Run `python -m resnet_tui ARGS` as nproc ranks through torch.distributed's elastic launcher (what torchrun
    runs), on this machine; the exit code of the run. Signals to this process go to every rank, which stop after the
    same batch and save; a hang-up (SIGHUP) is ignored, and the ranks train on, unless on_hangup is "stop". The
    ranks run in their own session, so a terminal's Ctrl+C reaches them once, through the launcher. Returns the exit
    code and, when no rank could say why it ended (it was killed), a line that does."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    for name in list(logging.root.manager.loggerDict):  # its warnings repeat what the ranks say
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    handled = "SIGTERM,SIGINT,SIGQUIT" + (",SIGHUP" if on_hangup == "stop" else "")
    if on_hangup != "stop" and hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=f"resnet-tui-{os.getpid()}", rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0", max_restarts=0, monitor_interval=0.1, signals_to_handle=handled, shutdown_timeout=120,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "resnet_tui", *args)
        return 0, ""
    except SignalException as e:
        return 128 + int(e.sigval), ""
    except ChildFailedError as e:
        return failure_outcome(e.failures)


def failure_outcome(failures: dict[int, Any]) -> tuple[int, str]:
    """The launcher's exit code when ranks failed, and who failed when no rank could say it. A rank killed by a signal
    (other than the launcher's own SIGTERM, which shuts the others down after a failure) is the cause: exit 1. Else
    rank 0's exit code: it has said why (2: a bad input, 130: stopped, 1: failed)."""
    killed = {rank: f for rank, f in failures.items() if int(f.exitcode) < 0 and -int(f.exitcode) != signal.SIGTERM}
    if killed:
        rank = min(killed)
        sig = -int(killed[rank].exitcode)
        name = signal.Signals(sig).name if sig in signal.valid_signals() else f"signal {sig}"
        return 1, f"rank {rank} (pid {killed[rank].pid}) was killed by {name}"
    exited = {rank: f for rank, f in failures.items() if int(f.exitcode) >= 0}
    if exited:  # rank 0's code; else another's (the launcher shut rank 0 down after that one ended)
        return int(exited[min(exited)].exitcode), ""
    first = failures[min(failures)]
    return 128 - int(first.exitcode), ""

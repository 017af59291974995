"""The training loop. It knows nothing of any UI: it emits events (resnet_tui.core.events) and writes the run directory.

Hot-loop rules: the data is already on the device; per-batch losses are written into a device buffer
and read back in one transfer every ~0.25 s (or at an epoch's end), so no batch costs a host sync.
"""

from __future__ import annotations

import errno
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tui.core import events as ev
from resnet_tui.core.checkpoint import read_resume_state, save_state_dict
from resnet_tui.core.config import TrainConfig, eval_every_epochs
from resnet_tui.core.data import DeviceBatches, Split, load_data
from resnet_tui.core.device import autocast_dtype, describe_device, prepare_device, resolve_device
from resnet_tui.core.distributed import MAX_FLUSH_BATCHES, Cohort, check_world
from resnet_tui.core.errors import UserError
from resnet_tui.core.evaluate import EVAL_BATCH, evaluate_model
from resnet_tui.core.compile_watch import RecompileLimitWatch
from resnet_tui.core.gc_freeze import objects_frozen
from resnet_tui.core.model import ResNet, param_count
from resnet_tui.core.lablog import LabLogWriter
from resnet_tui.core.lens import attach as attach_lens
from resnet_tui.core.lock import RunLock, busy_error, holder
from resnet_tui.core.records import RecordWriter, read_run
from resnet_tui.core.runs import RunDir, atomic_write, atomic_write_text
from resnet_tui.core.system import SystemMonitor, SystemSampler

FLUSH_SECONDS = 0.25  # how often per-batch losses are read back from the device
# A finite loss above this has diverged too: an NLL of 1e6 means the logits are a million apart (--lr 1e6 gets ~1e11,
# never NaN, because BatchNorm keeps the activations finite). Healthy runs, even spiky ones, stay orders of magnitude below.
DIVERGED_LOSS = 1e6
RESUME_VERSION = 1
SYSTEM_RECORD_SECONDS = 10.0  # a system record (GPU, CPU, RAM) in metrics.jsonl about this often

Emit = Callable[[ev.Event], None]


def seed_everything(seed: int) -> None:
    """As the lab does: numpy, torch and CUDA seeds (plus Python's, which the lab leaves alone)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def build_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    # Weight decay applies to conv and linear weights only; BatchNorm parameters and biases are left alone.
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups: Any = model.parameters() if cfg.weight_decay == 0 else [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(groups, lr=cfg.lr, momentum=cfg.momentum)
    raise UserError(f"--optimizer: got {cfg.optimizer!r}, expected one of sgd, adam, adamw, rmsprop")


def lr_factor(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Multiplier of the base lr at optimizer step `step` (from 0)."""
    if cfg.schedule == "constant":
        return lambda step: 1.0
    total = max(cfg.epochs * steps_per_epoch, 1)
    warm = min(int(cfg.warmup_epochs * steps_per_epoch), total - 1)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(total - warm, 1))

    return factor


def loss_fn(cfg: TrainConfig) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    if cfg.label_smoothing > 0:
        # The model outputs log-probabilities; cross_entropy's log_softmax leaves them unchanged.
        return lambda out, y: F.cross_entropy(out.float(), y, label_smoothing=cfg.label_smoothing)
    return lambda out, y: F.nll_loss(out.float(), y)


@dataclass
class Setup:
    """Everything a training run is made of, ready to go (and shared with the benchmark)."""

    cfg: TrainConfig
    device: torch.device
    model: nn.Module  # the nn.Module whose state_dict is saved
    step_model: nn.Module  # what the hot loop calls (compiled, or the same module)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    train: DeviceBatches
    test: DeviceBatches
    classes: tuple[str, ...]
    autocast: torch.dtype | None
    steps_per_epoch: int
    notices: list[str]
    drop_last: bool = False  # compiled runs drop the last partial batch, so the compiled graph sees one shape
    cohort: Cohort = field(default_factory=Cohort)  # this process's rank in the run (a cohort of one: no DDP)
    eager_model: nn.Module | None = None  # what the hot loop calls when not compiled: the model, or its DDP wrapper

    @property
    def compiled(self) -> bool:
        return self.step_model is not (self.eager_model or self.model)


@dataclass
class Position:
    """Where a run stands: what resume.pt keeps besides the weights, optimizer, schedule and RNG state."""

    epoch0: int = 0  # the epoch in progress, from 0
    batch0: int = 0  # its next batch, from 0
    images: int = 0  # images trained, every process of the run counted
    train_seconds: float = 0.0  # seconds of training, every process counted
    partial: list[float] = field(default_factory=list)  # the epoch's losses so far


def setup(cfg: TrainConfig, train_split: Split | None = None, test_split: Split | None = None,
          cohort: Cohort | None = None) -> Setup:
    cohort = cohort or Cohort()
    device = cohort.device(resolve_device(cfg.device))
    check_world(cfg, cohort.world_size, device.type)
    if train_split is None or test_split is None:
        train_split, test_split = load_data(cfg.data, cfg.data_dir, cfg.limit_train, cfg.limit_eval)
    notices = list(dict.fromkeys(train_split.notices + test_split.notices))
    prepare_device(device)
    seed_everything(cfg.seed)
    # the head has one output per class of the data: 10 for CIFAR-10 (the lab's), N for an N-class image folder
    model = ResNet(cfg.layers, skip=cfg.skip, num_classes=len(train_split.classes)).to(device).to(memory_format=torch.channels_last)
    if cohort.distributed and cfg.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # the same state_dict keys: checkpoints load in the lab's class
    optimizer = build_optimizer(cfg, model)
    train = DeviceBatches(train_split, device)
    drop_last, why = drop_last_batch(cfg, cohort, train.n)
    if drop_last:
        notices.append(f"{why}: the last {train.n % cfg.batch_size} images of each epoch's shuffle are left out (a partial batch)")
    steps = train.num_batches(cfg.batch_size, drop_last)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cfg, steps))
    eager_model = data_parallel(model, device) if cohort.distributed else model
    step_model = eager_model
    if cfg.compile:
        step_model, note = try_compile(eager_model, device, graphs=not cohort.distributed)
        notices.append(note)
    return Setup(
        cfg, device, model, step_model, optimizer, scheduler, train, DeviceBatches(test_split, device),
        train_split.classes, autocast_dtype(cfg.precision, device), steps, notices, drop_last, cohort, eager_model,
    )


def drop_last_batch(cfg: TrainConfig, cohort: Cohort, n: int) -> tuple[bool, str]:
    """Whether each epoch leaves out its last, partial batch, and why: a smaller last batch would make a compiled model
    compile again (and on CUDA record a second graph), and a batch smaller than the world size leaves a rank nothing."""
    rest = n % cfg.batch_size
    if n <= cfg.batch_size or rest == 0:
        return False, ""
    if cfg.compile:
        return True, "--compile: one batch shape for the compiled model"
    if rest < cohort.world_size:
        return True, f"{cohort.world_size} processes: fewer images than processes in the last batch"
    return False, ""


def data_parallel(model: nn.Module, device: torch.device) -> nn.Module:
    """DDP: the ranks' gradients averaged during backward. Each rank keeps its own BatchNorm running statistics (no
    broadcast before every forward, which would cost a collective per batch); rank 0's are saved and evaluated."""
    import warnings

    from torch.nn.parallel import DistributedDataParallel

    with warnings.catch_warnings():  # torch 2.14 deprecates broadcast_buffers, and says to keep it for rank-local buffers
        warnings.simplefilter("ignore", FutureWarning)
        return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, broadcast_buffers=False)


def try_compile(model: nn.Module, device: torch.device, graphs: bool = True) -> tuple[nn.Module, str]:
    """graphs: CUDA graphs (reduce-overhead) on a GPU; a DDP model is compiled without them, because DDP's
    gradient all-reduce runs in hooks during backward, which a captured graph would replay without."""
    # Forget earlier runs' compiled code: in a sweep or an app session, graphs and guards of models long gone would
    # otherwise count against dynamo's recompile limit, past which it silently runs eager.
    torch._dynamo.reset()
    try:
        mode = "reduce-overhead" if device.type == "cuda" and graphs else None
        compiled = torch.compile(model, mode=mode, dynamic=False)  # one static graph: batches have one shape
        return compiled, f"torch.compile on ({mode or 'default'} mode); the first batches include compile time"
    except Exception as e:  # no compiler, unsupported platform, ...
        return model, f"torch.compile unavailable ({type(e).__name__}: {e}); training without it"


def write_failure(run_dir: Path, e: OSError) -> str:
    """What a failed write means for the user, by its cause (a full disk is not a permission problem)."""
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        cause = f"the disk is full ({e.strerror})"
        fix = "free space"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        cause = f"permission denied ({e.strerror})"
        fix = "make it writable"
    else:
        cause = e.strerror or str(e) or type(e).__name__
        fix = "fix that"
    return (f"could not write to {run_dir}: {cause}; the last completed checkpoint and resume state are intact; "
            f"{fix}, then --resume {run_dir}")


class Trainer:
    """One training run into one run directory. Call run(); it returns the RunEnd event it emitted."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: str | Path,
        emit: Emit,
        should_stop: Callable[[], bool] = lambda: False,
        resume: bool = False,
        splits: tuple[Split, Split] | None = None,
        cohort: Cohort | None = None,
    ):
        self.cfg = cfg
        self.cohort = cohort or Cohort()  # with several ranks, only rank 0 writes the run directory
        self.run = RunDir(run_dir)
        self.emit_ui = emit
        self.should_stop = should_stop
        self.resume = resume
        self.splits = splits
        self.metrics: RecordWriter | None = None
        self.log: LabLogWriter | None = None  # RUN/train.log
        self._criterion = loss_fn(cfg)
        self._compile_checked = False  # the first step tries the compiled model (forward and backward) once
        self.compile_watch: RecompileLimitWatch | None = None  # while a compiled run trains: dynamo giving up on it
        self._last_resume_save = 0.0
        self.system: SystemMonitor | None = None  # samples the machine once a second in its own thread
        self.flush_batches = 1  # with several ranks: batches between read-backs, which every rank must agree on
        self.rank_images = 0  # images this rank trained (its slices of the global batches), for its throughput

    # -- events go to metrics.jsonl (those it records), then to the front end
    def emit(self, event: ev.Event) -> None:
        self.emit_many([event])

    def emit_many(self, events: list[ev.Event]) -> None:
        if self.metrics is not None:
            self.metrics.write_many(events)
        if self.log is not None:
            self.log.write_many(events)
        for event in events:
            self.emit_ui(event)

    def run_training(self) -> ev.RunEnd:
        if not self.cohort.main:
            return self._run_follower()
        lock = RunLock(self.run.path)
        self._refuse_existing_run()
        if self.resume and self.run.path.is_dir():  # a run that is still training is refused before anything is loaded
            lock.acquire("--resume")
        try:
            return self._run_locked(lock)
        finally:
            lock.release()

    def _run_locked(self, lock: RunLock) -> ev.RunEnd:
        cfg = self.cfg
        with self.cohort.together("starting the run", self._vote_device()):
            s = setup(cfg, *(self.splits or (None, None)), cohort=self.cohort)  # bad data fails here, before a run folder exists
            start = self._restore(s) if self.resume else Position()  # a bad resume.pt fails here, before anything is written
            self.run.prepare()
            if not lock.held:
                lock.acquire()
                self._refuse_existing_run()  # another trainer may have started and ended here meanwhile
        if lock.unenforced:
            s.notices.append(f"the run's lock is not enforced ({lock.unenforced}): this filesystem has no working file "
                             "locks, so nothing stops a second process from training this run directory too")
        try:
            atomic_write_text(self.run.config_path, cfg.to_toml())
            self.metrics = RecordWriter(self.run.metrics_path, self.run.path)
            self.log = LabLogWriter(self.run.log_path)
            with SystemMonitor(SystemSampler(cuda=s.device.type == "cuda")) as self.system:
                return self._loop_or_peer_failure(s, start)
        except OSError as e:
            # A full disk, a permission change or a vanished run dir mid-write. Writes are atomic, so the last
            # completed checkpoint and resume state are intact; say so instead of dying with a traceback.
            return self._end_quietly(ev.RunEnd("failed", 0.0, 0.0, write_failure(self.run.path, e)))
        finally:
            for sink in (self.metrics, self.log):
                try:
                    if sink is not None:
                        sink.close()
                except OSError:
                    pass

    def _end_quietly(self, end: ev.RunEnd) -> ev.RunEnd:
        """Record a run's end after a failure, as far as the disk lets it."""
        for sink in (self.metrics, self.log):
            try:
                if sink is not None:
                    sink.write_many([end])
            except OSError:
                pass
        self.emit_ui(end)
        return end

    def _vote_device(self) -> torch.device:
        """Where the ranks' votes are counted: NCCL counts on the GPU."""
        return self.cohort.device(resolve_device(self.cfg.device)) if self.cohort.backend == "nccl" else torch.device("cpu")

    def _run_follower(self) -> ev.RunEnd:
        """Rank > 0: the same setup and training, and nothing written (rank 0 writes the run directory)."""
        with self.cohort.together("starting the run", self._vote_device()):
            s = setup(self.cfg, *(self.splits or (None, None)), cohort=self.cohort)
            start = self._restore(s) if self.resume else Position()
        return self._loop_or_peer_failure(s, start)

    def _loop_or_peer_failure(self, s: Setup, start: Position) -> ev.RunEnd:
        try:
            with objects_frozen(), (RecompileLimitWatch() if s.compiled else nullcontext()) as self.compile_watch:
                return self._loop(s, start)
        except Exception as e:
            if not self.cohort.is_peer_failure(e):
                raise
            return self._end_quietly(ev.RunEnd("failed", 0.0, 0.0, self._peer_failure_message(e), world_size=self.cohort.world_size))

    def _peer_failure_message(self, e: BaseException) -> str:
        if not self.cohort.main:
            return f"{self.cohort.failure_message(e)}; the run stopped"
        if not self.run.resume_path.exists():
            return f"{self.cohort.failure_message(e)}; the run stopped before its first resume state was saved"
        return (f"{self.cohort.failure_message(e)}; the run stopped, and its last saved resume state is intact: "
                f"resume with: resnet-tui --no-ui train --resume {self.run.path}")

    def _refuse_existing_run(self) -> None:
        if not self.resume and self.run.metrics_path.exists():
            who = holder(self.run.path)
            if who is not None:
                raise busy_error(self.run.path, who)
            # a fresh run here would overwrite that run's checkpoints and append a second series to its metrics.jsonl
            raise UserError(f"--run-dir: got {str(self.run.path)!r}, which already holds a run; continue it with "
                            f"--resume {self.run.path}, or choose a new --run-dir")

    def _restore(self, s: Setup) -> Position:
        path = self.run.resume_path
        if not path.exists():
            raise UserError(f"--resume: got {str(self.run.path)!r}, expected a run directory with {path.name} (none found)")
        state = read_resume_state(path, s.model, s.optimizer, s.scheduler, s.steps_per_epoch, s.device, RESUME_VERSION)
        s.model.load_state_dict(state.model, strict=True)
        s.optimizer.load_state_dict(state.optimizer)
        # resume.pt leaves out lr_lambdas (plain functions are not saved); LambdaLR.load_state_dict requires the key
        s.scheduler.load_state_dict({**state.scheduler, "lr_lambdas": [None] * len(s.scheduler.lr_lambdas)})
        # the schedule's length follows the (possibly new) number of epochs
        s.scheduler.lr_lambdas[0] = lr_factor(self.cfg, s.steps_per_epoch)
        # and so does the lr of the next step (the optimizer's saved lr is the old schedule's; with the same epochs it is equal)
        for group, base in zip(s.optimizer.param_groups, s.scheduler.base_lrs):
            group["lr"] = base * s.scheduler.lr_lambdas[0](s.scheduler.last_epoch)
        torch.set_rng_state(state.rng_cpu)
        if state.rng_cuda is not None:
            torch.cuda.set_rng_state(state.rng_cuda, s.device)
        if state.world_size != self.cohort.world_size:  # the schedule does not depend on it: the run goes on as it was
            s.notices.append(f"resumed on {self.cohort.world_size} process(es) a run trained so far on {state.world_size}: "
                             "the same batches in the same order; only BatchNorm's per-process batch statistics change")
        return Position(state.epoch0, state.batch0, state.images, state.train_seconds, list(state.partial_losses))

    def _save_resume(self, s: Setup, pos: Position) -> None:
        state = {
            "version": RESUME_VERSION,
            "model": {k: v.detach().cpu().contiguous() for k, v in s.model.state_dict().items()},
            "optimizer": s.optimizer.state_dict(),
            "scheduler": {k: v for k, v in s.scheduler.state_dict().items() if k != "lr_lambdas"},
            "rng_cpu": torch.get_rng_state(),
            "epoch0": pos.epoch0,
            "batch0": pos.batch0,
            "images": pos.images,
            "train_seconds": pos.train_seconds,
            "partial_losses": list(pos.partial),
            "world_size": self.cohort.world_size,
            "config": self.cfg.to_dict(),
        }
        if s.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(s.device)
        atomic_write(self.run.resume_path, lambda f: torch.save(state, f))

    def _checked_compiled(self, s: Setup, criterion: Callable, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
        """torch.compile builds the forward graph at the first call and the backward graph at the first backward():
        one trial step on the first batch covers both. BatchNorm's running statistics are put back and the gradients
        dropped, so the run trains as if it had not happened. A failure falls back to eager with a notice; running
        out of memory is not a compile failure and goes to the trainer's out-of-memory handling."""
        buffers = {k: v.clone() for k, v in s.model.named_buffers()}
        try:
            with torch.autocast(s.device.type, dtype=s.autocast or torch.float32, enabled=s.autocast is not None):
                loss = criterion(s.step_model(x), y)
            loss.backward()
            return s.step_model
        except torch.cuda.OutOfMemoryError:
            raise
        except Exception as e:  # no C++ compiler, an unsupported op, ...: train eager
            if s.device.type == "cuda":
                torch.cuda.empty_cache()  # the failed graph's memory, before eager training allocates its own
            self.emit(ev.Notice(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}); "
                                "training without it", "warning"))
            return s.eager_model or s.model
        finally:
            s.optimizer.zero_grad(set_to_none=True)
            with torch.no_grad():
                for k, v in s.model.named_buffers():
                    v.copy_(buffers[k])

    # ---------------------------------------------------------------- the run, top to bottom

    def _loop(self, s: Setup, start: Position) -> ev.RunEnd:
        self._announce(s, start)
        lens = self._attach_lens(s)
        losses_dev = torch.zeros(s.steps_per_epoch, device=s.device)  # this epoch's losses, read back every FLUSH_SECONDS
        pos, images_here, seconds_here = start, 0, 0.0  # where the run is; what this process trained
        epochs_done = start.epoch0
        status, message = self._missed_evaluation(s, start)
        self._last_resume_save = time.perf_counter()
        for epoch0 in range(start.epoch0, self.cfg.epochs):
            if status != "finished":  # stopped during the evaluation it missed
                break
            if epoch0 > start.epoch0:
                pos = Position(epoch0, 0, pos.images, pos.train_seconds)
            epoch = EpochPass(self, s, lens, pos, losses_dev)
            epoch.run()
            images_here, seconds_here = images_here + epoch.images, seconds_here + epoch.seconds
            pos = epoch.position()
            status, message = self._judge(s, epoch, losses_dev)
            if status != "finished":
                break
            self._end_epoch(s, epoch, pos)
            epochs_done = epoch0 + 1
            if epoch.stopped:  # right at the epoch's end: its checkpoint and resume state are saved
                status, message = "interrupted", self._stopped_message(epoch)
                break
            status, message = self._evaluate_if_due(s, epochs_done)  # after the checkpoint and resume state of the epoch
            if status != "finished":
                break
        rate = self.rank_images / seconds_here if seconds_here > 0 else 0.0
        # every rank ends here together, except after a failure of its own (out of memory), where a collective would wait
        rank_rates = [rate] if status == "failed" else self.cohort.gather(rate, s.device)
        end = ev.RunEnd(status, images_here / seconds_here if seconds_here > 0 else 0.0, pos.train_seconds, message,
                        epochs_done=epochs_done, world_size=self.cohort.world_size, rank_images_per_sec=rank_rates)
        self.emit(end)
        return end

    def _announce(self, s: Setup, start: Position) -> None:
        cfg = self.cfg
        self.emit(ev.TrainStart(
            cfg.to_dict(), str(self.run.path), describe_device(s.device, cfg.precision) + self.cohort.describe(),
            param_count(s.model), s.train.n, s.test.n, s.steps_per_epoch, start.epoch0 + 1, start.batch0 + 1, s.notices,
            time_utc=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S"), resumed=self.resume,
            world_size=self.cohort.world_size,
        ))
        for note in s.notices:
            self.emit(ev.Notice(note, "warning"))

    def _attach_lens(self, s: Setup) -> Any:
        """The residual lens: hooks that measure every lens_every steps into a device buffer, read back with the losses."""
        s.model.train()
        if not self.cohort.main:  # rank 0 measures; the others would only slow down
            return None
        lens, why_not = attach_lens(self.cfg.lens_every, s.model, s.optimizer, s.scheduler, s.steps_per_epoch,
                                    compiled=s.compiled)
        if why_not:
            self.emit(ev.Notice(why_not, "warning"))
        return lens

    def train_step(self, s: Setup, x: torch.Tensor, y: torch.Tensor, batch: int | None = None) -> torch.Tensor:
        """One optimizer step on this rank's slice (x, y) of a global batch of `batch` images; returns the batch's
        loss on the device (with several ranks: this rank's share of it, summed over ranks at the read-back)."""
        if not self._compile_checked:
            if s.compiled:
                s.step_model = self._checked_compiled(s, self._criterion, x, y)
            self._compile_checked = True
        with torch.autocast(s.device.type, dtype=s.autocast or torch.float32, enabled=s.autocast is not None):
            loss = self._criterion(s.step_model(x), y)
        if s.cohort.distributed:
            loss = loss * s.cohort.loss_scale(len(y), batch or len(y))
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        s.optimizer.step()
        s.scheduler.step()
        self.rank_images += len(y)
        return loss.detach() / s.cohort.world_size if s.cohort.distributed else loss.detach()

    def maybe_save_resume(self, s: Setup, pos: Position) -> None:
        """Mid-epoch, at most every resume_every seconds: a kill from here on loses at most that much training."""
        every = self.cfg.resume_every
        if self.cohort.main and 0 < every <= time.perf_counter() - self._last_resume_save and pos.batch0 < s.steps_per_epoch:
            assert self.metrics is not None
            self.metrics.sync()  # the records of the batches it covers are on disk before it is
            self._save_resume(s, pos)
            self._last_resume_save = time.perf_counter()

    def _judge(self, s: Setup, epoch: EpochPass, losses_dev: torch.Tensor) -> tuple[str, str]:
        """How the epoch ended: ("finished", "") to go on, or the run's end status and message."""
        cfg, n = self.cfg, epoch.epoch0 + 1
        if epoch.oom:
            return "failed", f"CUDA ran out of memory at batch size {cfg.batch_size}; try --batch-size {max(cfg.batch_size // 2, 1)}"
        if epoch.bad is not None:
            bad_loss = float(losses_dev[epoch.bad])
            what = "became non-finite" if not math.isfinite(bad_loss) else f"exploded to {bad_loss:.3g}"
            return "diverged", (f"the loss {what} at epoch {n}, batch {epoch.bad + 1}; "
                                f"try a lower learning rate than {cfg.lr:g} (the last finite checkpoint is kept)")
        if epoch.stopped and epoch.end_b < s.steps_per_epoch:  # mid-epoch: keep the position; a resume starts at the next batch
            if self.cohort.main:
                self._save_resume(s, epoch.position())
            return "interrupted", self._stopped_message(epoch)
        # a finite last loss can still leave NaN/inf weights (a non-finite update): never save those as a checkpoint
        if not bool(torch.stack([torch.isfinite(t).all() for t in s.model.state_dict().values() if t.is_floating_point()]).all()):
            return "diverged", (f"the weights became non-finite during epoch {n}; "
                                f"try a lower learning rate than {cfg.lr:g} (the last finite checkpoint is kept)")
        return "finished", ""

    def _stopped_message(self, epoch: EpochPass) -> str:
        return (f"stopped at epoch {epoch.epoch0 + 1}, batch {epoch.end_b}; "
                f"resume with: resnet-tui --no-ui train --resume {self.run.path}")

    def _end_epoch(self, s: Setup, epoch: EpochPass, pos: Position) -> None:
        """Record the epoch, save its checkpoint (the lab's file name) and the resume state of the next one."""
        train_loss = float(np.mean(epoch.losses)) if epoch.losses else float("nan")
        eps = epoch.images / epoch.seconds if epoch.seconds > 0 else 0.0
        sample = self.system.due(0.0) if self.system is not None else None  # the epoch line shows the machine now
        if sample is not None:
            self.emit(sample)
        self.emit(ev.EpochEnd(epoch.epoch0 + 1, train_loss, epoch.seconds, eps))
        if not self.cohort.main:
            return
        ck = self.run.checkpoint_path(epoch.epoch0)
        save_state_dict(s.model, ck)
        self.emit(ev.CheckpointSaved(epoch.epoch0 + 1, str(ck)))
        self._save_resume(s, Position(epoch.epoch0 + 1, 0, pos.images, pos.train_seconds))
        self._last_resume_save = time.perf_counter()
        assert self.metrics is not None
        self.metrics.sync()

    def _evaluate_if_due(self, s: Setup, epoch: int) -> tuple[str, str]:
        """Evaluate the test split after `epoch` (from 1) when it is due: every eval_every epochs, and always after the
        last. ("finished", "") to go on, or ("interrupted", why) when a stop came during it. It does not touch training:
        evaluate_model uses no random numbers, and runs in eval mode (BatchNorm's running statistics are left alone)
        under inference_mode, then puts the model back in train mode."""
        if not self._evaluation_due(s, epoch):
            return "finished", ""
        status = self._evaluate(s, epoch) if self.cohort.main else ("finished", "")  # rank 0 evaluates; the others wait
        agreed = self.cohort.vote(status[0] == "finished", s.device)
        if not agreed and not self.cohort.main:
            return "interrupted", "rank 0 stopped during its evaluation"
        return status

    def _evaluate(self, s: Setup, epoch: int) -> tuple[str, str]:
        # in fp32 like `evaluate`, whatever the run trained in: a checkpoint's accuracy is the same number everywhere
        result = evaluate_model(
            s.model, s.test, s.classes, batch_size=EVAL_BATCH, tta=self.cfg.tta,
            on_progress=lambda d, t: self.emit_ui(ev.EvalProgress(d, t)), should_stop=self.should_stop,
        )
        if result is None:
            return "interrupted", self._stopped_in_evaluation(epoch)
        self.emit(ev.EvalEnd(epoch, result))
        return "finished", ""

    def _evaluation_due(self, s: Setup, epoch: int) -> bool:
        every = eval_every_epochs(self.cfg, s.device.type)
        return epoch == self.cfg.epochs or (every > 0 and epoch % every == 0)

    def _stopped_in_evaluation(self, epoch: int) -> str:
        if epoch == self.cfg.epochs:
            return (f"stopped during the final evaluation; training is complete and its checkpoints are kept; "
                    f"evaluate with: resnet-tui --no-ui evaluate {self.run.path}")
        return (f"stopped during the evaluation after epoch {epoch} (its checkpoint and resume state are saved); "
                f"resume with: resnet-tui --no-ui train --resume {self.run.path}")

    def _missed_evaluation(self, s: Setup, start: Position) -> tuple[str, str]:
        """A run stopped or killed during the evaluation after an epoch resumes at the next epoch's first batch:
        evaluate that epoch first, if it was due and is not recorded (a resume at the last epoch's end is the case
        of a run stopped during its final evaluation)."""
        k = start.epoch0
        if not self.resume or start.batch0 != 0 or k == 0 or not self._evaluation_due(s, k):
            return "finished", ""
        recorded = self.cohort.main and any(e.epoch == k for e in read_run(self.run.path).evals)
        if self.cohort.broadcast(recorded):  # rank 0 read the records
            return "finished", ""
        return self._evaluate_if_due(s, k)


class EpochPass:
    """One epoch's hot loop. Losses stay on the device and are read back, and emitted as events, in one transfer
    every FLUSH_SECONDS and at the end; the first loss that is not finite (or explodes) ends the epoch."""

    def __init__(self, trainer: Trainer, s: Setup, lens: Any, start: Position, losses_dev: torch.Tensor) -> None:
        self.trainer, self.s, self.lens, self.losses_dev = trainer, s, lens, losses_dev
        self.epoch0, self.first_b = start.epoch0, start.batch0
        self.images_before, self.seconds_before = start.images, start.train_seconds
        self.losses = list(start.partial)  # the epoch's finite losses read back so far (a resumed epoch's included)
        self.flushed = self.end_b = start.batch0  # batches [first_b, flushed) are read back; [first_b, end_b) trained
        self.sizes: list[int] = []  # images of each batch trained here
        self.images_read = 0  # images of the batches read back
        self.stopped, self.oom, self.bad = False, False, None
        self.t0 = self.last_flush = time.perf_counter()
        self.seconds = 0.0

    @property
    def images(self) -> int:
        return sum(self.sizes)

    def position(self) -> Position:
        return Position(self.epoch0, self.end_b, self.images_before + self.images_read,
                        self.seconds_before + self.seconds, self.losses)

    def run(self) -> None:
        t, s, cfg = self.trainer, self.s, self.trainer.cfg
        cohort = s.cohort
        batches = s.train.train_epoch(self.epoch0, cfg.batch_size, cfg.seed, cfg.augment, s.drop_last, self.first_b,
                                      part=(cohort.rank, cohort.world_size))
        try:
            for b, (x, y) in enumerate(batches, start=self.first_b):
                batch = s.train.batch_length(b, cfg.batch_size)
                self.losses_dev[b] = t.train_step(s, x, y, batch)
                self.sizes.append(batch)
                self.end_b = b + 1
                wants_stop = t.should_stop()
                if wants_stop and not cohort.distributed:
                    self.stopped = True
                    break
                if self.flush_due():
                    self.flush(wants_stop)  # with several ranks, a stop any rank wants is the stop of all, here
                    if self.bad is not None or self.stopped:
                        break
                    t.maybe_save_resume(s, self.position())
            if self.bad is None:
                self.flush(cohort.distributed and t.should_stop())
        except torch.cuda.OutOfMemoryError:  # also torch.OutOfMemoryError on torch >= 2.5
            if s.device.type == "cuda":
                torch.cuda.empty_cache()  # the app lives on: give the failed batch's memory back to the GPU
            self.oom = True
        self.seconds = time.perf_counter() - self.t0

    def flush_due(self) -> bool:
        """One rank: every FLUSH_SECONDS. Several: every flush_batches batches, a number every rank computes alike
        from the last read-back, so that all of them read back (and all-reduce) after the same batch."""
        if self.s.cohort.distributed:
            return self.end_b - self.flushed >= self.trainer.flush_batches
        return time.perf_counter() - self.last_flush >= FLUSH_SECONDS

    def flush(self, wants_stop: bool = False) -> None:
        """Read back the losses of batches [flushed, end_b) in one transfer and emit them; note the first bad batch,
        and (several ranks) whether any rank wants to stop."""
        if self.end_b <= self.flushed and not self.s.cohort.distributed:  # several ranks read back together, always
            return
        cfg, sched, nb = self.trainer.cfg, self.s.scheduler, self.s.steps_per_epoch
        vals = self._read_back(wants_stop)
        self.seconds = time.perf_counter() - self.t0
        now = self.seconds_before + self.seconds
        events: list[ev.Event] = []
        for bi, loss in enumerate(vals, start=self.flushed):
            self.images_read += self.sizes[bi - self.first_b]
            lr = cfg.lr * sched.lr_lambdas[0](self.epoch0 * nb + bi)
            events.append(ev.BatchEnd(self.epoch0 + 1, bi + 1, loss, self.images_before + self.images_read, now, lr))
            if not math.isfinite(loss) or loss > DIVERGED_LOSS:
                self.bad = bi
                break
            self.losses.append(loss)
        system = self.trainer.system.due(SYSTEM_RECORD_SECONDS) if self.trainer.system is not None else None
        watch = self.trainer.compile_watch
        notices = [ev.Notice(text, "warning") for text in watch.take()] if watch is not None else []
        self.trainer.emit_many(events + (self.lens.read() if self.lens is not None else []) + ([system] if system else []) + notices)
        self.flushed = self.end_b if self.bad is None else self.bad + 1

    def _read_back(self, wants_stop: bool) -> list[float]:
        """The losses of batches [flushed, end_b) in one transfer. With several ranks they are summed over the ranks
        in one all-reduce, which also carries whether any rank wants to stop and how long the ranks took since the
        last read-back: from that every rank computes the same number of batches to the next one."""
        cohort, clock = self.s.cohort, time.perf_counter()
        vals, stop, seconds = cohort.reduce_flush(self.losses_dev[self.flushed:self.end_b], wants_stop, clock - self.last_flush)
        self.last_flush = clock
        if cohort.distributed:
            self.stopped = self.stopped or stop
            per_batch = seconds / max(self.end_b - self.flushed, 1)
            self.trainer.flush_batches = max(1, min(MAX_FLUSH_BATCHES, round(FLUSH_SECONDS / per_batch) if per_batch > 0 else 1))
        return vals


def train(cfg: TrainConfig, run_dir: str | Path, emit: Emit, should_stop: Callable[[], bool] = lambda: False,
          resume: bool = False, splits: tuple[Split, Split] | None = None, cohort: Cohort | None = None) -> ev.RunEnd:
    return Trainer(cfg, run_dir, emit, should_stop, resume, splits, cohort).run_training()

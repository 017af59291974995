"""What both front ends do, engine-side: resolve what to evaluate (a file, a URL, the lab's published
checkpoint, a run directory or its best epoch), evaluate it, and pick the device type a preset is for.

`resnet-tui evaluate` (headless and app) and the app's Evaluate screen call these, so the checks, the
order in which they fail and their one-line errors are the same everywhere. Importing this module
imports no torch: choosing by training loss and every check on the inputs stay fast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from resnet_tui.core.config import TrainConfig
from resnet_tui.core.errors import UserError
from resnet_tui.core.runs import CHECKPOINT_DIR, METRICS_NAME, RunDir, epoch_train_losses

if TYPE_CHECKING:
    from resnet_tui.core.data import Split
    from resnet_tui.core.evaluate import EvalResult

BEST_BY = ("train_loss", "eval_loss")
CHECKPOINT_KINDS = "a .pth file, an http(s) URL, a run directory, or --pretrained"


# ---------------------------------------------------------------- the best epoch checkpoint of a run


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

    @property
    def optimistic(self) -> bool:
        """Chosen by its loss on the test images it is then reported on."""
        return self.by == "eval_loss"

    def to_json(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "checkpoint": str(self.path), "by": self.by, "value": self.value,
                "losses": {str(e): v for e, v in self.losses.items()}}


def best_candidates(run_dir: str | Path, by: str = "train_loss") -> dict[int, Path]:
    """Epoch (from 1) -> checkpoint path, for the epochs `best_checkpoint` chooses among. Raises UserError."""
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


# ---------------------------------------------------------------- what to evaluate


@dataclass(frozen=True)
class EvalSource:
    """What to evaluate: `checkpoint` (a .pth path or an http(s) URL), or with `best_by` the run directory
    whose best epoch checkpoint by that loss is evaluated."""

    checkpoint: str
    best_by: str | None = None


def resolve_source(checkpoint: str | None, pretrained: bool = False, best: bool = False, by: str | None = None,
                   what: str = "CHECKPOINT") -> EvalSource:
    """`resnet-tui evaluate [CHECKPOINT] [--pretrained] [--best [--by LOSS]]` as an EvalSource. A run directory
    without --best means its last epoch checkpoint. `what` names CHECKPOINT in the errors (the app: "checkpoint").
    Raises UserError; reads no checkpoint (a bad file fails when it is evaluated, before the data is loaded)."""
    best_by = _best_by(best, by, checkpoint, pretrained)
    if best_by is not None:
        return EvalSource(str(Path(str(checkpoint)).expanduser()), best_by)
    return EvalSource(_checkpoint_path(checkpoint, pretrained, what))


def _best_by(best: bool, by: str | None, checkpoint: str | None, pretrained: bool) -> str | None:
    """The --best criterion, or None without --best. Errors: --by without --best, an unknown --by, no run directory."""
    if by is not None and _loss_name(by) not in BEST_BY:
        raise UserError(f"--by: got {by!r}, expected one of {', '.join(BEST_BY)}")
    if not best:
        if by is not None:
            raise UserError(f"--by: got {by!r} without --best, expected it only with --best")
        return None
    if pretrained:
        raise UserError("--best: got --pretrained, expected a run directory as CHECKPOINT (--best chooses among a run's epoch checkpoints)")
    if not checkpoint:
        raise UserError("--best: CHECKPOINT is missing, expected a run directory (--best chooses among its epoch checkpoints)")
    if not Path(checkpoint).expanduser().is_dir():
        raise UserError(f"--best: got {checkpoint!r} as CHECKPOINT, expected a run directory (--best chooses among its epoch checkpoints)")
    return _loss_name(by or "train_loss")


def _loss_name(by: str) -> str:
    return by.strip().lower().replace("-", "_")


def _checkpoint_path(checkpoint: str | None, pretrained: bool, what: str) -> str:
    """A file or URL as given, a run directory's last epoch checkpoint, or the lab's published one."""
    if pretrained and checkpoint:
        raise UserError(f"{what}: got {checkpoint!r} and --pretrained, expected one of them")
    if pretrained:
        from resnet_tui.core.checkpoint import PRETRAINED_URL  # imports torch, which evaluating it needs anyway

        return PRETRAINED_URL
    if not checkpoint:
        raise UserError(f"{what}: missing, expected {CHECKPOINT_KINDS}")
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        found = RunDir(path).list_checkpoints()
        if not found:
            raise UserError(f"{what}: got {checkpoint!r}, a folder without checkpoints/cifar10_model_epoch_N.pth")
        return str(found[-1][1])
    return checkpoint


def run_dir_of(checkpoint: str) -> Path | None:
    """The run directory a source belongs to: the folder itself, or the run above an epoch checkpoint; else None."""
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return path
    if path.parent.name == CHECKPOINT_DIR and (path.parent.parent / METRICS_NAME).exists():
        return path.parent.parent
    return None


def choose_from_metrics(source: EvalSource) -> EvalSource:
    """What can be settled before any data is loaded: by train_loss the chosen epoch checkpoint becomes the
    source (read off metrics.jsonl, no torch); by eval_loss the run is checked to have epochs to evaluate."""
    if source.best_by == "train_loss":
        chosen = best_checkpoint(source.checkpoint, "train_loss")
        assert chosen is not None  # only an eval_loss choice can be stopped
        return EvalSource(str(chosen.path))
    if source.best_by == "eval_loss":
        best_candidates(source.checkpoint, "eval_loss")
    return source


# ---------------------------------------------------------------- evaluating it


@dataclass
class Evaluation:
    """What evaluating an EvalSource gave: the checkpoint evaluated, its result, the split it was evaluated on
    (in order: the sample predictions index it), and how the checkpoint was chosen, if it was."""

    checkpoint: str
    result: "EvalResult"
    split: "Split"
    best: BestCheckpoint | None = None


def evaluate_source(
    source: EvalSource,
    load_test: Callable[[], "Split"],
    device: str = "auto",
    layers: tuple[int, int, int] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tta: bool = False,
) -> Evaluation | None:
    """Evaluate `source` on the split `load_test()` returns, on `device` (a config device: auto, cpu, cuda:N...),
    in fp32 (like the trainer's final evaluation); tta: with flip test-time augmentation.

    Everything that can be refused (the device, the run's epoch records, the checkpoint file) is checked
    before the data is loaded. By eval_loss every epoch checkpoint is evaluated and on_progress(done, total)
    counts checkpoints; otherwise it counts images. None if should_stop() ended it."""
    from resnet_tui.core.checkpoint import read_state_dict
    from resnet_tui.core.device import resolve_device
    from resnet_tui.core.evaluate import evaluate_checkpoint

    torch_device = resolve_device(device)
    checkpoint, best = source.checkpoint, None
    if source.best_by is not None:
        best_candidates(checkpoint, source.best_by)
    if source.best_by == "train_loss":
        best = best_checkpoint(checkpoint, "train_loss")
        assert best is not None
        checkpoint = str(best.path)
    if source.best_by != "eval_loss":
        read_state_dict(checkpoint)
    split = load_test()
    if source.best_by == "eval_loss":
        best = best_checkpoint(checkpoint, "eval_loss", split, torch_device, layers, on_progress, should_stop)
        if best is None:
            return None
        if not tta:
            return Evaluation(str(best.path), best.result, split, best)
        checkpoint = str(best.path)  # chosen by its plain eval loss, as recorded; then evaluated with TTA
    result = evaluate_checkpoint(checkpoint, split, torch_device, layers=layers, on_progress=on_progress,
                                 should_stop=should_stop, tta=tta)
    if result is None:
        return None
    return Evaluation(checkpoint, result, split, best)


# ---------------------------------------------------------------- presets


def preset_device_type(presets: Iterable[str], device: str = "auto") -> str:
    """The device type the presets' values are chosen for (the fast preset's batch size and lr depend on it):
    "cpu" when every preset is the lab's (which does not depend on it: no torch is imported), else the type
    of `device` ("auto": the detected one). Raises UserError for a device that is not available."""
    if all(p == "lab" for p in presets):
        return "cpu"
    from resnet_tui.core.device import resolve_device

    return resolve_device(device).type


# ---------------------------------------------------------------- several processes


def run_processes(cfg: TrainConfig) -> int:
    """How many processes train `cfg` on this machine (its gpus; "all": one per visible CUDA GPU), checked as before a
    launch: 1 trains in this process. Raises UserError naming --gpus (or the flag that several processes cannot take).
    torch is imported only for gpus other than 1."""
    if cfg.gpus == 1:
        return 1
    from resnet_tui.core.device import resolve_device
    from resnet_tui.core.distributed import check_world, processes

    device_type = resolve_device(cfg.device).type
    n = processes(cfg.gpus, device_type)
    check_world(cfg, n, device_type)
    return n


__all__ = [
    "BEST_BY", "BestCheckpoint", "EvalSource", "Evaluation", "best_candidates", "best_checkpoint", "choose_from_metrics",
    "evaluate_source", "preset_device_type", "resolve_source", "run_dir_of", "run_processes",
]


# ---------------------------------------------------------------- resuming and stopping runs

# What a resume may change: how long the run trains and how it is supervised, never how it learns.
# tta and eval_every: how the run is evaluated, not how it trains
RESUME_MAY_CHANGE = ("epochs", "device", "gpus", "on_hangup", "resume_every", "lens_every", "tta", "eval_every")


def resume_config(run_dir: str | Path, changes: dict[str, Any] | None = None) -> TrainConfig:
    """The config to resume `run_dir` with: its config.toml, with `changes` (raw flag or form values) to the
    fields in RESUME_MAY_CHANGE. Raises UserError naming the flag."""
    from resnet_tui.core.config import ConfigError, parse_field, read_toml
    from resnet_tui.core.runs import CONFIG_NAME

    run = Path(run_dir)
    cfg_path = run / CONFIG_NAME
    if not run.is_dir() or not cfg_path.exists():
        raise UserError(f"--resume: got {str(run_dir)!r}, expected a run directory with {CONFIG_NAME}")
    cfg = TrainConfig(**read_toml(cfg_path, flag="--resume"))
    changes = dict(changes or {})
    if set(changes) - set(RESUME_MAY_CHANGE):
        allowed = ", ".join("--" + k.replace("_", "-") for k in RESUME_MAY_CHANGE)
        raise UserError(f"--resume: only {allowed} can change when resuming (got {', '.join('--' + k.replace('_', '-') for k in changes)})")
    try:
        return cfg.replace(**{k: parse_field(k, v) for k, v in changes.items()})
    except ConfigError as e:
        raise UserError(e.as_flag()) from None

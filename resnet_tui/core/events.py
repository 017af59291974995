"""What the training loop tells its front ends. Plain data: the headless printer, the app and
metrics.jsonl all consume the same events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class EvalResult:
    """An evaluation: on the test split at the end of training, or of any checkpoint (resnet_tui.core.evaluate)."""

    nll: float
    accuracy: float
    n: int
    classes: list[str]
    confusion: list[list[int]]  # rows: true class, columns: predicted class
    precision: list[float]
    recall: list[float]
    f1: list[float]
    predictions: list[int]  # empty when read back from metrics.jsonl (it keeps the summary, not each prediction)
    labels: list[int]
    tta: bool = False  # test-time augmentation (flip) was used
    # each image's class probabilities, an (n, classes) float32 numpy array; in memory only (never in metrics.jsonl)
    probabilities: Any = None

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "nll": self.nll, "n": self.n, "classes": self.classes, "confusion": self.confusion}

    def per_class(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1}


@dataclass
class TrainStart:
    config: dict[str, Any]
    run_dir: str
    device: str  # e.g. "NVIDIA H100 (CUDA)" or "CPU (2 threads)"
    param_count: int
    n_train: int
    n_test: int
    batches_per_epoch: int
    start_epoch: int = 1  # counted from 1; > 1 or start_batch > 1 when resuming
    start_batch: int = 1
    notices: list[str] = field(default_factory=list)
    time_utc: str = ""  # when this process started training, "YYYY-MM-DD HH:MM:SS" in UTC
    resumed: bool = False  # continues a run from its resume state, at (start_epoch, start_batch)
    world_size: int = 1  # processes training the run together (torch.distributed)

    @property
    def resumed_at(self) -> tuple[int, int] | None:
        """(epoch, batch) this process started at when it resumed a run; None for a fresh run."""
        return (self.start_epoch, self.start_batch) if self.resumed else None


@dataclass
class BatchEnd:
    epoch: int  # from 1
    batch: int  # from 1, within the epoch
    loss: float
    images: int  # images trained so far in this run, resumed parts included
    time: float  # seconds of training so far
    lr: float


@dataclass
class EpochEnd:
    epoch: int
    train_loss: float  # mean of the epoch's mini-batch losses
    seconds: float
    images_per_sec: float


@dataclass
class CheckpointSaved:
    epoch: int  # from 1; the file name counts from 0, as in the lab
    path: str


@dataclass
class EvalProgress:
    done: int
    total: int


@dataclass
class EvalEnd:
    epoch: int | None
    result: EvalResult


@dataclass
class Notice:
    text: str
    level: str = "info"  # info | warning | error


@dataclass
class RunEnd:
    status: str  # finished | interrupted | diverged | failed
    images_per_sec: float
    train_seconds: float
    message: str = ""
    epochs_done: int = 0
    world_size: int = 1
    rank_images_per_sec: list[float] = field(default_factory=list)  # each process's own throughput, by rank


@dataclass
class LensMeasure:
    """The residual lens at one optimizer step (resnet_tui.core.lens): per row (stem, blocks, fc), each quantity."""

    epoch: int  # from 1
    batch: int  # from 1, within the epoch
    step: int  # optimizer steps from the run's start, this one included
    blocks: list[str]  # row names: "stem", "layer1.0", ..., "fc"
    values: dict[str, list[float]]  # quantity ("ratio", "grad", "mean", "std") -> one value per row; NaN: none


@dataclass
class GpuSample:
    """One GPU as NVIDIA's management library reads it; a field is None when the driver does not report it."""

    index: int  # NVML's index (nvidia-smi's numbering)
    name: str
    util: float | None  # percent of the last sample period a kernel ran
    mem_used: int | None  # bytes
    mem_total: int | None  # bytes
    power_w: float | None
    temp_c: float | None


@dataclass
class SystemSample:
    """The machine at one moment (resnet_tui.core.system): the training process, the host and its GPUs."""

    time: float  # unix seconds
    process_cpu: float | None  # percent of one core (200 = two cores busy); None when the process is gone
    process_rss: int | None  # bytes
    host_cpu: float  # percent of the whole machine
    host_ram_used: int  # bytes
    host_ram_total: int  # bytes
    gpus: list[GpuSample] = field(default_factory=list)
    gpu_note: str = ""  # "" when the GPUs were read; else why not ("no CUDA device", "no NVIDIA driver (...)")


Event = TrainStart | BatchEnd | EpochEnd | CheckpointSaved | EvalProgress | EvalEnd | Notice | RunEnd | LensMeasure | SystemSample

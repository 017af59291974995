"""What a front end knows about one training run, folded from its events (live or read back from metrics.jsonl).

Plain Python, no widgets: the Train screen and the run viewer both render from it, and tests check it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

from resnet_tui.core import events as ev


@dataclass
class RunProgress:
    start: ev.TrainStart | None = None
    epochs: int = 0
    batches_per_epoch: int = 0
    batch_size: int = 0
    epoch: int = 0  # the current epoch, from 1
    batch: int = 0  # batches finished in the current epoch
    batches_done: int = 0  # over the whole run, resumed parts included
    xs: list[float] = field(default_factory=list)  # position in epochs: batch b of epoch e is (e - 1) + b / nb
    losses: list[float] = field(default_factory=list)  # finite per-batch losses, in order
    epoch_losses: dict[int, float] = field(default_factory=dict)  # epoch -> mean train loss
    images_per_sec: float = 0.0
    eval_done: int = 0
    eval_total: int = 0
    eval_result: object | None = None  # evaluate.EvalResult
    eval_epoch: int | None = None
    end: ev.RunEnd | None = None
    checkpoints: list[ev.CheckpointSaved] = field(default_factory=list)
    notices: list[ev.Notice] = field(default_factory=list)
    _ref_time: float = 0.0  # training seconds, batches and images done when this process started measuring speed
    _ref_batches: int = 0
    _ref_images: int = 0
    _last_time: float = 0.0
    _measuring: bool = False

    @property
    def total_batches(self) -> int:
        return self.epochs * self.batches_per_epoch

    @property
    def fraction(self) -> float:
        return self.batches_done / self.total_batches if self.total_batches else 0.0

    @property
    def running(self) -> bool:
        return self.start is not None and self.end is None

    @property
    def eta_seconds(self) -> float:
        """Training time left at the speed measured so far (the final evaluation is not included)."""
        done = self.batches_done - self._ref_batches
        elapsed = self._last_time - self._ref_time
        if done <= 0 or elapsed <= 0:
            return float("nan")
        return (self.total_batches - self.batches_done) * elapsed / done

    def apply_all(self, events: Iterable[ev.Event]) -> None:
        for e in events:
            self.apply(e)

    def apply(self, e: ev.Event) -> None:
        if isinstance(e, ev.BatchEnd):
            self._batch(e)
        elif isinstance(e, ev.TrainStart):
            self.start = e
            self.epochs = int(e.config.get("epochs", 0))
            self.batch_size = int(e.config.get("batch_size", 0))
            self.batches_per_epoch = e.batches_per_epoch
            self.epoch, self.batch = e.start_epoch, e.start_batch - 1
            self.batches_done = (e.start_epoch - 1) * e.batches_per_epoch + e.start_batch - 1
            self._measuring = False
            self.end = None
        elif isinstance(e, ev.EpochEnd):
            self.epoch_losses[e.epoch] = e.train_loss
        elif isinstance(e, ev.CheckpointSaved):
            self.checkpoints.append(e)
        elif isinstance(e, ev.EvalProgress):
            self.eval_done, self.eval_total = e.done, e.total
        elif isinstance(e, ev.EvalEnd):
            self.eval_result, self.eval_epoch = e.result, e.epoch
            n = getattr(e.result, "n", 0)
            self.eval_done = self.eval_total = n
        elif isinstance(e, ev.Notice):
            self.notices.append(e)
        elif isinstance(e, ev.RunEnd):
            self.end = e
            if e.images_per_sec > 0:
                self.images_per_sec = e.images_per_sec

    def _batch(self, e: ev.BatchEnd) -> None:
        if not self._measuring:
            # Speed counts from the first batch this process sees: a fresh run starts at 0 s; a resumed or
            # watched run starts wherever it was, so its earlier time is not counted again.
            fresh = e.epoch == 1 and e.batch == 1
            self._ref_time = 0.0 if fresh else e.time
            self._ref_batches = 0 if fresh else (e.epoch - 1) * self.batches_per_epoch + e.batch
            self._ref_images = 0 if fresh else e.images
            self._measuring = True
        self.epoch, self.batch = e.epoch, e.batch
        self.batches_done = (e.epoch - 1) * self.batches_per_epoch + e.batch
        self._last_time = e.time
        if math.isfinite(e.loss):
            nb = self.batches_per_epoch or 1
            self.xs.append((e.epoch - 1) + e.batch / nb)
            self.losses.append(e.loss)
        elapsed = e.time - self._ref_time
        if elapsed > 0:
            self.images_per_sec = (e.images - self._ref_images) / elapsed

"""What a front end knows about one training run, folded from its events (live or read back from metrics.jsonl).

Plain Python, no widgets: the Train screen and the run viewer both render from it, and tests check it directly.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable

from resnet_tui.core import events as ev

# The header's rate and ETA are measured over about this many seconds of training, so they follow the run's
# speed as it is now (a GPU warming up, another job starting) instead of its average since the start.
RATE_WINDOW_SECONDS = 5.0


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
    lrs: list[float] = field(default_factory=list)  # the learning rate of each of those batches
    epoch_losses: dict[int, float] = field(default_factory=dict)  # epoch -> mean train loss
    images_per_sec: float = 0.0  # the run's average since this process started measuring (the end record's, once ended)
    eval_done: int = 0
    eval_total: int = 0
    evaluating: bool = False  # an evaluation reported progress and has not ended yet
    eval_result: object | None = None  # evaluate.EvalResult, the latest
    eval_epoch: int | None = None
    evals: dict[int, tuple[float, float]] = field(default_factory=dict)  # epoch -> (eval NLL, accuracy)
    end: ev.RunEnd | None = None
    checkpoints: list[ev.CheckpointSaved] = field(default_factory=list)
    notices: list[ev.Notice] = field(default_factory=list)
    _ref_time: float = 0.0  # training seconds, batches and images done when this process started measuring speed
    _ref_batches: int = 0
    _ref_images: int = 0
    _last_time: float = 0.0
    _measuring: bool = False
    _recent: deque[tuple[float, int, int]] = field(default_factory=deque)  # (time, images, batches_done) of recent batches

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
    def recent_images_per_sec(self) -> float:
        """Images per second over the last RATE_WINDOW_SECONDS of training (the average until two times are known)."""
        span = self._recent_span()
        if span is None:
            return self.images_per_sec
        seconds, images, _ = span
        return images / seconds

    @property
    def eta_seconds(self) -> float:
        """Training time left at the recent speed (the evaluations are not included); NaN while unknown."""
        span = self._recent_span()
        if span is not None and span[2] > 0:
            seconds, _, batches = span
            return (self.total_batches - self.batches_done) * seconds / batches
        done = self.batches_done - self._ref_batches
        elapsed = self._last_time - self._ref_time
        if done <= 0 or elapsed <= 0:
            return float("nan")
        return (self.total_batches - self.batches_done) * elapsed / done

    def _recent_span(self) -> tuple[float, int, int] | None:
        """(seconds, images, batches) between the oldest and the newest recent batch; None if no time passed."""
        if len(self._recent) < 2:
            return None
        (t0, images0, batches0), (t1, images1, batches1) = self._recent[0], self._recent[-1]
        if t1 <= t0:
            return None
        return t1 - t0, images1 - images0, batches1 - batches0

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
            self._recent.clear()
            self.end = None
        elif isinstance(e, ev.EpochEnd):
            self.epoch_losses[e.epoch] = e.train_loss
        elif isinstance(e, ev.CheckpointSaved):
            self.checkpoints.append(e)
        elif isinstance(e, ev.EvalProgress):
            self.eval_done, self.eval_total, self.evaluating = e.done, e.total, True
        elif isinstance(e, ev.EvalEnd):
            self._eval(e)
        elif isinstance(e, ev.Notice):
            self.notices.append(e)
        elif isinstance(e, ev.RunEnd):
            self.end = e
            self.evaluating = False
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
            if fresh:
                self._recent.append((0.0, 0, 0))
        self.epoch, self.batch = e.epoch, e.batch
        self.batches_done = (e.epoch - 1) * self.batches_per_epoch + e.batch
        self._last_time = e.time
        if math.isfinite(e.loss):
            nb = self.batches_per_epoch or 1
            self.xs.append((e.epoch - 1) + e.batch / nb)
            self.losses.append(e.loss)
            self.lrs.append(e.lr)
        elapsed = e.time - self._ref_time
        if elapsed > 0:
            self.images_per_sec = (e.images - self._ref_images) / elapsed
        self._note_rate(e.time, e.images, self.batches_done)

    def _note_rate(self, t: float, images: int, batches: int) -> None:
        """Keep the batches of the last RATE_WINDOW_SECONDS, and the last one before them (the window's start).
        Batches read back together share one time: the rate spans whole read-backs, so that does not matter."""
        recent = self._recent
        if recent and t < recent[-1][0]:  # time went back (records of another process): measure afresh
            recent.clear()
        recent.append((t, images, batches))
        while len(recent) > 2 and recent[1][0] <= t - RATE_WINDOW_SECONDS:
            recent.popleft()

    def _eval(self, e: ev.EvalEnd) -> None:
        self.eval_result, self.eval_epoch = e.result, e.epoch
        n = getattr(e.result, "n", 0)
        self.eval_done = self.eval_total = n
        self.evaluating = False
        epoch = e.epoch if e.epoch is not None else self.epoch  # an evaluation of no stated epoch: the current one
        nll, accuracy = getattr(e.result, "nll", math.nan), getattr(e.result, "accuracy", math.nan)
        if epoch:
            self.evals[epoch] = (float(nll), float(accuracy))

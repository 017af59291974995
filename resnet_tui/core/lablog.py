"""The lab's log lines, made from training events: `[LOG 20261128-10:00:00] epoch: 1, batch: 17 train-loss: 2.0712`.

One formatter for every place they go: RUN/train.log (written by the trainer for every run, so nothing
printed is ever lost with a terminal), the headless CLI in a pipe, and the app's log panel.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from resnet_tui.core import events as ev
from resnet_tui.core.system import summary as system_summary


def lab_time() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S")


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def lab_batch_line(e: ev.BatchEnd) -> str:
    return f"[LOG {lab_time()}] epoch: {e.epoch}, batch: {e.batch} train-loss: {e.loss:.4f}"


def lab_lines(e: ev.Event, last_epoch: int | None = None, system: ev.SystemSample | None = None) -> list[str]:
    """The lines an event prints in the lab's format (none for evaluation progress). last_epoch: the run's epochs
    (from its start event); an evaluation after an earlier epoch is one during training, and its line names the epoch.
    system: the machine's last sample, which an epoch's line ends with (`· gpu 97% 11.2/79.6 GiB ...`)."""
    t = f"[LOG {lab_time()}]"
    if isinstance(e, ev.TrainStart):
        c = e.config
        lines = [
            f"{t} run dir: {e.run_dir}",
            f"{t} device: {e.device}; ResNet layers {','.join(map(str, c['layers']))}"
            f"{'' if c['skip'] else ' (no skip)'}: {e.param_count:,} parameters",
            f"{t} data: {e.n_train:,} training and {e.n_test:,} test images; "
            f"{e.batches_per_epoch} mini-batches of {c['batch_size']} per epoch",
            f"{t} preset {c['preset']}: {c['optimizer']} lr {c['lr']:g}, momentum {c['momentum']:g}, "
            f"weight decay {c['weight_decay']:g}, {c['epochs']} epoch(s), seed {c['seed']}",
        ]
        if e.start_epoch > 1 or e.start_batch > 1:
            lines.append(f"{t} resuming at epoch {e.start_epoch}, batch {e.start_batch}")
        return lines
    if isinstance(e, ev.Notice):
        return [f"[{e.level.upper()}] {e.text}"]
    if isinstance(e, ev.BatchEnd):
        return [lab_batch_line(e)]
    if isinstance(e, ev.EpochEnd):
        machine = f" · {system_summary(system)}" if system is not None else ""
        return [f"{t} epoch: {e.epoch} train-loss: {e.train_loss:.4f} ({fmt_duration(e.seconds)}, {e.images_per_sec:,.0f} images/s)"
                + machine]
    if isinstance(e, ev.CheckpointSaved):
        return [f"{t} checkpoint saved: {e.path}"]
    if isinstance(e, ev.EvalEnd):
        r = e.result
        during = e.epoch is not None and last_epoch is not None and e.epoch < last_epoch
        return [f"{t} {f'epoch {e.epoch} ' if during else ''}eval-loss: {r.nll:.4f} accuracy: {r.accuracy:.2%} ({r.n:,} test images)"]
    if isinstance(e, ev.RunEnd):
        lines = [f"{t} {e.status}: {e.images_per_sec:,.1f} training images/s over {fmt_duration(e.train_seconds)}"]
        if e.message:
            lines.append(f"{t} {e.message}")
        return lines
    return []


class LabLogWriter:
    """Appends the lab's lines of every event to RUN/train.log, flushed with each call."""

    def __init__(self, path: str | Path) -> None:
        self._f = open(path, "a", encoding="utf-8")
        self._epochs: int | None = None  # the run's, from its start event
        self._system: ev.SystemSample | None = None  # the machine's last sample

    def write_many(self, events: Iterable[ev.Event]) -> None:
        lines: list[str] = []
        for e in events:
            if isinstance(e, ev.TrainStart):
                self._epochs = int(e.config["epochs"])
            elif isinstance(e, ev.SystemSample):
                self._system = e
            lines += lab_lines(e, self._epochs, self._system)
        text = "".join(line + "\n" for line in lines)
        if text:
            self._f.write(text)
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()

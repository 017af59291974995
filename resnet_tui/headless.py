"""The headless front end: prints training events for pipes (the lab's log lines) or terminals (a rich progress bar)."""

from __future__ import annotations

import math
import sys
from datetime import datetime, timezone
from typing import IO, Any

from resnet_tui.core import events as ev


def lab_time() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H:%M:%S")


def lab_batch_line(e: ev.BatchEnd) -> str:
    return f"[LOG {lab_time()}] epoch: {e.epoch}, batch: {e.batch} train-loss: {e.loss:.4f}"


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class HeadlessPrinter:
    """Consumes training events. `live` (stdout is a terminal) shows a progress bar instead of a line per batch."""

    def __init__(self, out: IO[str] | None = None, live: bool | None = None):
        self.out = out or sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.progress: Any = None
        self.task: Any = None
        self.start: ev.TrainStart | None = None
        self.total_batches = 0
        self.done_batches = 0

    def line(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.out, flush=True)

    def __call__(self, e: ev.Event) -> None:
        if isinstance(e, ev.TrainStart):
            self.start = e
            self.total_batches = int(e.config["epochs"]) * e.batches_per_epoch
            self.done_batches = (e.start_epoch - 1) * e.batches_per_epoch + (e.start_batch - 1)
            c = e.config
            self.line(f"[LOG {lab_time()}] run dir: {e.run_dir}")
            self.line(f"[LOG {lab_time()}] device: {e.device}; ResNet layers {','.join(map(str, c['layers']))}"
                      f"{'' if c['skip'] else ' (no skip)'}: {e.param_count:,} parameters")
            self.line(f"[LOG {lab_time()}] data: {e.n_train:,} training and {e.n_test:,} test images; "
                      f"{e.batches_per_epoch} mini-batches of {c['batch_size']} per epoch")
            self.line(f"[LOG {lab_time()}] preset {c['preset']}: {c['optimizer']} lr {c['lr']:g}, momentum {c['momentum']:g}, "
                      f"weight decay {c['weight_decay']:g}, {c['epochs']} epoch(s), seed {c['seed']}")
            if e.start_epoch > 1 or e.start_batch > 1:
                self.line(f"[LOG {lab_time()}] resuming at epoch {e.start_epoch}, batch {e.start_batch}")
            if self.live:
                self._start_progress()
        elif isinstance(e, ev.Notice):
            self.line(f"[{e.level.upper()}] {e.text}")
        elif isinstance(e, ev.BatchEnd):
            self.done_batches += 1
            if self.progress is not None:
                self.progress.update(self.task, completed=self.done_batches, loss=e.loss, epoch=e.epoch,
                                     ips=e.images / e.time if e.time > 0 else 0.0)
            else:
                print(lab_batch_line(e), file=self.out, flush=True)
        elif isinstance(e, ev.EpochEnd):
            self.line(f"[LOG {lab_time()}] epoch: {e.epoch} train-loss: {e.train_loss:.4f} "
                      f"({fmt_duration(e.seconds)}, {e.images_per_sec:,.0f} images/s)")
        elif isinstance(e, ev.CheckpointSaved):
            self.line(f"[LOG {lab_time()}] checkpoint saved: {e.path}")
        elif isinstance(e, ev.EvalEnd):
            r = e.result
            self.line(f"[LOG {lab_time()}] eval-loss: {r.nll:.4f} accuracy: {r.accuracy:.2%} ({r.n:,} test images)")
        elif isinstance(e, ev.RunEnd):
            self._stop_progress()
            self.line(f"[LOG {lab_time()}] {e.status}: {e.images_per_sec:,.1f} training images/s over {fmt_duration(e.train_seconds)}")
            if e.message:
                self.line(f"[LOG {lab_time()}] {e.message}")

    def _start_progress(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TextColumn("{task.fields[ips]:,.0f} img/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.out),
            transient=False,
        )
        self.progress.start()
        assert self.start is not None
        self.task = self.progress.add_task("train", total=self.total_batches, completed=self.done_batches,
                                           loss=float("nan"), epoch=self.start.start_epoch, ips=0.0)

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def close(self) -> None:
        self._stop_progress()

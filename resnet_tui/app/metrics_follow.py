"""Following a run through its metrics.jsonl: read only new complete lines, turn records back into engine events.

Used by watch mode and the Runs screen's run viewer. Another process may be writing the file, so a
line without its newline is left for the next poll (it may be half-written).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from resnet_tui.core import events as ev


class MetricsFollower:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offset = 0

    def read_new(self) -> list[dict[str, Any]]:
        """The records appended since the last call."""
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            return []
        if size < self.offset:  # the file was replaced or truncated: read it again from the start
            self.offset = 0
        if size == self.offset:
            return []
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(size - self.offset)
        except OSError:
            return []
        end = data.rfind(b"\n")
        if end < 0:
            return []
        self.offset += end + 1
        records = []
        for line in data[: end + 1].splitlines():
            try:
                obj = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue  # a damaged line is skipped, as runs.iter_metrics does
            if isinstance(obj, dict) and "event" in obj:
                records.append(obj)
        return records


def _eval_result(rec: dict[str, Any]) -> Any:
    from resnet_tui.core.evaluate import EvalResult

    classes = list(rec.get("classes") or [])
    k = len(classes)
    return EvalResult(
        nll=float(rec.get("nll", float("nan"))),
        accuracy=float(rec.get("accuracy", 0.0)),
        n=int(rec.get("n", 0)),
        classes=classes,
        confusion=rec.get("confusion") or [[0] * k for _ in range(k)],
        precision=rec.get("precision") or [0.0] * k,
        recall=rec.get("recall") or [0.0] * k,
        f1=rec.get("f1") or [0.0] * k,
        predictions=[],  # metrics.jsonl keeps the summary, not each prediction
        labels=[],
    )


def event_from_record(rec: dict[str, Any], run_dir: str | Path = "") -> ev.Event | None:
    """The engine event a metrics.jsonl record was written for (None for records the app does not show)."""
    kind = rec.get("event")
    try:
        if kind == "batch":
            loss = rec.get("loss")
            return ev.BatchEnd(int(rec["epoch"]), int(rec["batch"]), float("nan") if loss is None else float(loss),
                               int(rec.get("images", 0)), float(rec.get("time", 0.0)), float(rec.get("lr", 0.0)))
        if kind == "start":
            resumed = rec.get("resumed_at") or {}
            from resnet_tui.core.config import TrainConfig

            config = {**TrainConfig().to_dict(), **dict(rec.get("config") or {})}  # keys a newer or older writer lacks
            return ev.TrainStart(
                config=config, run_dir=str(run_dir), device=str(rec.get("device", "?")),
                param_count=int(rec.get("param_count", 0)), n_train=int(rec.get("n_train", 0)), n_test=int(rec.get("n_test", 0)),
                batches_per_epoch=int(rec.get("batches_per_epoch", 0)),
                start_epoch=int(resumed.get("epoch", 1)), start_batch=int(resumed.get("batch", 1)),
            )
        if kind == "epoch":
            return ev.EpochEnd(int(rec["epoch"]), float(rec.get("train_loss", float("nan"))), float(rec.get("seconds", 0.0)),
                               float(rec.get("images_per_sec", 0.0)))
        if kind == "checkpoint":
            path = Path(str(rec.get("path", "")))
            return ev.CheckpointSaved(int(rec["epoch"]), str(path if path.is_absolute() else Path(run_dir) / path))
        if kind == "eval":
            return ev.EvalEnd(rec.get("epoch"), _eval_result(rec))
        if kind == "notice":
            return ev.Notice(str(rec.get("text", "")), "warning")
        if kind == "end":
            return ev.RunEnd(str(rec.get("status", "unknown")), float(rec.get("images_per_sec", 0.0)),
                             float(rec.get("train_seconds", 0.0)), str(rec.get("message", "")))
    except (KeyError, TypeError, ValueError):
        return None  # a record from another version, or damaged: skip it rather than stop following
    return None

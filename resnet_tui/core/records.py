"""metrics.jsonl, owned in one place. The trainer emits events; this module turns them into records (to_record)
and lines (RecordWriter), and turns lines back into validated events (from_record, read_run).

The format is public and stable (README, "Run directory"): one JSON object per line, each with an "event" key:

    start       time_utc, device, param_count, n_train, n_test, batches_per_epoch, resumed_at, config
    batch       epoch, batch, loss, images, time, lr
    epoch       epoch, train_loss, seconds, images_per_sec
    checkpoint  epoch, path (relative to the run directory)
    eval        epoch, accuracy, nll, n, classes, confusion, precision, recall, f1, tta (always in fp32; tta: flip
                test-time augmentation; records before it existed read as false)
    notice      text
    end         status, images_per_sec, train_seconds, message
    lens        epoch, batch, step, blocks, ratio, grad, mean, std (one value per block, null where none)
    system      time (unix seconds), process_cpu (% of one core), process_rss, host_cpu (% of the machine),
                host_ram_used, host_ram_total (bytes), gpus [{index, name, util (%), mem_used, mem_total (bytes),
                power_w, temp_c}], gpu_note (why there are no GPUs, "" when they were read); null where not known.
                About every 10 s while training, from a thread that samples off the training loop.

A loss that is not finite is written as null. Reading never raises on a file's content: a line that is not
UTF-8, not JSON, or not a record of the right shape and types is skipped and counted. A resumed run's start
record carries resumed_at {"epoch": E, "batch": B}: the records it supersedes (batches at or after (E, B),
and epoch, checkpoint and eval records of epochs >= E, all written before it by the abandoned continuation)
are dropped when read, so every batch appears once.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from resnet_tui.core import events as ev

METRICS_NAME = "metrics.jsonl"  # the same name as runs.METRICS_NAME (runs imports this module, not the reverse)
KINDS: dict[type, str] = {
    ev.TrainStart: "start", ev.BatchEnd: "batch", ev.EpochEnd: "epoch", ev.CheckpointSaved: "checkpoint",
    ev.EvalEnd: "eval", ev.Notice: "notice", ev.RunEnd: "end", ev.LensMeasure: "lens",
    ev.SystemSample: "system",
}
LENS_QUANTITIES = ("ratio", "grad", "mean", "std")  # resnet_tui.core.lens.QUANTITIES (that module imports torch)
MAX_LENS_ROWS = 3 * 64 + 2  # stem, at most 64 blocks a stage, fc
MAX_INT = 2**53  # larger integers cannot be positions or counts, and overflow float arithmetic
MAX_GPUS = 256  # more GPUs than any one machine has: a damaged or hostile record


def kind_of(event: ev.Event) -> str | None:
    """The record kind ("start", "batch", ...) an event is written as; None for events that are not recorded."""
    return KINDS.get(type(event))


# ---------------------------------------------------------------- events -> records


def _loss(x: float) -> float | None:
    return x if math.isfinite(x) else None  # strict JSON has no NaN or Infinity


def _relative(path: str, run_dir: str | Path | None) -> str:
    if run_dir is None:
        return path
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return path


def to_record(event: ev.Event, run_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The metrics.jsonl record of an event (None for EvalProgress, which is not recorded).
    run_dir: a checkpoint's path is written relative to it."""
    e = event
    if isinstance(e, ev.TrainStart):
        return {"event": "start", "time_utc": e.time_utc, "device": e.device, "param_count": e.param_count,
                "n_train": e.n_train, "n_test": e.n_test, "batches_per_epoch": e.batches_per_epoch,
                "resumed_at": {"epoch": e.start_epoch, "batch": e.start_batch} if e.resumed else None,
                "world_size": e.world_size, "config": e.config}
    if isinstance(e, ev.BatchEnd):
        return {"event": "batch", "epoch": e.epoch, "batch": e.batch, "loss": _loss(e.loss), "images": e.images,
                "time": round(e.time, 4), "lr": e.lr}
    if isinstance(e, ev.EpochEnd):
        return {"event": "epoch", "epoch": e.epoch, "train_loss": _loss(e.train_loss), "seconds": round(e.seconds, 3),
                "images_per_sec": round(e.images_per_sec, 2)}
    if isinstance(e, ev.CheckpointSaved):
        return {"event": "checkpoint", "epoch": e.epoch, "path": _relative(e.path, run_dir)}
    if isinstance(e, ev.EvalEnd):
        r = e.result
        return {"event": "eval", "epoch": e.epoch, "accuracy": r.accuracy, "nll": _loss(r.nll), "n": r.n, "classes": r.classes,
                "confusion": r.confusion, "precision": r.precision, "recall": r.recall, "f1": r.f1, "tta": r.tta}
    if isinstance(e, ev.Notice):
        return {"event": "notice", "text": e.text}
    if isinstance(e, ev.LensMeasure):
        return {"event": "lens", "epoch": e.epoch, "batch": e.batch, "step": e.step, "blocks": e.blocks,
                **{q: [_lens_value(x) for x in e.values.get(q, [])] for q in LENS_QUANTITIES}}
    if isinstance(e, ev.SystemSample):
        return _system_record(e)
    if isinstance(e, ev.RunEnd):
        return {"event": "end", "status": e.status, "images_per_sec": round(e.images_per_sec, 2),
                "train_seconds": round(e.train_seconds, 3), "message": e.message, "world_size": e.world_size,
                "rank_images_per_sec": [round(x, 2) for x in e.rank_images_per_sec]}
    return None


def _system_record(e: ev.SystemSample) -> dict[str, Any]:
    return {"event": "system", "time": round(e.time, 3), "process_cpu": _round(e.process_cpu, 1), "process_rss": e.process_rss,
            "host_cpu": round(e.host_cpu, 1), "host_ram_used": e.host_ram_used, "host_ram_total": e.host_ram_total,
            "gpus": [{"index": g.index, "name": g.name, "util": _round(g.util, 1), "mem_used": g.mem_used, "mem_total": g.mem_total,
                      "power_w": _round(g.power_w, 1), "temp_c": _round(g.temp_c, 1)} for g in e.gpus],
            "gpu_note": e.gpu_note}


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None or not math.isfinite(x) else round(x, digits)


def _lens_value(x: float) -> float | None:
    return float(f"{x:.6g}") if math.isfinite(x) else None  # 6 digits: a diagnostic, not a weight


def to_line(event: ev.Event, run_dir: str | Path | None = None) -> str | None:
    """The event's line of metrics.jsonl, newline included (None when it is not recorded)."""
    record = to_record(event, run_dir)
    return None if record is None else json.dumps(record) + "\n"


# ---------------------------------------------------------------- records -> events


class _Bad(Exception):
    """A field of the wrong type or out of range: the record is skipped."""


_REQUIRED: Any = object()
T = TypeVar("T")


def _get(rec: dict[str, Any], key: str, default: Any, check: Callable[[Any], T]) -> T:
    if key not in rec:
        if default is _REQUIRED:
            raise _Bad(key)
        return default
    return check(rec[key])


def _int(low: int = 0) -> Callable[[Any], int]:
    def check(v: Any) -> int:
        if type(v) is not int or not low <= v <= MAX_INT:  # bool is not an int here
            raise _Bad(v)
        return v

    return check


def _number(v: Any) -> float:
    """A finite number (an int or a float, not a bool)."""
    if type(v) not in (int, float) or (type(v) is int and abs(v) > MAX_INT) or not math.isfinite(v):
        raise _Bad(v)
    return float(v)


def _loss_value(v: Any) -> float:
    """A loss: any number, non-finite included; null stands for a non-finite one."""
    if v is None:
        return math.nan
    if type(v) is float:
        return v
    return _number(v)


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise _Bad(v)
    return v


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise _Bad(v)
    return v


def _list_of(check: Callable[[Any], T]) -> Callable[[Any], list[T]]:
    def checked(v: Any) -> list[T]:
        if not isinstance(v, list):
            raise _Bad(v)
        return [check(x) for x in v]

    return checked


def _config(v: Any) -> dict[str, Any]:
    """The start record's config: the known keys validated (missing ones get their defaults), unknown keys kept."""
    from resnet_tui.core.config import FIELD_BY_NAME, ConfigError, TrainConfig, parse_field

    if not isinstance(v, dict):
        raise _Bad(v)
    try:
        known = {k: parse_field(k, x) for k, x in v.items() if k in FIELD_BY_NAME}
    except ConfigError:
        raise _Bad(v) from None
    return {**TrainConfig(**known).to_dict(), **{k: x for k, x in v.items() if k not in FIELD_BY_NAME}}


def _resumed_at(v: Any) -> tuple[int, int] | None:
    if v is None:
        return None
    if not isinstance(v, dict):
        raise _Bad(v)
    return _get(v, "epoch", _REQUIRED, _int(1)), _get(v, "batch", _REQUIRED, _int(1))


def _start(rec: dict[str, Any], run_dir: str | Path) -> ev.TrainStart:
    resumed = _get(rec, "resumed_at", None, _resumed_at)
    return ev.TrainStart(
        config=_config(rec.get("config", {})), run_dir=str(run_dir), device=_get(rec, "device", "?", _str),
        param_count=_get(rec, "param_count", 0, _int()), n_train=_get(rec, "n_train", 0, _int()),
        n_test=_get(rec, "n_test", 0, _int()), batches_per_epoch=_get(rec, "batches_per_epoch", 0, _int()),
        start_epoch=resumed[0] if resumed else 1, start_batch=resumed[1] if resumed else 1,
        time_utc=_get(rec, "time_utc", "", _str), resumed=resumed is not None, world_size=_get(rec, "world_size", 1, _int(1)),
    )


def _batch(rec: dict[str, Any], run_dir: str | Path) -> ev.BatchEnd:
    return ev.BatchEnd(_get(rec, "epoch", _REQUIRED, _int(1)), _get(rec, "batch", _REQUIRED, _int(1)),
                       _get(rec, "loss", math.nan, _loss_value), _get(rec, "images", 0, _int()),
                       _get(rec, "time", 0.0, _number), _get(rec, "lr", 0.0, _number))


def _epoch(rec: dict[str, Any], run_dir: str | Path) -> ev.EpochEnd:
    return ev.EpochEnd(_get(rec, "epoch", _REQUIRED, _int(1)), _get(rec, "train_loss", math.nan, _loss_value),
                       _get(rec, "seconds", 0.0, _number), _get(rec, "images_per_sec", 0.0, _number))


def _checkpoint(rec: dict[str, Any], run_dir: str | Path) -> ev.CheckpointSaved:
    path = Path(_get(rec, "path", _REQUIRED, _str))
    return ev.CheckpointSaved(_get(rec, "epoch", _REQUIRED, _int(1)), str(path if path.is_absolute() else Path(run_dir) / path))


def _eval(rec: dict[str, Any], run_dir: str | Path) -> ev.EvalEnd:
    classes = _get(rec, "classes", _REQUIRED, _list_of(_str))
    k = len(classes)
    confusion = _get(rec, "confusion", _REQUIRED, _list_of(_list_of(_int())))
    if len(confusion) != k or any(len(row) != k for row in confusion):
        raise _Bad("confusion")  # one row and one column per class

    def per_class(key: str) -> list[float]:
        values = _get(rec, key, [0.0] * k, _list_of(_number))
        if len(values) != k:
            raise _Bad(key)
        return values

    result = ev.EvalResult(
        nll=_get(rec, "nll", math.nan, _loss_value), accuracy=_get(rec, "accuracy", _REQUIRED, _number),
        n=_get(rec, "n", sum(map(sum, confusion)), _int()), classes=classes, confusion=confusion,
        precision=per_class("precision"), recall=per_class("recall"), f1=per_class("f1"), predictions=[], labels=[],
        tta=_get(rec, "tta", False, _flag),
    )
    epoch = _get(rec, "epoch", None, lambda v: None if v is None else _int(1)(v))
    return ev.EvalEnd(epoch, result)


def _notice(rec: dict[str, Any], run_dir: str | Path) -> ev.Notice:
    return ev.Notice(_get(rec, "text", "", _str), "warning")  # the trainer records only its warnings


def _end(rec: dict[str, Any], run_dir: str | Path) -> ev.RunEnd:
    return ev.RunEnd(_get(rec, "status", _REQUIRED, _str), _get(rec, "images_per_sec", 0.0, _number),
                     _get(rec, "train_seconds", 0.0, _number), _get(rec, "message", "", _str),
                     world_size=_get(rec, "world_size", 1, _int(1)),
                     rank_images_per_sec=_get(rec, "rank_images_per_sec", [], _list_of(_number)))


def _lens(rec: dict[str, Any], run_dir: str | Path) -> ev.LensMeasure:
    blocks = _get(rec, "blocks", _REQUIRED, _list_of(_str))
    if not 0 < len(blocks) <= MAX_LENS_ROWS:
        raise _Bad("blocks")

    def values(q: str) -> list[float]:
        vs = _get(rec, q, [math.nan] * len(blocks), _list_of(lambda v: math.nan if v is None else _number(v)))
        if len(vs) != len(blocks):
            raise _Bad(q)  # one value per block
        return vs

    return ev.LensMeasure(_get(rec, "epoch", _REQUIRED, _int(1)), _get(rec, "batch", _REQUIRED, _int(1)),
                          _get(rec, "step", _REQUIRED, _int(1)), blocks, {q: values(q) for q in LENS_QUANTITIES})


def _reading(high: float = math.inf) -> Callable[[Any], float]:
    """A measured quantity: a finite number in [0, high]."""
    def check(v: Any) -> float:
        x = _number(v)
        if not 0 <= x <= high:
            raise _Bad(v)
        return x

    return check


def _or_null(check: Callable[[Any], T]) -> Callable[[Any], T | None]:
    return lambda v: None if v is None else check(v)


def _gpu(v: Any) -> ev.GpuSample:
    if not isinstance(v, dict):
        raise _Bad(v)
    return ev.GpuSample(_get(v, "index", _REQUIRED, _int()), _get(v, "name", "", _str),
                        _get(v, "util", None, _or_null(_reading(100))), _get(v, "mem_used", None, _or_null(_int())),
                        _get(v, "mem_total", None, _or_null(_int())), _get(v, "power_w", None, _or_null(_reading())),
                        _get(v, "temp_c", None, _or_null(_reading())))


def _system(rec: dict[str, Any], run_dir: str | Path) -> ev.SystemSample:
    gpus = _get(rec, "gpus", [], _list_of(_gpu))
    if len(gpus) > MAX_GPUS:
        raise _Bad("gpus")
    return ev.SystemSample(
        _get(rec, "time", _REQUIRED, _reading()), _get(rec, "process_cpu", _REQUIRED, _or_null(_reading())),
        _get(rec, "process_rss", _REQUIRED, _or_null(_int())), _get(rec, "host_cpu", _REQUIRED, _reading(100)),
        _get(rec, "host_ram_used", _REQUIRED, _int()), _get(rec, "host_ram_total", _REQUIRED, _int()), gpus,
        _get(rec, "gpu_note", "", _str))


_FROM: dict[str, Callable[[dict[str, Any], str | Path], ev.Event]] = {
    "start": _start, "batch": _batch, "epoch": _epoch, "checkpoint": _checkpoint, "eval": _eval, "notice": _notice, "end": _end,
    "lens": _lens, "system": _system,
}


def from_record(obj: Any, run_dir: str | Path = "") -> ev.Event | None:
    """The event a record was written for, or None for anything else (another kind, a missing required field,
    a field of the wrong type, a non-finite number where a finite one belongs). Never raises.
    Missing optional fields get defaults (records of other versions); run_dir resolves a checkpoint's path."""
    if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
        return None
    parse = _FROM.get(obj["event"])
    if parse is None:
        return None
    try:
        return parse(obj, run_dir)
    except _Bad:
        return None


def parse_line(line: bytes | str, run_dir: str | Path = "") -> ev.Event | None:
    """One line of metrics.jsonl as an event; None when it is not UTF-8, not JSON or not a valid record."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        obj = json.loads(text)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return from_record(obj, run_dir)


# ---------------------------------------------------------------- a run's records


def supersedes(start: ev.TrainStart, earlier: ev.Event) -> bool:
    """Whether a record written before the resumed `start` belongs to the continuation it replaces."""
    if not start.resumed:
        return False
    epoch, batch = start.start_epoch, start.start_batch
    if isinstance(earlier, (ev.BatchEnd, ev.LensMeasure)):
        return (earlier.epoch, earlier.batch) >= (epoch, batch)
    if isinstance(earlier, (ev.EpochEnd, ev.CheckpointSaved)):
        return earlier.epoch >= epoch
    if isinstance(earlier, ev.EvalEnd):
        return earlier.epoch is not None and earlier.epoch >= epoch
    return False


E = TypeVar("E")


@dataclass
class RunRecords:
    """A run's metrics.jsonl as events, in order, without the records a resumed run superseded."""

    events: list[ev.Event] = field(default_factory=list)
    skipped: int = 0  # lines skipped: not UTF-8, not JSON, or not a valid record (a torn last line is not counted)
    superseded: int = 0  # records dropped because a resumed run trained their batches again
    torn_tail: bool = False  # the file ends in a line without its newline (being written, or its writer was killed)
    missing: bool = False  # there is no metrics.jsonl
    error: str = ""  # why metrics.jsonl could not be read at all ("" when it was read, or is missing)

    def add(self, event: ev.Event) -> int:
        """Append an event; a resumed start first drops the records it supersedes. Returns how many it dropped."""
        dropped = 0
        if isinstance(event, ev.TrainStart) and event.resumed:
            kept = [e for e in self.events if not supersedes(event, e)]
            dropped = len(self.events) - len(kept)
            self.events = kept
            self.superseded += dropped
        self.events.append(event)
        return dropped

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def start(self) -> ev.TrainStart | None:
        """The last start record: of the process that trained last."""
        starts = self.of(ev.TrainStart)
        return starts[-1] if starts else None

    @property
    def end(self) -> ev.RunEnd | None:
        """How the run ended: the last end record after the last start; None while it runs (or died without one)."""
        for e in reversed(self.events):
            if isinstance(e, ev.RunEnd):
                return e
            if isinstance(e, ev.TrainStart):
                return None
        return None

    @property
    def batches(self) -> list[ev.BatchEnd]:
        return self.of(ev.BatchEnd)

    @property
    def epochs(self) -> list[ev.EpochEnd]:
        return self.of(ev.EpochEnd)

    @property
    def checkpoints(self) -> list[ev.CheckpointSaved]:
        return self.of(ev.CheckpointSaved)

    @property
    def evals(self) -> list[ev.EvalEnd]:
        return self.of(ev.EvalEnd)

    @property
    def lenses(self) -> list[ev.LensMeasure]:
        return self.of(ev.LensMeasure)

    @property
    def systems(self) -> list[ev.SystemSample]:
        return self.of(ev.SystemSample)

    @property
    def last_eval(self) -> ev.EvalEnd | None:
        evals = self.evals
        return evals[-1] if evals else None


def add_lines(records: RunRecords, data: bytes, run_dir: str | Path = "") -> int:
    """Parse complete lines (`data` ends at a newline) into `records`. Returns how many earlier records were superseded."""
    dropped = 0
    for line in data.split(b"\n"):
        if not line.strip():
            continue
        event = parse_line(line, run_dir)
        if event is None:
            records.skipped += 1
        else:
            dropped += records.add(event)
    return dropped


def read_run(run_dir: str | Path) -> RunRecords:
    """A run directory's metrics.jsonl as events. Never raises on the file: bad lines are skipped and counted,
    a torn last line is left out, a file that cannot be read gives no events and says why in `error`."""
    path = Path(run_dir) / METRICS_NAME
    records = RunRecords()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        records.missing = True
        return records
    except OSError as e:
        records.error = f"{path} cannot be read ({e.strerror or e})"
        return records
    complete = data.rfind(b"\n") + 1
    records.torn_tail = complete < len(data)
    add_lines(records, data[:complete], run_dir)
    return records


# ---------------------------------------------------------------- writing


def _ends_torn(path: Path) -> bool:
    """Whether the file is non-empty and its last byte is not a newline (its writer was killed mid-line)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            if f.tell() == 0:
                return False
            f.seek(-1, os.SEEK_END)
            return f.read(1) != b"\n"
    except FileNotFoundError:
        return False


class RecordWriter:
    """Appends events to metrics.jsonl as records, one line each (events that are not recorded are left out).
    Each call's lines are flushed at once; sync() also fsyncs them (at epoch ends and at the end)."""

    def __init__(self, path: str | Path, run_dir: str | Path | None = None):
        self.path = Path(path)
        self.run_dir = Path(run_dir) if run_dir is not None else self.path.parent
        torn = _ends_torn(self.path)
        self._f = open(self.path, "a", encoding="utf-8")
        if torn:  # end the killed writer's line, so that this run's first record starts a line of its own
            self._f.write("\n")
            self._f.flush()

    def write(self, event: ev.Event) -> None:
        self.write_many([event])

    def write_many(self, events: Iterable[ev.Event]) -> None:
        text = "".join(line for line in (to_line(e, self.run_dir) for e in events) if line is not None)
        if text:
            self._f.write(text)
            self._f.flush()

    def sync(self) -> None:
        self._f.flush()
        try:
            os.fsync(self._f.fileno())
        except OSError:
            pass

    def close(self) -> None:
        if not self._f.closed:
            self.sync()
            self._f.close()

    def __enter__(self) -> "RecordWriter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_records(run_dir: str | Path, events: Iterable[ev.Event]) -> Path:
    """Append events to a run directory's metrics.jsonl (created with its folder if needed); returns its path."""
    path = Path(run_dir) / METRICS_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with RecordWriter(path, run_dir) as w:
        w.write_many(list(events))
    return path


__all__ = [
    "KINDS", "LENS_QUANTITIES", "MAX_GPUS", "METRICS_NAME", "RecordWriter", "RunRecords", "add_lines", "from_record", "kind_of", "parse_line", "read_run",
    "supersedes", "to_line", "to_record", "write_records",
]

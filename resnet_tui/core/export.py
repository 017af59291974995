"""Exports of run directories as CSV: the per-batch and per-epoch metrics of one run or of several in one long CSV
(with each row's run and config), and the confusion matrix.

Engine code: the csv module only (no torch, no UI). Numbers are written with Python's shortest
round-trip repr, so float(cell) gives back exactly the value in metrics.jsonl; a missing value is empty.
"""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from resnet_tui.core.config import FIELDS
from resnet_tui.core.errors import UserError
from resnet_tui.core.records import METRICS_NAME, RunRecords, read_run, to_record
from resnet_tui.core.runs import atomic_write_text, list_runs, summarize

# One row per "batch", "epoch" and "eval" record of metrics.jsonl, in file order. Columns a kind lacks are empty.
METRIC_COLUMNS = ("kind", "epoch", "batch", "loss", "images", "time", "lr", "train_loss", "seconds", "images_per_sec", "accuracy", "nll")
_KIND_FIELDS = {
    "batch": ("epoch", "batch", "loss", "images", "time", "lr"),
    "epoch": ("epoch", "train_loss", "seconds", "images_per_sec"),
    "eval": ("epoch", "accuracy", "nll"),
}


def metrics_path(run_dir: str | Path, what: str = "RUN_DIR") -> Path:
    path = Path(run_dir) / METRICS_NAME
    if not Path(run_dir).is_dir() or not path.is_file():
        raise UserError(f"{what}: got {str(run_dir)!r}, expected a run directory with {METRICS_NAME} (a file)")
    return path


def read_records(run_dir: str | Path, what: str = "RUN_DIR") -> RunRecords:
    """The run's records; UserError when it has no readable metrics.jsonl."""
    metrics_path(run_dir, what)
    records = read_run(run_dir)
    if records.error:
        raise UserError(f"{what}: {records.error}")
    return records


def metric_rows(run_dir: str | Path, records: RunRecords | None = None) -> list[dict[str, Any]]:
    """The batch, epoch and eval records of a run as flat rows with METRIC_COLUMNS keys (None where absent),
    in file order; damaged lines and the records a resumed run superseded are left out. records: read_records(run_dir)."""
    rows = []
    for e in (read_records(run_dir) if records is None else records).events:
        record = to_record(e)
        if record is None or record["event"] not in _KIND_FIELDS:
            continue
        row: dict[str, Any] = dict.fromkeys(METRIC_COLUMNS)
        row["kind"] = record["event"]
        for k in _KIND_FIELDS[record["event"]]:
            row[k] = record.get(k)
        rows.append(row)
    return rows


def _cell(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, float):
        return repr(v)  # shortest round-trip form; nan and inf as Python spells them
    return v


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([_cell(v) for v in row])
    return buf.getvalue()


def write_text(dest: str | Path, text: str, what: str) -> None:
    """Write `text` to a file (atomically) or, for "-", to standard output."""
    if str(dest) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    path = Path(dest).expanduser()
    if path.is_dir():
        raise UserError(f"{what}: got {str(dest)!r}, expected a file name, not a folder")
    try:
        atomic_write_text(path, text)
    except OSError as e:
        raise UserError(f"{what}: cannot write {str(dest)!r} ({e.strerror or e})") from None


def metrics_csv(run_dir: str | Path) -> tuple[str, int]:
    """The metrics CSV text and its number of data rows."""
    rows = metric_rows(run_dir)
    return to_csv(METRIC_COLUMNS, ([r[c] for c in METRIC_COLUMNS] for r in rows)), len(rows)


def write_metrics_csv(run_dir: str | Path, dest: str | Path) -> int:
    text, n = metrics_csv(run_dir)
    write_text(dest, text, "--csv")
    return n


# ---------------------------------------------------------------- several runs in one long CSV


CONFIG_PREFIX = "config."  # config columns are named config.lr, config.optimizer, ...: a batch row has an lr of its own


def find_runs(paths: Sequence[str | Path], what: str = "RUN_DIR") -> list[Path]:
    """The run directories that `paths` name: a run directory (it has metrics.jsonl) as itself; a folder of runs (a runs
    folder, with the runs of its sweep folders, or one sweep folder) as its runs, newest first. Each run once.
    UserError for a path that is neither, a folder with no runs, or no runs at all."""
    found: dict[Path, Path] = {}
    for given in map(Path, paths):
        if (given / METRICS_NAME).exists():
            runs = [given]
        elif given.is_dir():
            runs = [s.path for s in list_runs(given, include_sweeps=True)]
            if not runs:
                raise UserError(f"{what}: no runs in {str(given)!r}; expected a run directory (with {METRICS_NAME}) "
                                "or a folder of them")
        else:
            raise UserError(f"{what}: got {str(given)!r}, expected a run directory (with {METRICS_NAME}) or a folder of them")
        for run in runs:
            found.setdefault(run.resolve(), run)
    return list(found.values())


def _config_cell(v: Any) -> Any:
    """A config value as the config file writes it: true/false, layers as 2,2,2."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return ",".join(map(str, v))
    return v


def long_metrics_csv(runs: Sequence[str | Path], warn: Callable[[str], None]) -> tuple[str, int, int]:
    """One CSV of several runs: a row per batch, epoch and eval record of each (as metrics_csv), with the run (its path)
    and its config (config.toml; else its start record's) in every row. A run that cannot be read is left out and
    `warn` says which and why. Returns the text, the number of rows and of runs written; UserError if none could be read."""
    fields = [f.name for f in FIELDS]
    header = ("run", *METRIC_COLUMNS, *(CONFIG_PREFIX + name for name in fields))
    out: list[list[Any]] = []
    written = 0
    for run in runs:
        records = read_run(run)
        if records.missing or records.error:
            warn(f"skipped {run}: {records.error or f'it has no {METRICS_NAME}'}")
            continue
        config = summarize(Path(run), records).config or (records.start.config if records.start is not None else {})
        tail = [_config_cell(config.get(name)) for name in fields]
        out += [[str(run), *(r[c] for c in METRIC_COLUMNS), *tail] for r in metric_rows(run, records)]
        written += 1
    if not written:
        raise UserError(f"RUN_DIR: none of the {len(runs)} run(s) could be read; expected run directories with a readable {METRICS_NAME}")
    return to_csv(header, out), len(out), written


# ---------------------------------------------------------------- confusion matrix


def confusion_csv(classes: Sequence[str], confusion: Sequence[Sequence[int]]) -> str:
    """Rows: true class; columns: predicted class. The corner cell says so."""
    if len(confusion) != len(classes) or any(len(row) != len(classes) for row in confusion):
        raise ValueError("the confusion matrix must be square with one row and column per class")
    return to_csv(["true\\predicted", *classes], ([c, *row] for c, row in zip(classes, confusion)))


def last_eval(run_dir: str | Path) -> dict[str, Any]:
    """The run's last "eval" record (the evaluation at the end of training); its confusion matrix is square."""
    records = read_records(run_dir, "--confusion-csv")
    found = records.last_eval
    if found is None:
        damaged = f"; {records.skipped} damaged line(s) skipped" if records.skipped else ""
        raise UserError(f"--confusion-csv: {str(run_dir)!r} has no evaluation in {METRICS_NAME} (training did not finish{damaged}); "
                        "evaluate a checkpoint with: resnet-tui --no-ui evaluate RUN_DIR --confusion-csv FILE")
    record = to_record(found)
    assert record is not None
    return record


def write_confusion_csv(classes: Sequence[str], confusion: Sequence[Sequence[int]], dest: str | Path) -> None:
    write_text(dest, confusion_csv(classes, confusion), "--confusion-csv")


def read_confusion_csv(path: str | Path) -> tuple[list[str], list[list[int]]]:
    """The inverse of confusion_csv: (classes, matrix)."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    classes = rows[0][1:]
    return classes, [[int(v) for v in row[1:]] for row in rows[1:]]


__all__ = [
    "METRIC_COLUMNS", "CONFIG_PREFIX", "metric_rows", "metrics_csv", "write_metrics_csv", "find_runs", "long_metrics_csv",
    "confusion_csv", "last_eval", "write_confusion_csv", "read_confusion_csv",
]

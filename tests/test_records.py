"""resnet_tui.core.records, the owner of metrics.jsonl: events to records and back, the exact line format, validation
of hostile records, reading a run (damaged lines skipped and counted, a resumed run's superseded records dropped),
the writer (a killed writer's torn line is ended first), and following a file as it grows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from resnet_tui.app.metrics_follow import MetricsFollower
from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.config import TrainConfig

CLASSES = ["plane", "car"]


def start(resumed_at: tuple[int, int] | None = None, run_dir: str = "", batches_per_epoch: int = 4) -> ev.TrainStart:
    epoch, batch = resumed_at or (1, 1)
    return ev.TrainStart(TrainConfig(epochs=3, batch_size=32).to_dict(), run_dir, "CPU (2 threads)", 205338, 128, 100,
                         batches_per_epoch, epoch, batch, time_utc="2026-11-28 10:00:00", resumed=resumed_at is not None)


def batches(epoch: int, first: int, last: int, loss: float = 2.0) -> list[ev.BatchEnd]:
    return [ev.BatchEnd(epoch, b, loss - b / 100, 32 * ((epoch - 1) * 4 + b), 0.5 * b, 0.001) for b in range(first, last + 1)]


def evaluation(epoch: int = 3, accuracy: float = 0.5) -> ev.EvalEnd:
    return ev.EvalEnd(epoch, ev.EvalResult(1.25, accuracy, 4, CLASSES, [[1, 1], [0, 2]], [1.0, 0.5], [0.5, 1.0], [0.5, 0.5], [], []))


def every_kind(run_dir: Path) -> list[ev.Event]:
    return [start(run_dir=str(run_dir)), ev.Notice("a notice", "warning"), *batches(1, 1, 2), ev.EpochEnd(1, 1.98, 1.25, 51.2),
            ev.CheckpointSaved(1, str(run_dir / "checkpoints" / "cifar10_model_epoch_0.pth")), evaluation(1),
            lens(1, 2), ev.RunEnd("finished", 51.2, 1.25, "")]


def lens(epoch: int, batch: int, batches_per_epoch: int = 4) -> ev.LensMeasure:
    """A lens record's event with values that survive its 6 significant digits (NaN only where a row has none)."""
    blocks = ["stem", "layer1.0", "layer2.0", "layer3.0", "fc"]
    return ev.LensMeasure(epoch, batch, (epoch - 1) * batches_per_epoch + batch, blocks, {
        "ratio": [math.nan, 0.5, 1.25, 0.0, math.nan], "grad": [0.125, 1.5, 2.0, 3.0, 4.0],
        "mean": [0.0, 0.5, -0.25, 0.5, 0.125], "std": [1.0, 0.75, 0.5, 0.25, 2.0]})


def same_lens(a: ev.Event, b: ev.Event) -> bool:
    """Equal, NaN included (NaN != NaN in a list comparison)."""
    if not (isinstance(a, ev.LensMeasure) and isinstance(b, ev.LensMeasure)):
        return False
    return (a.epoch, a.batch, a.step, a.blocks) == (b.epoch, b.batch, b.step, b.blocks) and all(
        [str(x) for x in a.values[q]] == [str(x) for x in b.values[q]] for q in records.LENS_QUANTITIES)


# ---------------------------------------------------------------- the format


def test_every_recorded_event_round_trips_through_its_line(tmp_path: Path) -> None:
    for event in every_kind(tmp_path):
        line = records.to_line(event, tmp_path)
        assert line is not None and line.endswith("\n") and line.count("\n") == 1
        back = records.parse_line(line.encode(), tmp_path)
        assert back == event or same_lens(back, event)
    assert records.to_record(ev.EvalProgress(1, 2)) is None and records.kind_of(ev.EvalProgress(1, 2)) is None
    assert records.from_record(records.to_record(start(resumed_at=(2, 3)))).resumed_at == (2, 3)


def test_lines_are_the_documented_format_with_its_rounding_and_null_for_a_non_finite_loss(tmp_path: Path) -> None:
    lines = [records.to_line(e, tmp_path) for e in (
        ev.BatchEnd(1, 2, float("nan"), 64, 0.123456, 0.001),
        ev.EpochEnd(1, float("inf"), 960.12345, 52.1234),
        ev.CheckpointSaved(1, str(tmp_path / "checkpoints" / "cifar10_model_epoch_0.pth")),
        ev.RunEnd("finished", 52.1234, 960.12345, ""),
        ev.Notice("hello"),
    )]
    assert lines == [
        '{"event": "batch", "epoch": 1, "batch": 2, "loss": null, "images": 64, "time": 0.1235, "lr": 0.001}\n',
        '{"event": "epoch", "epoch": 1, "train_loss": null, "seconds": 960.123, "images_per_sec": 52.12}\n',
        '{"event": "checkpoint", "epoch": 1, "path": "checkpoints/cifar10_model_epoch_0.pth"}\n',
        '{"event": "end", "status": "finished", "images_per_sec": 52.12, "train_seconds": 960.123, "message": "", "world_size": 1, "rank_images_per_sec": []}\n',
        '{"event": "notice", "text": "hello"}\n',
    ]
    rec = records.to_record(start(resumed_at=(2, 3)))
    assert list(rec) == ["event", "time_utc", "device", "param_count", "n_train", "n_test", "batches_per_epoch", "resumed_at", "world_size", "config"]
    assert rec["resumed_at"] == {"epoch": 2, "batch": 3} and records.to_record(start())["resumed_at"] is None
    assert list(records.to_record(evaluation())) == ["event", "epoch", "accuracy", "nll", "n", "classes", "confusion", "precision", "recall", "f1", "tta"]
    assert records.from_record({**records.to_record(evaluation()), "tta": True}).result.tta is True
    old = {k: v for k, v in records.to_record(evaluation()).items() if k != "tta"}  # written before tta existed
    assert records.from_record(old).result.tta is False


def test_records_of_other_versions_get_defaults() -> None:
    e = records.from_record({"event": "start", "config": {"epochs": 3, "a_newer_key": 1}})
    assert isinstance(e, ev.TrainStart) and e.config["epochs"] == 3 and e.config["skip"] is True and e.config["a_newer_key"] == 1
    assert (e.start_epoch, e.start_batch, e.resumed) == (1, 1, False)
    e = records.from_record({"event": "batch", "epoch": 2, "batch": 3, "loss": None})
    assert isinstance(e, ev.BatchEnd) and math.isnan(e.loss) and (e.images, e.time, e.lr) == (0, 0.0, 0.0)
    assert records.from_record({"event": "something new"}) is None


HOSTILE = {
    "epoch a string": {"event": "epoch", "epoch": "x", "train_loss": 1.0},
    "epoch null": {"event": "epoch", "epoch": None, "train_loss": 1.0},
    "epoch NaN": {"event": "epoch", "epoch": float("nan"), "train_loss": 1.0},
    "epoch 1e999": {"event": "epoch", "epoch": float("inf"), "train_loss": 1.0},
    "epoch a bool": {"event": "batch", "epoch": True, "batch": 1},
    "epoch too large": {"event": "batch", "epoch": 10**400, "batch": 1},
    "batch 0": {"event": "batch", "epoch": 1, "batch": 0},
    "batch missing": {"event": "batch", "epoch": 1},
    "loss a string": {"event": "batch", "epoch": 1, "batch": 1, "loss": "low"},
    "time NaN": {"event": "batch", "epoch": 1, "batch": 1, "time": float("nan")},
    "status a number": {"event": "end", "status": 5},
    "status missing": {"event": "end"},
    "message a list": {"event": "end", "status": "finished", "message": ["x"]},
    "event a list": {"event": ["x"]},
    "event missing": {"epoch": 1},
    "not an object": ["event", "batch"],
    "null": None,
    "config a list": {"event": "start", "config": [1]},
    "config epochs a string": {"event": "start", "config": {"epochs": "x"}},
    "config layers nested": {"event": "start", "config": {"layers": [1, [2], 3]}},
    "resumed_at a string": {"event": "start", "resumed_at": "2,3"},
    "device a number": {"event": "start", "device": 5},
    "checkpoint path a number": {"event": "checkpoint", "epoch": 1, "path": 5},
    "confusion not square": {"event": "eval", "epoch": 1, "accuracy": 0.5, "classes": CLASSES, "confusion": [[1, 2, 3], [4, 5, 6]]},
    "confusion rows short": {"event": "eval", "epoch": 1, "accuracy": 0.5, "classes": CLASSES, "confusion": [[1, 2]]},
    "confusion not ints": {"event": "eval", "epoch": 1, "accuracy": 0.5, "classes": CLASSES, "confusion": [[1, "2"], [3, 4]]},
    "class a number": {"event": "eval", "epoch": 1, "accuracy": 0.5, "classes": ["a", 2], "confusion": [[1, 2], [3, 4]]},
    "precision short": {"event": "eval", "epoch": 1, "accuracy": 0.5, "classes": CLASSES, "confusion": [[1, 2], [3, 4]], "precision": [1.0]},
    "accuracy infinite": {"event": "eval", "epoch": 1, "accuracy": float("inf"), "classes": CLASSES, "confusion": [[1, 2], [3, 4]]},
    "notice text a dict": {"event": "notice", "text": {}},
    "lens without blocks": {"event": "lens", "epoch": 1, "batch": 1, "step": 1},
    "lens blocks empty": {"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": []},
    "lens blocks too many": {"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": ["b"] * 10_000},
    "lens values short": {"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": ["stem", "fc"], "grad": [1.0]},
    "lens value a string": {"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": ["stem"], "ratio": ["1"]},
    "lens value infinite": {"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": ["stem"], "std": [float("inf")]},
    "lens block a number": {"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": [5]},
    "lens step 0": {"event": "lens", "epoch": 1, "batch": 1, "step": 0, "blocks": ["stem"]},
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_record_of_the_wrong_shape_or_types_is_none_never_an_error(name: str) -> None:
    assert records.from_record(HOSTILE[name]) is None
    assert records.parse_line(json.dumps(HOSTILE[name])) is None  # as written in a file (NaN and Infinity included)


@pytest.mark.parametrize("line", [b"\xff\xfe{}", b"not json", b"[" * 100_000, b"1" * 5000, b'{"event": "batch", "epo', b"", b"{}"])
def test_a_line_that_is_not_a_record_is_none(line: bytes) -> None:
    assert records.parse_line(line) is None


# ---------------------------------------------------------------- reading a run


def write_lines(path: Path, *lines: bytes | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(x if isinstance(x, bytes) else x.encode() for x in lines))


def line(e: ev.Event) -> str:
    text = records.to_line(e)
    assert text is not None
    return text


def test_read_run_skips_and_counts_damaged_lines_and_leaves_a_torn_last_line_out(tmp_path: Path) -> None:
    good = [start(run_dir=str(tmp_path)), *batches(1, 1, 3)]
    write_lines(tmp_path / "metrics.jsonl", line(good[0]), b"\xff\xfe not utf-8\n", line(good[1]), '{"event": "epoch", "epoch": "x"}\n',
                "\n", line(good[2]), 'not json\n', line(good[3]), '{"event": "batch", "epo')
    got = records.read_run(tmp_path)
    assert got.events == good
    assert (got.skipped, got.torn_tail, got.missing, got.error) == (3, True, False, "")
    assert got.start == good[0] and got.end is None and got.batches == good[1:]


def test_read_run_of_a_missing_or_unreadable_file_says_so_without_raising(tmp_path: Path) -> None:
    missing = records.read_run(tmp_path / "nothing-here")
    assert missing.missing and missing.events == [] and missing.error == ""
    (tmp_path / "folder" / "metrics.jsonl").mkdir(parents=True)
    folder = records.read_run(tmp_path / "folder")
    assert not folder.missing and folder.events == [] and "metrics.jsonl cannot be read" in folder.error


def killed_then_resumed(tmp_path: Path) -> tuple[list[ev.Event], list[ev.Event]]:
    """The first process trains epoch 1 and 3 batches of epoch 2, then is killed (no end record, a torn line);
    its resume state was saved after batch 1 of epoch 2, so the second one trains epoch 2 from batch 2."""
    first = [start(), *batches(1, 1, 4), ev.EpochEnd(1, 1.9, 2.0, 64.0), ev.CheckpointSaved(1, "checkpoints/cifar10_model_epoch_0.pth"),
             *batches(2, 1, 3, loss=9.0)]
    second = [start(resumed_at=(2, 2)), *batches(2, 2, 4), ev.EpochEnd(2, 1.8, 2.0, 64.0),
              ev.CheckpointSaved(2, "checkpoints/cifar10_model_epoch_1.pth"), ev.RunEnd("interrupted", 64.0, 4.0, "stopped")]
    with records.RecordWriter(tmp_path / "metrics.jsonl", tmp_path) as w:
        w.write_many(first)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"event": "batch", "epoch": 2, "ba')  # killed mid-line
    with records.RecordWriter(tmp_path / "metrics.jsonl", tmp_path) as w:
        w.write_many(second)
    return first, second


def test_a_resumed_run_supersedes_the_batches_trained_again_so_every_batch_appears_once(tmp_path: Path) -> None:
    first, second = killed_then_resumed(tmp_path)
    got = records.read_run(tmp_path)
    assert [(b.epoch, b.batch) for b in got.batches] == [(1, b) for b in range(1, 5)] + [(2, b) for b in range(1, 5)]
    assert [b.loss for b in got.batches if b.epoch == 2] == [b.loss for b in batches(2, 1, 1, 9.0) + batches(2, 2, 4)]
    assert [e.epoch for e in got.epochs] == [1, 2] and [c.epoch for c in got.checkpoints] == [1, 2]
    assert got.superseded == 2  # batches 2 and 3 of epoch 2 of the first process
    assert got.skipped == 1 and not got.torn_tail  # the torn line was ended by the second writer, then skipped
    assert got.start == records.from_record(records.to_record(second[0]), tmp_path) and got.end == second[-1]


def test_a_resume_at_an_epoch_start_drops_that_epochs_records_of_the_abandoned_continuation(tmp_path: Path) -> None:
    first = [start(), *batches(1, 1, 4), ev.EpochEnd(1, 1.9, 2.0, 64.0), *batches(2, 1, 4), ev.EpochEnd(2, 1.7, 2.0, 64.0),
             ev.CheckpointSaved(2, "c2"), evaluation(2)]
    second = [start(resumed_at=(2, 1)), *batches(2, 1, 4, loss=1.5), ev.EpochEnd(2, 1.45, 2.0, 64.0)]
    records.write_records(tmp_path, first + second)
    got = records.read_run(tmp_path)
    assert [(b.epoch, b.batch) for b in got.batches] == [(e, b) for e in (1, 2) for b in range(1, 5)]
    assert [e.train_loss for e in got.epochs] == [1.9, 1.45] and got.checkpoints == [] and got.evals == []
    assert got.superseded == 7


# ---------------------------------------------------------------- writing


def test_the_writer_ends_a_torn_last_line_before_its_first_record(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(line(start()) + '{"event": "batch", "epo')
    with records.RecordWriter(path) as w:
        w.write(start(resumed_at=(1, 1)))
    assert path.read_text().splitlines() == [line(start()).rstrip("\n"), '{"event": "batch", "epo', line(start(resumed_at=(1, 1))).rstrip("\n")]
    with records.RecordWriter(path) as w:  # a file that ends with its newline is appended to as it is
        w.write_many([ev.EvalProgress(1, 2), ev.Notice("x")])
    assert path.read_text().splitlines()[-1] == '{"event": "notice", "text": "x"}' and len(path.read_text().splitlines()) == 4


# ---------------------------------------------------------------- following


def test_the_follower_reads_complete_lines_as_events_and_restarts_when_a_resume_supersedes_what_it_showed(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    follower = MetricsFollower(path, tmp_path)
    assert follower.read_new().events == []  # no file yet
    path.write_text(line(start()) + "".join(map(line, batches(1, 1, 3))) + '{"event": "batch", "epo')
    update = follower.read_new()
    assert [records.kind_of(e) for e in update.events] == ["start", "batch", "batch", "batch"] and not update.restart
    assert follower.read_new().events == []  # the torn line is left for later
    with open(path, "a") as f:
        f.write("\n" + line(start(resumed_at=(1, 2))) + "".join(map(line, batches(1, 2, 4))))
    update = follower.read_new()  # the resumed start supersedes batches 2 and 3: the whole run again, each batch once
    assert update.restart and follower.skipped == 1
    assert [(b.epoch, b.batch) for b in update.events if isinstance(b, ev.BatchEnd)] == [(1, 1), (1, 2), (1, 3), (1, 4)]
    with open(path, "a") as f:
        f.write(line(ev.RunEnd("finished", 1.0, 2.0)))
    update = follower.read_new()
    assert update.events == [ev.RunEnd("finished", 1.0, 2.0)] and not update.restart


def test_a_lens_record_is_its_documented_line_and_missing_quantities_read_as_none(tmp_path: Path) -> None:
    record = json.loads(records.to_line(lens(2, 3)))
    assert record == {"event": "lens", "epoch": 2, "batch": 3, "step": 7, "blocks": ["stem", "layer1.0", "layer2.0", "layer3.0", "fc"],
                      "ratio": [None, 0.5, 1.25, 0.0, None], "grad": [0.125, 1.5, 2.0, 3.0, 4.0],
                      "mean": [0.0, 0.5, -0.25, 0.5, 0.125], "std": [1.0, 0.75, 0.5, 0.25, 2.0]}
    assert json.loads(records.to_line(ev.LensMeasure(1, 1, 1, ["stem"], {"grad": [1 / 3]})))["grad"] == [0.333333]
    old = records.from_record({"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": ["stem"], "grad": [2]})
    assert isinstance(old, ev.LensMeasure) and old.values["grad"] == [2.0] and math.isnan(old.values["ratio"][0])


def test_a_hostile_lens_line_among_good_ones_is_skipped_and_a_resume_supersedes_lens_records(tmp_path: Path) -> None:
    path = tmp_path / "run" / records.METRICS_NAME
    write_lines(path, line(start()), line(lens(1, 1)), json.dumps(HOSTILE["lens values short"]) + "\n", line(lens(1, 3)),
                line(start(resumed_at=(1, 3))), line(lens(1, 3)), line(lens(2, 1)))
    run = records.read_run(path.parent)
    assert run.skipped == 1 and run.superseded == 1
    assert [(m.epoch, m.batch) for m in run.lenses] == [(1, 1), (1, 3), (2, 1)]

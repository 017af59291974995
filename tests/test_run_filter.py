"""Filtering and sorting runs (core.run_filter, core.runs.sort_runs) and `runs list --filter/--sort`: real run folders
written through core.records, summarized as the Runs screen and `runs list` read them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resnet_tui import cli
from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.errors import UserError
from resnet_tui.core.run_filter import filter_runs, parse_filter
from resnet_tui.core.runs import list_runs, sort_column, sort_runs

CLASSES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_run(run_dir: Path, cfg: TrainConfig, started: str, status: str | None, accuracy: float | None = None,
              nll: float = 1.0, epochs: int = 1, images_per_sec: float = 100.0) -> Path:
    """A run folder: config.toml and metrics.jsonl with `epochs` epochs of 2 batches, an evaluation if `accuracy` is
    given, and an end record with `status` (None: no end record and no lock, so it reads as crashed)."""
    events: list[ev.Event] = [ev.TrainStart(cfg.to_dict(), "", "CPU", 78042, 64, 50, 2, time_utc=started)]
    for epoch in range(1, epochs + 1):
        events += [ev.BatchEnd(epoch, b, 2.0 - 0.1 * b, 32 * b, float(b), cfg.lr) for b in (1, 2)]
        events.append(ev.EpochEnd(epoch, 1.85, 1.0, images_per_sec))
    if accuracy is not None:
        confusion = [[5 if i == j else 0 for j in range(10)] for i in range(10)]
        events.append(ev.EvalEnd(epochs, ev.EvalResult(nll, accuracy, 50, CLASSES, confusion, [1.0] * 10, [1.0] * 10, [1.0] * 10, [], [])))
    if status is not None:
        events.append(ev.RunEnd(status, images_per_sec, 2.0, ""))
    run_dir.mkdir(parents=True)
    (run_dir / "config.toml").write_text(cfg.to_toml())
    records.write_records(run_dir, events)
    return run_dir


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Five runs whose folder names do not follow their start times (watchA started before runB)."""
    root = tmp_path / "runs"
    write_run(root / "runB", TrainConfig(optimizer="sgd", lr=0.1, epochs=2), "2026-11-28 09:47:00", "finished", 0.85, 0.5, 2, 300.0)
    write_run(root / "watchA", TrainConfig(optimizer="adam", lr=0.001), "2026-11-28 09:43:00", "finished", 0.6, 1.1)
    write_run(root / "adam-big", TrainConfig(optimizer="adam", lr=0.01, layers=(1, 1, 1), skip=False), "2026-11-28 10:00:00", None)
    write_run(root / "zz-old", TrainConfig(optimizer="sgd", lr=0.01), "2026-11-27 23:00:00", "interrupted", images_per_sec=50.0)
    sweep = root / "sweep-1"
    sweep.mkdir()
    (sweep / "sweep.json").write_text('{"version": 1, "runs": []}\n')
    write_run(sweep / "lr=0.05", TrainConfig(optimizer="rmsprop", lr=0.05), "2026-11-28 08:00:00", "diverged")
    return root


def names(summaries, root: Path) -> list[str]:
    return [str(s.path.relative_to(root)) for s in summaries]


def matching(root: Path, text: str) -> set[str]:
    return set(names(filter_runs(list_runs(root, include_sweeps=True), parse_filter(text), root), root))


ALL = {"runB", "watchA", "adam-big", "zz-old", "sweep-1/lr=0.05"}


@pytest.mark.parametrize("text, expected", [
    ("lr=0.01", {"adam-big", "zz-old"}),
    ("lr==0.01", {"adam-big", "zz-old"}),
    ("lr!=0.01", {"runB", "watchA", "sweep-1/lr=0.05"}),
    ("lr<0.01", {"watchA"}),
    ("lr<=0.01", {"watchA", "adam-big", "zz-old"}),
    ("lr>0.01", {"runB", "sweep-1/lr=0.05"}),
    ("lr>=0.05", {"runB", "sweep-1/lr=0.05"}),
    ("lr < 0.01", {"watchA"}),  # spaces around the operator
    ("epochs>1", {"runB"}),
    ("acc>0.8", {"runB"}),
    ("accuracy>=60%", {"runB", "watchA"}),  # runs without an evaluation match no expression on it
    ("nll<1", {"runB"}),
    ("eval_loss>1", {"watchA"}),
    ("status=crashed", {"adam-big"}),
    ("status!=finished", {"adam-big", "zz-old", "sweep-1/lr=0.05"}),
    ("epochs_done>=2", {"runB"}),
    ("images_per_sec<100", {"zz-old"}),
    ("started>2026-11-28 09:45", {"runB", "adam-big"}),
    ("started>2026-11-28T09:45", {"runB", "adam-big"}),
    ("started=2026-11-27", {"zz-old"}),
    ("optimizer=ADAM", {"watchA", "adam-big"}),
    ("optimizer!=sgd", {"watchA", "adam-big", "sweep-1/lr=0.05"}),
    ("layers=1,1,1", {"adam-big"}),
    ("skip=off", {"adam-big"}),
    ("name=runb", {"runB"}),
])
def test_each_operator_on_config_and_result_fields(root: Path, text: str, expected: set[str]) -> None:
    assert matching(root, text) == expected


def test_words_and_expressions_all_hold(root: Path) -> None:
    assert matching(root, "optimizer=adam lr<0.01") == {"watchA"}
    assert matching(root, "optimizer=adam,lr<0.01") == {"watchA"}
    assert matching(root, "optimizer=adam, status=finished") == {"watchA"}
    assert matching(root, "layers=1,1,1,skip=off") == {"adam-big"}  # a comma inside layers' value stays in it
    assert matching(root, "lr>0.01 acc>0.8 status=finished") == {"runB"}
    assert matching(root, "") == ALL and not parse_filter(" , ")


def test_plain_text_matches_the_name_and_the_status_in_any_case(root: Path) -> None:
    assert matching(root, "ADAM") == {"adam-big"}  # the folder name, not the optimizer
    assert matching(root, "sweep") == {"sweep-1/lr=0.05"}  # the name below the runs root holds the sweep folder
    assert matching(root, "crashed") == {"adam-big"}  # the status
    assert matching(root, "finished watch") == {"watchA"}
    assert matching(root, "nothing-like-this") == set()


@pytest.mark.parametrize("text, needles", [
    ("optimiser=adam", ["'optimiser=adam'", "unknown field 'optimiser'", "did you mean 'optimizer'?"]),
    ("accurcy>0.5", ["unknown field 'accurcy'", "did you mean 'accuracy'?"]),
    ("colour=red", ["unknown field 'colour'", "fields: name, status"]),
    ("optimizer<adam", ["optimizer is not a number", "use = or !="]),
    ("status>finished", ["status is not a number"]),
    ("lr<abc", ["lr: got 'abc', expected a number"]),
    ("acc>0.8 lr>=fast", ["'lr>=fast'", "expected a number"]),
    ("optimizer=adamm", ["optimizer: got 'adamm', expected one of sgd, adam"]),
    ("status=crashd", ["did you mean 'crashed'?"]),
    ("acc>80", ["expected a fraction from 0 to 1 or a percentage like 80%"]),
    ("layers=2,2", ["layers: got '2,2'"]),
    ("lr<", ["expected a value after '<'"]),
    ("<0.1", ["expected a field name before '<'"]),
    ("lr>inf", ["expected a finite number"]),
])
def test_a_bad_expression_is_one_line_naming_it(text: str, needles: list[str]) -> None:
    with pytest.raises(UserError) as e:
        parse_filter(text, "--filter")
    message = str(e.value)
    assert "\n" not in message and message.startswith("--filter '"), message
    for needle in needles:
        assert needle in message, message


def test_runs_are_newest_first_by_start_time_not_by_folder_name(root: Path) -> None:
    assert names(list_runs(root, include_sweeps=True), root) == ["adam-big", "runB", "watchA", "sweep-1/lr=0.05", "zz-old"]


def test_sorting_by_a_column_either_way_puts_runs_without_a_value_last(root: Path) -> None:
    runs = list_runs(root, include_sweeps=True)
    assert names(sort_runs(runs, "accuracy"), root)[:2] == ["runB", "watchA"]  # the most accurate first
    assert names(sort_runs(runs, "accuracy", descending=False), root)[:2] == ["watchA", "runB"]
    for descending in (True, False):
        assert set(names(sort_runs(runs, "accuracy", descending), root)[2:]) == {"adam-big", "zz-old", "sweep-1/lr=0.05"}
    assert names(sort_runs(runs, "lr"), root) == ["watchA", "adam-big", "zz-old", "sweep-1/lr=0.05", "runB"]  # ties by name
    assert names(sort_runs(runs, "name"), root) == sorted(ALL)
    assert names(sort_runs(runs, "started", descending=False), root)[0] == "zz-old"
    assert names(sort_runs(runs, "images_per_sec"), root)[0] == "runB"
    assert names(sort_runs(runs, "layers"), root)[0] == "adam-big"  # a config field: 1,1,1 before 2,2,2


def test_sort_column_names_and_aliases() -> None:
    assert [sort_column(n) for n in ("acc", "Date", "img/s", "batch-size", "eval_loss")] == [
        "accuracy", "started", "images_per_sec", "batch_size", "nll"]
    with pytest.raises(UserError, match=r"^--sort: got 'acuracy', not a column; did you mean 'accuracy'\?$"):
        sort_column("acuracy")


def test_runs_list_sorts_and_filters(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def listed(*flags: str) -> list[str]:
        code = cli.main(["runs", "list", "--runs-dir", str(root), "--json", *flags])
        out, err = capsys.readouterr()
        assert code == 0, err
        return [r["name"] for r in json.loads(out)]

    assert listed() == ["adam-big", "runB", "watchA", "sweep-1/lr=0.05", "zz-old"]
    assert listed("--sort", "acc") == ["runB", "watchA", "adam-big", "sweep-1/lr=0.05", "zz-old"]
    assert listed("--sort", "date", "--reverse") == ["zz-old", "sweep-1/lr=0.05", "watchA", "runB", "adam-big"]
    assert listed("--filter", "optimizer=adam") == ["adam-big", "watchA"]
    assert listed("--filter", "lr<=0.01 sgd") == []  # sgd is a word: no run's name or status holds it
    assert listed("--filter", "lr<=0.01", "--sort", "lr") == ["watchA", "adam-big", "zz-old"]

    assert cli.main(["runs", "list", "--runs-dir", str(root), "--filter", "acc>0.99"]) == 0
    assert capsys.readouterr().out == f"no run of the 5 in {root} matches --filter 'acc>0.99'\n"

    for flags, needle in ((["--filter", "optimiser=adam"], "error: --filter 'optimiser=adam': unknown field 'optimiser'; did you mean 'optimizer'?"),
                          (["--sort", "colour"], "error: --sort: got 'colour', not a column")):
        code = cli.main(["runs", "list", "--runs-dir", str(root), *flags])
        out, err = capsys.readouterr()
        assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith(needle), err

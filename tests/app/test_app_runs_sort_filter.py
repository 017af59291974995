"""The Runs screen sorted and filtered, and Compare's table of what differs (Pilot, real run folders written through
core.records): newest first by start time, > / < / i and a header click change the sort (shown with ▲/▼), / filters
live with words and expressions, a bad expression is a message on the screen, Esc clears; at 80x24 the Run column and
the footer show whole and no cell is cut; Compare lists exactly the hyperparameters that differ."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import DataTable

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.compare import CompareScreen
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.core.config import TrainConfig

from app_helpers import batch_records, end_record, epoch_record, eval_record, screen_text, shown_text, start_record, wait_for, write_run

# (folder, config, start time, accuracy or None): the folder names do not follow the start times
RUNS = (
    ("watchA", TrainConfig(epochs=1, optimizer="adam", lr=0.001), "2026-11-28 09:43:00", 0.6),
    ("runB", TrainConfig(epochs=1, optimizer="sgd", lr=0.1), "2026-11-28 09:47:00", 0.8),
    ("c-adam-plain", TrainConfig(epochs=1, optimizer="adam", lr=0.01, layers=(1, 1, 1), skip=False), "2026-11-28 09:30:00", None),
    ("sweep-20261128-080000/optimizer=rmsprop,lr=0.05", TrainConfig(epochs=1, optimizer="rmsprop", lr=0.05), "2026-11-28 08:00:00", 0.4),
)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    (root / "sweep-20261128-080000").mkdir(parents=True)
    (root / "sweep-20261128-080000" / "sweep.json").write_text('{"version": 1, "runs": []}\n')
    for name, cfg, started, accuracy in RUNS:
        done = [epoch_record(1, 2.2), eval_record(1, accuracy), end_record("finished", 256.0, 2.0)] if accuracy is not None \
            else [end_record("interrupted", 250.0, 1.0)]
        write_run(root / name, [start_record(cfg, 4, started), *batch_records(1, 4, 128), *done], cfg)
    monkeypatch.chdir(tmp_path)
    return Path("runs")


def names(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]


def header(table: DataTable) -> list[str]:
    return [str(c.label) for c in table.columns.values()]


async def typed(pilot, *keys: str) -> None:
    """Press the keys, then let the filter's Changed messages be handled."""
    await pilot.press(*keys)
    await pilot.pause()


async def open_runs(pilot, rows: int = len(RUNS)) -> tuple[RunsScreen, DataTable]:
    await pilot.press("5")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, RunsScreen), 5, "the Runs screen")
    table = pilot.app.screen.query_one(DataTable)
    await wait_for(pilot, lambda: table.row_count == rows, 5, "the runs")
    return pilot.app.screen, table


async def test_newest_first_and_the_sort_keys_change_the_order_shown_in_the_header(root: Path) -> None:
    app = ResNetApp(runs_root=root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(120, 40)) as pilot:
        screen, table = await open_runs(pilot)
        assert names(table) == ["runB", "watchA", "c-adam-plain", "sweep-20261128-080000/optimizer=rmsprop,lr=0.05"]
        assert "Date (UTC) ▼" in header(table)
        await pilot.press(">")  # the next column: optimizer, A to Z
        assert "Optimizer ▲" in header(table) and not any("▼" in h for h in header(table))
        assert [str(r[2]) for r in map(table.get_row_at, range(4))] == ["adam", "adam", "rmsprop", "sgd"]
        assert names(table)[:2] == ["c-adam-plain", "watchA"]  # ties in name order
        await pilot.press("i")
        assert "Optimizer ▼" in header(table) and names(table)[0] == "runB"
        await pilot.press("<", "<")  # back past the date to the run names, A to Z
        assert header(table)[-1] == "Run ▲" and names(table) == sorted(names(table))
        # a click on a header sorts by its column (accuracy: the best first), a second click reverses it
        x = sum(c.get_render_width(table) for c in list(table.columns.values())[:header(table).index("Accuracy")]) + 2
        await pilot.click(DataTable, offset=(x, 0))
        assert "Accuracy ▼" in header(table)
        assert names(table) == ["runB", "watchA", "sweep-20261128-080000/optimizer=rmsprop,lr=0.05", "c-adam-plain"]  # no accuracy last
        await pilot.click(DataTable, offset=(x, 0))
        assert "Accuracy ▲" in header(table) and names(table)[:2] == ["sweep-20261128-080000/optimizer=rmsprop,lr=0.05", "watchA"]


async def test_slash_filters_live_a_bad_expression_is_a_message_and_escape_clears(root: Path) -> None:
    app = ResNetApp(runs_root=root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_runs(pilot)
        await typed(pilot, "/", *"optimizer=adam")
        assert names(table) == ["watchA", "c-adam-plain"]  # only the adam runs, newest first
        assert "2 of 4 runs" in shown_text(screen.query_one("#runs-info")) and app.screen is screen  # s was typed, not run
        await typed(pilot, "space", *"lr<0.01")
        assert names(table) == ["watchA"] and not app.training
        # a bad expression: one line on the screen naming it; the list stays as the last filter that parsed left it
        await typed(pilot, "space", *"optimiser=sgd")
        status = shown_text(screen.query_one("#runs-filter-status"))
        assert status == "filter 'optimiser=sgd': unknown field 'optimiser'; did you mean 'optimizer'?"
        assert screen.query_one("#runs-filter-status").has_class("-error")
        assert names(table) == []  # "... optimiser", a word on the way, matched no run
        await typed(pilot, "ctrl+u")  # an empty field: every run
        assert len(names(table)) == 4 and shown_text(screen.query_one("#runs-filter-status")).startswith("words of a name")
        await typed(pilot, *"acc>80")
        assert "expected a fraction from 0 to 1 or a percentage like 80%" in shown_text(screen.query_one("#runs-filter-status"))
        await typed(pilot, "%")
        assert names(table) == [] and not screen.query_one("#runs-filter-status").has_class("-error")
        # Enter goes to the list with the filter kept; Esc clears it and every run is back
        await pilot.press("enter")
        assert screen.focused is table and screen.query_one("#runs-filter-bar").display
        await typed(pilot, "escape")
        assert len(names(table)) == 4 and screen.focused is table and not screen.filter
        assert shown_text(screen.query_one("#runs-filter-status")) == ""
        # plain words match names and statuses
        await typed(pilot, "/", *"SWEEP")
        assert names(table) == ["sweep-20261128-080000/optimizer=rmsprop,lr=0.05"]
        await pilot.press("escape")
        assert len(names(table)) == 4


async def test_at_80x24_the_run_column_the_cells_and_the_footer_show_whole(root: Path) -> None:
    app = ResNetApp(runs_root=root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_runs(pilot)
        text = screen_text(app)
        assert header(table)[-1] == "Run" and "sweep-20261128-080000/optimizer=rmsprop,lr=0.05" in text
        assert "Date ▼" in header(table) and "NLL" not in header(table)  # shorter forms, lower columns gave way
        for i in range(table.row_count):  # every cell's text is on the screen, whole
            for cell in table.get_row_at(i):
                assert str(cell) in text, str(cell)
        assert sum(c.get_render_width(table) for c in table.columns.values()) <= 80
        assert text.splitlines()[-1].rstrip().endswith("▏^p palette") and "q Quit" in text.splitlines()[-1]
        # a wider terminal shows more columns
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: "Date (UTC) ▼" in header(table), 5, "the wide layout")
        assert {"Optimizer", "LR", "Epochs", "Accuracy", "Status"} <= set(header(table))


async def test_compare_lists_exactly_the_hyperparameters_that_differ_and_the_final_numbers(root: Path) -> None:
    app = ResNetApp(runs_root=root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        screen, table = await open_runs(pilot)
        for name in ("watchA", "c-adam-plain"):
            table.move_cursor(row=names(table).index(name))
            await pilot.press("space")
        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, 10, "the comparison")
        compare = app.screen
        assert compare.diff_fields == ["lr", "layers", "skip"]  # both adam, 1 epoch: the rest is the same
        diff = compare.query_one(DataTable)
        rows = [[str(c) for c in diff.get_row_at(i)] for i in range(diff.row_count)]
        assert rows[:3] == [["lr", "0.001", "0.01"], ["layers", "2,2,2", "1,1,1"], ["skip", "on", "off (plain)"]]
        assert [r[0] for r in rows[3:]] == ["Accuracy", "NLL", "Epochs done", "img/s", "Train loss", "Status"]
        assert rows[3][1:] == ["60.00%", "-"] and rows[-1][1:] == ["finished", "interrupted"]
        assert "3 hyperparameters differ" in shown_text(compare.query_one("#compare-title"))
        text = screen_text(app)
        assert "off (plain)" in text and "interrupted" in text  # the table is on screen at 80x24, beside the chart's legend
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, 5, "the runs list")
        # runs of one config: nothing differs, and the title says so
        for name in ("watchA", "c-adam-plain"):
            table.move_cursor(row=names(table).index(name))
            await pilot.press("space")
        table.move_cursor(row=names(table).index("runB"))
        await pilot.press("space", "c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, 10, "one run compared")
        assert app.screen.diff_fields == [] and "the same hyperparameters" in shown_text(app.screen.query_one("#compare-title"))

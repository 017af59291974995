"""Comparing runs on the Runs screen: Space marks runs (sweep runs included), c overlays their loss curves
in one chart with a legend, m toggles the smoothing, and a table lists the hyperparameters that differ and the final numbers."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import DataTable

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.compare import CompareChart, CompareScreen, load_curve, smooth
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.core.config import TrainConfig

from app_helpers import batch_records, end_record, epoch_record, eval_record, shown_text, start_record, wait_for, write_run


def test_smoothing_is_an_ema_that_keeps_the_first_value_and_damps_noise():
    ys = [2.0, 3.0, 1.0, 3.0, 1.0, 3.0]
    s = smooth(ys)
    assert s[0] == 2.0 and len(s) == len(ys)
    assert max(s) - min(s) < max(ys) - min(ys)  # smoother than the raw zigzag
    assert list(smooth([])) == []


def add_sweep(root: Path) -> Path:
    """A sweep folder with two finished runs, as resnet_tui.core.sweep leaves it."""
    sweep = root / "sweep-20261128-140000"
    sweep.mkdir(parents=True)
    (sweep / "sweep.json").write_text('{"version": 1, "runs": []}\n')
    for name, opt, acc, skip in (("skip=on", "sgd", 0.40, True), ("skip=off", "sgd", 0.30, False)):
        cfg = TrainConfig(epochs=1, batch_size=128, optimizer=opt, skip=skip)
        write_run(sweep / name, [start_record(cfg, 4, "2026-11-28 14:00:00"), *batch_records(1, 4, 128, 2.3 if skip else 2.5, 0.05),
                                 epoch_record(1, 2.2 if skip else 2.4), eval_record(1, acc), end_record("finished", 256.0, 2.0)], cfg)
    return sweep


def test_load_curve_reads_positions_final_loss_and_nll(runs_root):
    c = load_curve(runs_root / "20261128-100000", "lab")
    assert len(c.losses) == 8 and c.xs[0] == 0.25 and c.xs[-1] == 2.0
    assert c.train_loss == 2.175 and c.nll == 1.2345 and c.summary.accuracy == 0.5


async def test_marked_runs_are_overlaid_with_a_legend_smoothing_toggles_and_the_table_lists_them(runs_root):
    add_sweep(runs_root)
    app = ResNetApp(runs_root=runs_root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the Runs screen")
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_for(pilot, lambda: table.row_count == 6, 5, "four runs and the two of the sweep")
        names = [str(table.get_row_at(i)[-1]) for i in range(table.row_count)]
        assert "sweep-20261128-140000/skip=on" in names and "sweep-20261128-140000/skip=off" in names
        # c with nothing marked only says how
        await pilot.press("c")
        assert isinstance(app.screen, RunsScreen)
        # mark the two sweep runs and the finished lab run (Space marks and moves down)
        wanted = ["sweep-20261128-140000/skip=on", "sweep-20261128-140000/skip=off", "20261128-100000"]
        for name in wanted:
            table.move_cursor(row=names.index(name))
            await pilot.press("space")
        assert {p.name for p in screen.marked} == {"skip=on", "skip=off", "20261128-100000"}
        assert str(table.get_row_at(names.index("20261128-100000"))[0]) == "✓"
        assert "3 marked" in shown_text(screen.query_one("#runs-info"))
        # Space again unmarks; mark it back
        table.move_cursor(row=names.index("20261128-100000"))
        await pilot.press("space")
        assert len(screen.marked) == 2 and str(table.get_row_at(names.index("20261128-100000"))[0]) == ""
        table.move_cursor(row=names.index("20261128-100000"))
        await pilot.press("space")

        await pilot.press("c")
        await wait_for(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.loaded, 10, "the comparison")
        compare = app.screen
        chart = compare.query_one(CompareChart)
        labels = [label for label, _, _ in chart.series]
        assert sorted(labels) == sorted(wanted)  # every marked run is one series, named by its folder
        lab = next(ys for label, _, ys in chart.series if label == "20261128-100000")
        assert len(lab) == 8 and lab[0] == 2.29  # the EMA starts at the first loss ...
        assert lab[-1] != 2.16  # ... and lags the falling raw curve
        raw_lab = [2.29, 2.28, 2.27, 2.26, 2.19, 2.18, 2.17, 2.16]
        assert "smoothed" in shown_text(compare.query_one("#compare-title"))
        await pilot.press("m")  # raw
        lab_raw = next(ys for label, _, ys in chart.series if label == "20261128-100000")
        assert lab_raw == raw_lab and "raw" in shown_text(compare.query_one("#compare-title"))
        await pilot.press("m")
        assert next(ys for label, _, ys in chart.series if label == "20261128-100000") == lab
        # the legend is drawn: the plot's text holds each run's name
        drawn = chart.plt.build()
        assert "skip=off" in drawn and "20261128-100000" in drawn

        # the table: a column per run (in the list's order), the hyperparameters that differ, then the final numbers
        table = compare.query_one(DataTable)
        order = [str(c.path.relative_to(runs_root)) for c in compare.curves]
        assert [str(table.columns[k].label) for k in list(table.columns)[1:]] == [name.split("/")[-1] for name in order]
        rows = {str(table.get_row_at(i)[0]): dict(zip(order, map(str, table.get_row_at(i)[1:]))) for i in range(table.row_count)}
        assert list(rows) == ["epochs", "skip", "Accuracy", "NLL", "Epochs done", "img/s", "Train loss", "Status"]
        assert rows["skip"] == {"20261128-100000": "on", "sweep-20261128-140000/skip=on": "on", "sweep-20261128-140000/skip=off": "off (plain)"}
        assert rows["epochs"]["20261128-100000"] == "2" and rows["epochs"]["sweep-20261128-140000/skip=on"] == "1"
        lab = {k: v["20261128-100000"] for k, v in rows.items()}
        assert lab == {"epochs": "2", "skip": "on", "Accuracy": "50.00%", "NLL": "1.2345", "Epochs done": "2/2", "img/s": "256",
                       "Train loss": "2.1750", "Status": "finished"}
        assert rows["Train loss"]["sweep-20261128-140000/skip=off"] == "2.4000" and rows["Accuracy"]["sweep-20261128-140000/skip=on"] == "40.00%"
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the list again")


async def test_o_opens_a_sweep_folder_as_the_runs_root(runs_root):
    sweep = add_sweep(runs_root)
    app = ResNetApp(runs_root=runs_root, config=TrainConfig(data="sample"), device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the Runs screen")
        screen = app.screen
        await pilot.press("o")
        await wait_for(pilot, lambda: app.screen.query("#ask-input"), 5, "the folder dialog")
        app.screen.query_one("#ask-input").value = str(sweep)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the list")
        table = screen.query_one(DataTable)
        assert app.runs_root == sweep and table.row_count == 2
        assert sorted(str(table.get_row_at(i)[-1]) for i in range(2)) == ["skip=off", "skip=on"]

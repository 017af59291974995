"""The Lens view: l on the Runs screen opens the highlighted run's lens, or the two marked runs side by side on one
colour scale; n cycles the quantity; a run still being written is followed; snapshots at 80x24 and 120x40."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from resnet_tui.core import events as ev
from resnet_tui.core.config import TrainConfig
from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.lens import LensScreen

from app_helpers import batch_records, end_record, record, start_record, write_run, wait_for

BLOCKS = ["stem", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0", "layer3.1", "fc"]
STEPS = 40


def lens_events(skip: bool, steps: int = STEPS) -> list[ev.LensMeasure]:
    """A residual network whose gradient norms stay about even across depth, and a plain one whose early blocks'
    gradients vanish as training goes on (synthetic, fixed values)."""
    out = []
    for s in range(1, steps + 1):
        depth = [(len(BLOCKS) - 1 - r) for r in range(len(BLOCKS))]  # 0 at fc, 7 at the stem
        grad = [1.0 + 0.1 * math.sin(s / 5 + r) for r in range(len(BLOCKS))] if skip else \
            [10 ** (-d * s / (2 * steps)) for d in depth]
        ratio = [math.nan, *[0.3 + 0.01 * s for _ in BLOCKS[1:-1]], math.nan] if skip else \
            [math.nan, *[1.1 - 0.005 * s for _ in BLOCKS[1:-1]], math.nan]
        out.append(ev.LensMeasure(1 + (s - 1) // 20, 1 + (s - 1) % 20, s, list(BLOCKS),
                                  {"ratio": ratio, "grad": grad, "mean": [0.1 * r for r in range(len(BLOCKS))],
                                   "std": [1.0 + 0.05 * r for r in range(len(BLOCKS))]}))
    return out


@pytest.fixture
def lens_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "runs"
    for name, skip in (("residual", True), ("plain", False)):
        cfg = TrainConfig(epochs=2, layers=(2, 2, 2), skip=skip)
        write_run(root / name, [start_record(cfg, 20, "2026-11-28 10:00:00"), *batch_records(1, 2, 128),
                                *[record(m) for m in lens_events(skip)], end_record("finished", 256.0, 4.0)], cfg)
    monkeypatch.chdir(tmp_path)
    return Path("runs")


async def open_lens(pilot, marks: int) -> LensScreen:
    await pilot.press("5")
    await wait_for(pilot, lambda: len(pilot.app.screen.summaries) == 2, 10, "the runs")
    for _ in range(marks):
        await pilot.press("space")
    await pilot.press("l")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, LensScreen) and pilot.app.screen.loaded, 10, "the lens")
    await pilot.pause()
    return pilot.app.screen


async def test_two_marked_runs_side_by_side_on_one_scale_and_n_cycles_the_quantity(lens_runs: Path) -> None:
    app = ResNetApp(device_label="CPU", runs_root=lens_runs)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await open_lens(pilot, marks=2)
        heatmap = screen.heatmap
        labels = [label for label, _ in heatmap.runs]
        assert sorted(labels) == ["plain", "residual"] and heatmap.quantity == "grad" and len(heatmap.matrices) == 2
        plain_m, residual_m = heatmap.matrices[labels.index("plain")], heatmap.matrices[labels.index("residual")]
        measured = {label: [v for m in s.measures for v in m.values["grad"]] for label, s in heatmap.runs}
        # one scale for both: every measured value of either run, whatever the terminal's width
        assert heatmap.scale == (min(measured["plain"]), max(measured["residual"]))
        # the plain network's smallest gradient (its stem, late) sets the low end; the residual one stays near 1
        assert heatmap.scale[0] < 0.01 and min(measured["residual"]) > 0.8
        assert min(v for row in plain_m for v in row) < 0.01 < 0.8 < min(v for row in residual_m for v in row)
        legend = str(screen.query_one("#lens-legend").render())
        assert f"{heatmap.scale[0]:.2e}" in legend and "log scale" in legend
        seen = []
        for _ in range(4):
            await pilot.press("n")
            await pilot.pause()
            seen.append(heatmap.quantity)
        assert seen == ["mean", "std", "ratio", "grad"]
        assert "gradient norm" in str(screen.query_one("#lens-title").render())
        await pilot.press("escape")
        assert not isinstance(app.screen, LensScreen)
        sections = dict(app.help_sections())  # ? lists the keys of the Lens view and l on the Runs screen
        assert any("n" in key for key, _ in sections["Lens"])
        assert all(any("l" == key for key, _ in sections[where]) for where in ("Model", "Runs", "A run"))


async def test_l_without_marks_shows_the_highlighted_run_and_follows_a_live_one(lens_runs: Path) -> None:
    live = lens_runs / "live"
    cfg = TrainConfig(epochs=2, layers=(2, 2, 2))
    write_run(live, [start_record(cfg, 20, "2026-11-28 11:00:00"), *[record(m) for m in lens_events(True, 5)]], cfg)
    app = ResNetApp(device_label="CPU", runs_root=lens_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: len(pilot.app.screen.summaries) == 3, 10, "the runs")
        names = [s.path.name for s in pilot.app.screen.summaries]
        for _ in range(names.index("live")):
            await pilot.press("down")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LensScreen) and app.screen.loaded, 10, "the lens")
        screen = app.screen
        assert [label for label, _ in screen.series] == ["live"] and screen.live
        assert len(screen.series[0][1].measures) == 5
        with open(live / "metrics.jsonl", "a") as f:  # the trainer writes on
            for m in lens_events(True, 9)[5:]:
                f.write(json.dumps(record(m)) + "\n")
        await wait_for(pilot, lambda: len(screen.series[0][1].measures) == 9, 10, "the new records")
        await pilot.pause()
        from resnet_tui.app.screenshots import screen_text

        text = screen_text(app)  # one run: the latest values beside the rows
        last = lens_events(True, 9)[-1].values["grad"]
        stem = next(line for line in text.splitlines() if line.lstrip().startswith("stem"))
        assert "now" in text and f"{last[0]:.4g}" in stem and f"{last[-1]:.4g}" in text


async def test_l_in_a_run_view_opens_that_runs_lens(lens_runs: Path) -> None:
    from resnet_tui.app.screens.run_view import RunViewScreen

    app = ResNetApp(device_label="CPU", runs_root=lens_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_for(pilot, lambda: len(pilot.app.screen.summaries) == 2, 10, "the runs")
        first = pilot.app.screen.summaries[0].path.name
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunViewScreen), 10, "the run view")
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LensScreen) and app.screen.loaded, 10, "the lens")
        assert [label for label, _ in app.screen.series] == [first] and not app.screen.live
        await pilot.press("escape")
        assert isinstance(app.screen, RunViewScreen)


async def test_l_on_the_model_screen_opens_the_current_runs_lens_or_says_there_is_none(lens_runs: Path) -> None:
    app = ResNetApp(device_label="CPU", runs_root=lens_runs)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2", "l")
        await pilot.pause()
        assert not isinstance(app.screen, LensScreen)
        assert any("No current run" in str(n.message) for n in app._notifications)
        app.current_run_dir = lens_runs / "plain"  # as when a run is trained or evaluated here
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, LensScreen) and app.screen.loaded, 10, "the lens")
        assert [label for label, _ in app.screen.series] == ["plain"]


SIZES = [(80, 24), (120, 40)]


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_lens_screen_snapshot(snap_compare, size, lens_runs: Path) -> None:
    async def show(pilot) -> None:
        await open_lens(pilot, marks=2)

    assert snap_compare(ResNetApp(device_label="CPU", runs_root=lens_runs), terminal_size=size, run_before=show)

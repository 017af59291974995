"""The Evaluate screen as a person uses it, on a real checkpoint evaluated on 200 real test images: the cursor and
Enter (or a double click) on a confusion cell show exactly that cell's images with their top-3 classes, the samples
filter and order, the focus after evaluating and PageDown at 80x24; and keys typed into a select or a text field
never act as global keys."""

from __future__ import annotations

from textual.widgets import Input, Select

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.screens.evaluate import EvaluateScreen
from resnet_tui.app.screens.train import TrainScreen
from resnet_tui.app.widgets.confusion import HEADER_LINES, ConfusionTable
from resnet_tui.app.widgets.samples import PAGE_SIZE, PredictionCard, SampleGrid, SamplesPanel
from resnet_tui.core.config import TrainConfig

from app_helpers import screen_text, wait_for

N_TEST = 200


def eval_app(trained_run, cifar_dir, tmp_path, **kwargs) -> ResNetApp:
    cfg = TrainConfig(data=str(cifar_dir), limit_train=64, limit_eval=N_TEST, layers=(1, 1, 1), batch_size=32, device="cpu")
    return ResNetApp(config=cfg, runs_root=tmp_path, device_label="CPU", **kwargs)


async def evaluated(pilot, app: ResNetApp) -> EvaluateScreen:
    await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
    screen = app.screen
    await wait_for(pilot, lambda: screen.result is not None, 60, "the evaluation")
    await pilot.pause()
    return screen


async def evaluate_by_path(pilot, app: ResNetApp, trained_run) -> tuple[EvaluateScreen, Input]:
    """Screen 4, the run's checkpoint typed into the path field, Enter (which evaluates); the screen with its result."""
    await pilot.press("4")
    await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 10, "the Evaluate screen")
    field = app.screen.query_one("#checkpoint-input", Input)
    field.focus()
    field.value = checkpoint(trained_run)
    await pilot.press("enter")
    return await evaluated(pilot, app), field


def cell_by_hand(r, t: int, p: int) -> list[int]:
    return [i for i in range(r.n) if r.labels[i] == t and r.predictions[i] == p]


def shown_cards(screen) -> list[PredictionCard]:
    return list(screen.query_one(SampleGrid).query(PredictionCard))


def checkpoint(trained_run) -> str:
    return str(trained_run / "checkpoints" / "cifar10_model_epoch_0.pth")


async def test_after_evaluating_the_results_have_the_focus_and_arrows_and_enter_open_a_cell(trained_run, cifar_dir, tmp_path):
    app = eval_app(trained_run, cifar_dir, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, field = await evaluate_by_path(pilot, app, trained_run)
        r, table = screen.result, screen.query_one(ConfusionTable)
        assert r.n == N_TEST and app.focused is table  # the results take the focus
        # PageDown (the results scroll) reaches the samples below the fold; Tab goes on through them
        assert " pred: " not in screen_text(app)
        for _ in range(4):
            await pilot.press("pagedown")
            if " pred: " in screen_text(app):
                break
        assert " pred: " in screen_text(app)
        order = []
        for _ in range(4):
            await pilot.press("tab")
            order.append(app.focused.id)
        assert order == ["sample-mode", "sample-order", "sample-seed", "sample-grid"]
        await pilot.press(*["shift+tab"] * 4)
        assert app.focused is table
        # from the path field too, PageDown and PageUp scroll the results (the field keeps the focus)
        results = screen.query_one("#eval-results")
        results.scroll_home(animate=False)
        field.focus()
        await pilot.press("pagedown")
        await wait_for(pilot, lambda: results.scroll_y > 0, 5, "the results to scroll")
        await pilot.press("pageup")
        await wait_for(pilot, lambda: results.scroll_y == 0, 5, "the results to scroll back")
        assert app.focused is field
        table.focus()
        await pilot.pause()
        # the cursor starts on the largest mistake; the arrows move it to another cell, Enter opens it
        start = table.cursor
        assert start[0] != start[1] and r.confusion[start[0]][start[1]] == max(
            r.confusion[t][p] for t in range(10) for p in range(10) if t != p)
        cells = sorted(((t, p) for t in range(10) for p in range(10) if r.confusion[t][p]), key=lambda c: -r.confusion[c[0]][c[1]])
        target = next(c for c in cells if c != start and c[0] != c[1])
        rows, cols = target[0] - start[0], target[1] - start[1]
        await pilot.press(*(["down"] * rows if rows > 0 else ["up"] * -rows), *(["right"] * cols if cols > 0 else ["left"] * -cols))
        assert table.cursor == target
        await pilot.press("enter")
        samples = screen.query_one(SamplesPanel)
        expected = cell_by_hand(r, *target)
        await wait_for(pilot, lambda: [c.index for c in shown_cards(screen)] == expected[:PAGE_SIZE], 5, "the cell's images")
        assert samples.indices == expected and app.focused is screen.query_one(SampleGrid)
        for card in shown_cards(screen):
            assert (card.true_name, card.pred_name) == (r.classes[target[0]], r.classes[target[1]]) and not card.correct
            probs = r.probabilities[card.index]
            best = sorted(range(10), key=lambda c: -probs[c])[:3]
            assert [name for name, _ in card.top] == [r.classes[c] for c in best]
            assert [p for _, p in card.top] == [float(probs[c]) for c in best]
        text = screen_text(app)
        assert f"Samples: true {r.classes[target[0]]} → {r.classes[target[1]]} · {len(expected)} images" in text
        assert f"✗ pred: {r.classes[target[1]]} {r.probabilities[expected[0]].max():.0%}" in text
        if len(expected) > PAGE_SIZE:  # ] turns the page within the grid
            await pilot.press("right_square_bracket")
            await wait_for(pilot, lambda: [c.index for c in shown_cards(screen)] == expected[PAGE_SIZE:2 * PAGE_SIZE], 5, "page 2")


async def test_clicks_on_cells_then_wrong_only_and_random_order_with_a_seed(trained_run, cifar_dir, tmp_path):
    app = eval_app(trained_run, cifar_dir, tmp_path, mode="evaluate", checkpoint=checkpoint(trained_run))
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await evaluated(pilot, app)
        r, table, samples = screen.result, screen.query_one(ConfusionTable), screen.query_one(SamplesPanel)
        # a click moves the cursor; a double click opens the cell
        target = next((t, p) for t in range(9, -1, -1) for p in range(10) if r.confusion[t][p] and (t, p) != table.cursor)
        offset = (table.label_width + target[1] * table.cell_width + table.cell_width - 1, HEADER_LINES + target[0])
        await pilot.click(ConfusionTable, offset=offset)
        assert table.cursor == target
        assert [c.index for c in shown_cards(screen)] == list(range(PAGE_SIZE))  # one click only moves the cursor
        await pilot.click(ConfusionTable, offset=offset, times=2)
        await wait_for(pilot, lambda: samples.indices == cell_by_hand(r, *target), 5, "the clicked cell")
        # Show: wrong only, from the keyboard
        wrong = [i for i in range(r.n) if r.labels[i] != r.predictions[i]]
        await pilot.press("shift+tab", "shift+tab", "shift+tab")  # from the grid back to "Show"
        assert app.focused is screen.query_one("#sample-mode", Select)
        await pilot.press("enter", "home", "down", "enter")  # all images, then wrong only
        await wait_for(pilot, lambda: samples.indices == wrong, 5, "the wrong ones")
        cards = shown_cards(screen)
        assert [c.index for c in cards] == wrong[:PAGE_SIZE] and all(not c.correct and c.has_class("-wrong") for c in cards)
        # Order: random with a seed, reproducible
        await pilot.press("tab", "enter", "down", "enter")
        await wait_for(pilot, lambda: samples.order == "random", 5, "random order")
        seed0 = list(samples.indices)
        assert sorted(seed0) == wrong and seed0 != wrong
        await pilot.press("tab", "backspace", "4", "2")  # Seed 42: digits go into the field, not to the screen keys
        await wait_for(pilot, lambda: samples.seed == 42, 5, "seed 42")
        assert isinstance(app.screen, EvaluateScreen) and sorted(samples.indices) == wrong and samples.indices != seed0
        seed42 = list(samples.indices)
        await pilot.press("backspace", "backspace", "0")
        await wait_for(pilot, lambda: samples.seed == 0, 5, "seed 0 again")
        assert samples.indices == seed0  # the same seed, the same order
        assert [c.index for c in shown_cards(screen)] == seed0[:PAGE_SIZE] and seed42 != seed0


async def test_keys_typed_into_a_select_or_a_text_field_are_not_global_keys(cifar_dir, tmp_path):
    cfg = TrainConfig(data=str(cifar_dir), limit_train=64, limit_eval=50, layers=(1, 1, 1), device="cpu")
    app = ResNetApp(config=cfg, runs_root=tmp_path, device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        train = app.screen
        assert isinstance(train, TrainScreen)
        optimizer = train.query_one("#field-optimizer", Select)
        optimizer.focus()
        await pilot.press("s")  # a focused select on the Train screen
        await pilot.pause()
        assert not app.job.active and not app.training
        await pilot.press("4", "question_mark", "q")
        await pilot.press("enter", "s", "2")  # and its open list
        await pilot.pause()
        assert not app.job.active and not app.training and app.screen is train and app.is_running
        await pilot.press("escape", "escape")
        await pilot.press("4")  # not in a field: digits switch screens
        await wait_for(pilot, lambda: isinstance(app.screen, EvaluateScreen), 5, "the Evaluate screen")
        screen = app.screen
        which = screen.query_one("#best-by", Select)
        which.focus()
        await pilot.press("e", "s", "1")  # e would evaluate, s start training, 1 switch to Train
        await pilot.pause()
        assert not screen.evaluating and not app.job.active and app.screen is screen
        field = screen.query_one("#checkpoint-input", Input)
        field.focus()
        field.value = ""
        await pilot.press("3", "s", "e")
        assert field.value == "3se" and app.screen is screen and not app.job.active and not screen.evaluating


async def test_d_diffs_another_checkpoint_against_the_result(trained_run, cifar_dir, tmp_path):
    """d on the Evaluate screen asks for B (pre-filled with A's path), evaluates it the same way in a worker and opens
    the diff; B = A's own run folder (its last epoch, the same checkpoint) changes nothing."""
    from resnet_tui.app.screens.eval_diff import EvalDiffScreen, PickAgainst

    app = eval_app(trained_run, cifar_dir, tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen, _ = await evaluate_by_path(pilot, app, trained_run)
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, PickAgainst), 5, "the B dialog")
        b = app.screen.query_one("#against-input", Input)
        assert b.value == checkpoint(trained_run)
        b.value = str(trained_run)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EvalDiffScreen), 60, "the diff")
        diff = app.screen.diff
        assert diff.n == N_TEST and diff.confusion_a == screen.result.confusion == diff.confusion_b
        assert diff.most_changed == []
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is screen, 5, "back to Evaluate")

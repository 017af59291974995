"""Getting around: number keys, the help screen, the command palette, the too-small terminal."""

from __future__ import annotations

from textual.command import CommandPalette

from resnet_tui.app.app import ResNetApp
from resnet_tui.core.config import TrainConfig
from resnet_tui.app.screens.data import DataScreen
from resnet_tui.app.screens.dialogs import HelpScreen
from resnet_tui.app.screens.evaluate import EvaluateScreen
from resnet_tui.app.screens.model import ModelScreen
from resnet_tui.app.screens.runs import RunsScreen
from resnet_tui.app.screens.train import TrainScreen

from app_helpers import screen_text, wait_for


def make_app(tmp_path, **kwargs) -> ResNetApp:
    # data=sample: the Data screen loads the bundled sample (data=auto could start a CIFAR-10 download)
    return ResNetApp(config=TrainConfig(data="sample", limit_train=100), runs_root=tmp_path / "runs", device_label="CPU", **kwargs)


async def test_number_keys_switch_between_the_five_screens(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, TrainScreen)
        assert "Hyperparameters" in screen_text(app)
        for key, screen_type, visible in (("2", ModelScreen, "trainable parameters"), ("3", DataScreen, "Split"),
                                          ("4", EvaluateScreen, "Path or URL"), ("5", RunsScreen, "No runs in"),
                                          ("1", TrainScreen, "Hyperparameters")):
            await pilot.press(key)
            await wait_for(pilot, lambda: isinstance(app.screen, screen_type), 5, f"{screen_type.__name__}")
            await wait_for(pilot, lambda: visible in screen_text(app), 20, f"{visible!r} on {screen_type.__name__}")
        # each screen keeps its state: the same Train screen object comes back
        train = app.screen
        await pilot.press("2", "1")
        assert app.screen is train


async def test_question_mark_shows_every_key(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 160)) as pilot:  # the list scrolls; a terminal this tall shows all of it at once
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), 5, "the help screen")
        text = screen_text(app)
        for expected in ("Start/stop", "Keys", "Quit", "Zoom", "Evaluate", "Refresh", "Back to runs", "tab, shift+tab",
                         "Train screen", "Model screen", "Runs screen", "ctrl+p", "log or linear loss axis", "smoothing on/off", "filter: words"):
            assert expected in text, expected
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, TrainScreen), 5, "the help screen to close")


async def test_command_palette_offers_the_main_actions(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for expected in ("Start training", "Evaluate checkpoint", "Evaluate the lab's published checkpoint",
                         "Screen: Train", "Screen: Model", "Screen: Data", "Screen: Evaluate", "Screen: Runs", "Theme", "Keys"):
            assert expected in titles, expected
        # and it runs them: open the palette, pick "Screen: Runs"
        await pilot.press("ctrl+p")
        await wait_for(pilot, lambda: isinstance(app.screen, CommandPalette), 5, "the command palette")
        await pilot.press(*"Screen: Runs")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen), 5, "the Runs screen")


async def test_a_terminal_smaller_than_80x24_shows_a_message_instead_of_the_layout(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(70, 20)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "Make the terminal at least 80x24" in text and "(it is 70x20 now)" in text
        assert "Hyperparameters" not in text
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: "Hyperparameters" in screen_text(app), 5, "the layout at 80x24")
        assert "Make the terminal" not in screen_text(app)
        await pilot.resize_terminal(100, 23)  # wide enough but too short
        await wait_for(pilot, lambda: "Make the terminal at least 80x24" in screen_text(app), 5, "the message again")
        await pilot.press("3")  # other screens too
        await wait_for(pilot, lambda: isinstance(app.screen, DataScreen), 5, "the Data screen")
        await pilot.pause()
        assert "Make the terminal at least 80x24" in screen_text(app)

"""The hyperparameter form: validation as you type (config.parse_field), presets, and no start while invalid."""

from __future__ import annotations

from textual.widgets import Button, Input, Select

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.widgets.config_form import ConfigForm
import pytest

from resnet_tui.core.config import ConfigError, TrainConfig, parse_field

from app_helpers import type_into, read_records, screen_text, shown_text, wait_for


def config_error(name: str, value: str, label: str) -> str:
    """The line the CLI's parser gives for this value (the form must show the same)."""
    with pytest.raises(ConfigError) as e:
        parse_field(name, value)
    return e.value.render(label)


def make_app(tmp_path, **kwargs) -> ResNetApp:
    return ResNetApp(config=TrainConfig(data="sample"), runs_root=tmp_path / "runs", device_label="CPU", **kwargs)


async def test_invalid_fields_are_marked_with_the_reason_and_block_training(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 40)) as pilot:
        form = app.screen.query_one(ConfigForm)
        start = app.screen.query_one("#start", Button)
        assert not start.disabled
        await type_into(pilot, app, "epochs", "0")
        assert form.errors == {"epochs": "Epochs: got '0', expected an integer >= 1"}
        assert shown_text(app.screen.query_one("#error-epochs")) == "✗ Epochs: got '0', expected an integer >= 1"
        assert "✗ Epochs: got '0'," in screen_text(app)  # on screen, not only in the widget
        assert app.screen.query_one("#field-epochs", Input).has_class("-invalid")
        assert app.screen.query_one("#row-epochs").has_class("-invalid")
        assert start.disabled and form.config is None
        await type_into(pilot, app, "lr", "fast")
        await type_into(pilot, app, "layers", "2,2")
        assert set(form.errors) == {"epochs", "lr", "layers"}
        assert shown_text(app.screen.query_one("#error-lr")) == "✗ Learning rate: got 'fast', expected a number > 0"
        assert shown_text(app.screen.query_one("#error-layers")) == "✗ " + config_error("layers", "2,2", "Layers")
        assert shown_text(app.screen.query_one("#form-status")) == "3 invalid fields: training cannot start"
        assert shown_text(app.screen.query_one("#error-batch_size")) == ""  # valid fields show no error
        # s (from outside the field) refuses, and says why
        await pilot.press("escape", "s")
        await pilot.pause()
        assert not app.training and not list(app.workers)
        assert any("Fix the invalid fields first" in (n.title or "") for n in app._notifications)
        # fixing them enables the start again
        await type_into(pilot, app, "epochs", "3")
        await type_into(pilot, app, "lr", "0.01")
        await type_into(pilot, app, "layers", "1, 2, 3")
        assert form.errors == {} and not start.disabled
        assert form.config == TrainConfig(data="sample", epochs=3, lr=0.01, layers=(1, 2, 3))
        assert app.form_config.layers == (1, 2, 3)  # the other screens follow the valid form


async def test_every_form_field_is_validated_by_the_config_parser(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 40)) as pilot:
        form = app.screen.query_one(ConfigForm)
        bad = {"data": "", "epochs": "x", "batch_size": "-1", "lr": "0", "momentum": "1.5", "weight_decay": "-0.1",
               "seed": "1.5", "layers": "0,1,1", "device": "gpu", "limit_train": "0", "limit_eval": "many"}
        for name, value in bad.items():
            form.set_value(name, value)
        await pilot.pause()
        assert set(form.errors) == set(bad)
        assert form.errors["device"] == "Device: got 'gpu', expected auto, cpu, cuda, cuda:N or mps"


async def test_choosing_a_preset_fills_the_fields_which_stay_editable(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 40)) as pilot:
        form = app.screen.query_one(ConfigForm)
        preset = app.screen.query_one("#field-preset", Select)
        preset.focus()
        await pilot.press("enter")  # open the list, move to "fast", choose it
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: form.value_text("epochs") == "30", 5, "the fast preset's epochs")
        assert form.value_text("optimizer") == "sgd"
        assert (form.value_text("momentum"), form.value_text("weight_decay")) == ("0.9", "0.0005")
        assert (form.value_text("batch_size"), form.value_text("lr")) == ("64", "0.025")  # the CPU variant
        assert form.value_text("data") == "sample"  # presets leave the data alone
        await type_into(pilot, app, "epochs", "3")
        cfg = form.config
        assert cfg is not None and cfg.epochs == 3 and cfg.preset == "fast"
        assert cfg.nesterov and cfg.augment and cfg.schedule == "warmup-linear"  # set by the preset, shown on the form
        assert (form.value_text("nesterov"), form.value_text("augment"), form.value_text("schedule")) == ("on", "on", "warmup-linear")
        # back to lab: the lab's values again
        preset.value = "lab"
        await wait_for(pilot, lambda: form.value_text("momentum") == "0", 5, "the lab preset's momentum")
        assert form.config == TrainConfig(data="sample")


async def test_skip_off_in_the_form_trains_the_plain_network(tiny_config, tmp_path):
    """The form's "Skip connections" goes through parse_field into the TrainConfig the app trains with."""
    import tomllib

    from resnet_tui.core.model import ResNet, param_count

    app = ResNetApp(config=tiny_config.replace(epochs=1), runs_root=tmp_path / "runs", device_label="CPU")
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        skip = app.screen.query_one("#field-skip", Select)
        assert skip.value == "on" and form.config.skip is True
        skip.focus()
        await pilot.press("enter", "down", "enter")  # open the list, choose "off"
        await wait_for(pilot, lambda: skip.value == "off", 5, "skip off")
        assert form.errors == {} and form.config == tiny_config.replace(epochs=1, skip=False)
        assert app.form_config.skip is False
        form.set_value("skip", "true")  # what parse_field reads, as the TOML file and --skip do
        assert skip.value == "on" and form.config.skip is True
        form.set_value("skip", False)
        assert skip.value == "off" and form.config.skip is False
        await pilot.press("escape", "s")
        end = await app.wait_for_run_end(timeout=120)
        assert end is not None and end.status == "finished", app.last_error
        run_dir = app.current_run_dir
        with open(run_dir / "config.toml", "rb") as f:
            assert tomllib.load(f)["skip"] is False
        start = next(r for r in read_records(run_dir) if r["event"] == "start")
        plain, with_skips = param_count(ResNet((1, 1, 1), skip=False)), param_count(ResNet((1, 1, 1)))
        assert plain < with_skips and start["param_count"] == plain and start["config"]["skip"] is False

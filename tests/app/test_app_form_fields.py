"""The form shows every field of the config (grouped, scrollable at 80x24, reached by Tab), a preset fills
them on screen, and the cross-field warnings of config_checks show under their field as you type without
blocking the start."""

from __future__ import annotations

import tomllib
from pathlib import Path

from textual.widgets import Button, Select

from resnet_tui.app.app import ResNetApp
from resnet_tui.app.widgets.config_form import GROUP_STARTS, ConfigForm, field_text
from resnet_tui.core.config import FIELDS, TrainConfig, preset_values

from app_helpers import type_into, screen_text, shown_text, wait_for

WARMUP_WARNING = "! warm-up 2 epochs >= 1 epoch: the lr never decays"


def make_app(tmp_path: Path, config: TrainConfig | None = None) -> ResNetApp:
    return ResNetApp(config=config or TrainConfig(data="sample"), runs_root=tmp_path / "runs", device_label="CPU")


def in_view(form: ConfigForm, widget) -> bool:
    """On screen inside the form's scrolled viewport, not only in the widget tree."""
    return widget.region.area > 0 and form.scrollable_content_region.contains_region(widget.region)


async def test_every_field_is_on_the_form_at_80x24_in_fields_order_and_tab_scrolls_to_each(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        assert form.max_scroll_y > 0  # the fields do not fit: the form scrolls
        headings = [shown_text(h) or str(h.content) for h in form.query(".form-heading")]
        assert headings == list(GROUP_STARTS.values())
        app.screen.query_one("#start", Button).focus()
        reached = []
        for _ in range(len(FIELDS)):
            await pilot.press("tab")
            await pilot.pause()
            focused = app.screen.focused
            assert focused is not None and (focused.id or "").startswith("field-"), focused
            name = focused.id.removeprefix("field-")
            await wait_for(pilot, lambda: in_view(form, focused), 5, f"the {name} field scrolled into view")
            reached.append(name)
        assert reached == [f.name for f in FIELDS]
        assert form.scroll_y > 0  # Tab scrolled the form down to the last field


async def test_choosing_the_fast_preset_fills_every_field_it_sets_on_the_form(tmp_path):
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        preset = app.screen.query_one("#field-preset", Select)
        preset.focus()
        await pilot.press("enter", "down", "enter")  # open the list, choose "fast"
        await wait_for(pilot, lambda: form.value_text("epochs") == "30", 5, "the fast preset's epochs")
        fast = preset_values("fast", "cpu")
        assert {name: form.value_text(name) for name in fast} == {name: field_text(name, v) for name, v in fast.items()}
        shown = {name: form.value_text(name) for name in ("nesterov", "schedule", "warmup_epochs", "label_smoothing",
                                                          "augment", "tta")}
        assert shown == {"nesterov": "on", "schedule": "warmup-linear", "warmup_epochs": "2", "label_smoothing": "0.1",
                         "augment": "on", "tta": "on"}
        app.screen.query_one("#field-tta", Select).focus()  # scrolled to: the values are on the screen
        await pilot.pause()
        await wait_for(pilot, lambda: in_view(form, app.screen.query_one("#field-tta")), 5, "the TTA field in view")
        text = screen_text(app)
        assert "Label smoothing  0.1" in text and "Augment          on" in text and "TTA              on" in text
        assert form.warnings == {} and form.config == TrainConfig(data="sample", **fast)


async def test_a_warm_up_as_long_as_the_run_warns_under_its_field_and_training_still_starts(tiny_config, tmp_path):
    app = make_app(tmp_path, tiny_config.replace(epochs=1, schedule="warmup-linear"))
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        warning = app.screen.query_one("#warning-warmup_epochs")
        await type_into(pilot, app, "warmup_epochs", "2")
        assert form.warnings == {"warmup_epochs": WARMUP_WARNING.removeprefix("! ")}
        assert shown_text(warning) == WARMUP_WARNING
        await wait_for(pilot, lambda: in_view(form, warning), 5, "the warning scrolled into view")
        text = screen_text(app)  # under the field being typed into, on screen (in two lines)
        assert "! warm-up 2 epochs >= 1" in text and "the lr never decays" in text
        assert app.screen.query_one("#row-warmup_epochs").has_class("-warned")
        assert form.errors == {} and not app.screen.query_one("#start", Button).disabled
        assert shown_text(app.screen.query_one("#form-status")) == ""
        # another field settles it: 3 epochs are longer than the warm-up
        await type_into(pilot, app, "epochs", "3")
        assert shown_text(warning) == "" and form.warnings == {}
        await type_into(pilot, app, "epochs", "[b]1")  # an error line shows what was typed as text, never as markup
        assert shown_text(app.screen.query_one("#error-epochs")) == "✗ Epochs: got '[b]1', expected an integer >= 1"
        await type_into(pilot, app, "epochs", "1")
        assert shown_text(warning) == WARMUP_WARNING
        await pilot.press("escape", "s")
        end = await app.wait_for_run_end(timeout=120)
        assert end is not None and end.status == "finished", app.last_error
        with open(app.current_run_dir / "config.toml", "rb") as f:
            saved = tomllib.load(f)
        assert (saved["warmup_epochs"], saved["epochs"], saved["schedule"]) == (2.0, 1, "warmup-linear")


async def test_a_data_folder_that_does_not_exist_is_marked_as_it_is_typed(cifar_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # "40" is relative to the working directory
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        warning = app.screen.query_one("#warning-data")
        assert shown_text(warning) == ""
        await type_into(pilot, app, "data", "4")
        assert shown_text(warning) == "! no such folder"
        await pilot.press("0")
        await pilot.pause()
        assert form.value_text("data") == "40" and shown_text(warning) == "! no such folder"
        assert app.screen.query_one("#row-data").has_class("-warned")
        (tmp_path / "40" / "train").mkdir(parents=True)
        await type_into(pilot, app, "data", "40")
        assert shown_text(warning) == "! no train/ and test/ folders in it"
        form.set_value("data", str(cifar_dir))
        await pilot.pause()
        assert shown_text(warning) == "" and not app.screen.query_one("#row-data").has_class("-warned")
        form.set_value("data", "sample")
        await pilot.pause()
        assert form.warnings == {} and form.errors == {}


async def test_a_loaded_config_is_shown_in_every_field_and_read_back_exactly(tmp_path):
    """What load() shows (a resumed run's config) is what trains: no field left out, no digit rounded away."""
    app = make_app(tmp_path)
    loaded = TrainConfig(data="sample", preset="fast", lr=0.00123456789, warmup_epochs=0.3333, label_smoothing=0.05,
                         nesterov=True, momentum=0.9, schedule="warmup-linear", augment=True, tta=True, precision="fp32",
                         compile=True, on_hangup="stop", resume_every=12.5, lens_every=0, data_dir=str(tmp_path),
                         layers=(1, 2, 3), limit_train=100)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.screen.query_one(ConfigForm)
        form.load(loaded)
        await pilot.pause()
        assert {f.name: form.value_text(f.name) for f in FIELDS} == {
            f.name: field_text(f.name, getattr(loaded, f.name)) for f in FIELDS}
        assert form.value_text("lr") == "0.00123456789" and form.value_text("on_hangup") == "stop"
        assert form.errors == {} and form.config == loaded

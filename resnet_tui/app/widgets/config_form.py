"""The hyperparameter form: every field of the config, grouped under headings, in FIELDS order. Every field is
checked as you type by `config.parse_field`, the same parser the CLI flags and the TOML file go through, so the
form can never accept what `resnet-tui train` refuses; `config_checks` adds warnings across fields (training can
still start with them)."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.content import Content
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static

from resnet_tui.core.config import (
    FIELD_BY_NAME, FIELDS, ON_HANGUP, OPTIMIZERS, PRECISIONS, PRESETS, SCHEDULES, ConfigError, Field, TrainConfig,
    parse_field, preset_values,
)
from resnet_tui.app.state import FormState

# Fields chosen from a list; each choice is text that parse_field reads. Booleans (Field.flag_bool) are on/off.
CHOICES = {"preset": PRESETS, "optimizer": OPTIMIZERS, "schedule": SCHEDULES, "precision": PRECISIONS, "on_hangup": ON_HANGUP}
BOOL_CHOICES = ("on", "off")
PLACEHOLDERS = {"limit_train": "all", "limit_eval": "all", "data": "auto, sample or a folder", "data_dir": "default",
                "device": "auto, cpu, cuda:N, mps", "gpus": "1, N or all"}
# The heading each group starts with, at its first field. Fields follow FIELDS' order, so a field added to
# FIELDS joins the group of the field before it.
GROUP_STARTS = {
    "preset": "Preset & data", "epochs": "Training", "schedule": "Schedule & regularisation", "seed": "Model",
    "device": "Device & precision", "limit_train": "Run & saving",
}


def choices_of(field: Field) -> tuple[str, ...] | None:
    """The list a field is chosen from, or None for a field typed into an Input."""
    return BOOL_CHOICES if field.flag_bool else CHOICES.get(field.name)


def field_text(name: str, value: Any) -> str:
    """A config value as the form shows it (and as parse_field reads it back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "layers":
        return ",".join(str(n) for n in value)
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)  # :g keeps 6 digits; a loaded 0.00123456789 keeps all
    return str(value)


class ConfigFieldValidator(Validator):
    def __init__(self, name: str) -> None:
        super().__init__()
        self.field_name = name

    def validate(self, value: str) -> ValidationResult:
        try:
            parse_field(self.field_name, value)
        except ConfigError as e:
            return self.failure(e.render(FIELD_BY_NAME[self.field_name].label))
        return self.success()


class ConfigForm(VerticalScroll):
    """Posts `ConfigForm.Changed` after every edit. `config` is the TrainConfig, or None while a field is invalid.
    The values live in a FormState (the app's Session.form, which the other screens read), not here."""

    DEFAULT_CSS = """
    ConfigForm .form-heading { height: 1; margin-top: 1; color: $text-accent; text-style: bold; }
    ConfigForm .form-heading.-first { margin-top: 0; }
    ConfigForm .field-warning { display: none; height: auto; color: $warning; padding-left: 1; }
    ConfigForm .field-warning.-shown { display: block; }
    ConfigForm .field-row.-warned > .field-label { color: $warning; }
    """

    can_focus = False  # Tab goes straight from field to field; the form scrolls to the focused one

    class Changed(Message):
        def __init__(self, form: "ConfigForm") -> None:
            super().__init__()
            self.form = form

        @property
        def control(self) -> "ConfigForm":
            return self.form

    def __init__(self, initial: TrainConfig | FormState, device_type: str = "cpu", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.form_state = initial if isinstance(initial, FormState) else FormState(initial)
        self.device_type = device_type  # the fast preset's batch size and lr depend on it
        self._filling = False
        self._warnings_shown: dict[str, str | None] = {}  # field -> the warning line on screen under it

    def compose(self) -> ComposeResult:
        for f in FIELDS:
            if f.name in GROUP_STARTS:
                first = f is FIELDS[0]
                yield Static(GROUP_STARTS[f.name], classes="form-heading -first" if first else "form-heading")
            with Horizontal(classes="field-row", id=f"row-{f.name}"):
                yield Label(f.label, classes="field-label")
                yield self._control(f)
            yield Static("", classes="field-error", id=f"error-{f.name}")
            yield Static("", classes="field-warning", id=f"warning-{f.name}")

    def _control(self, f: Field) -> Select[str] | Input:
        text = field_text(f.name, self.form_state.values[f.name])
        choices = choices_of(f)
        if choices is not None:
            return Select([(c, c) for c in choices], value=text, allow_blank=False, compact=True,
                          id=f"field-{f.name}", classes="field-input", tooltip=f.help)
        return Input(text, placeholder=PLACEHOLDERS.get(f.name, ""), validators=[ConfigFieldValidator(f.name)],
                     validate_on=["changed"], compact=True, id=f"field-{f.name}", classes="field-input", tooltip=f.help)

    def on_mount(self) -> None:
        self._show_warnings()  # a config loaded from the CLI or a file may warn before any edit

    # ---------------------------------------------------------------- state

    @property
    def errors(self) -> dict[str, str]:
        """Field name -> the ConfigError line, for every invalid field."""
        return dict(self.form_state.errors)

    @property
    def warnings(self) -> dict[str, str]:
        """Field name -> the cross-field warning shown under it (config_checks); they do not block training."""
        return self.form_state.warnings

    @property
    def config(self) -> TrainConfig | None:
        return self.form_state.config

    def value_text(self, name: str) -> str:
        w = self.query_one(f"#field-{name}")
        return str(w.value)

    def set_value(self, name: str, value: Any) -> None:
        """Set a field as if typed (validated the same way)."""
        w = self.query_one(f"#field-{name}")
        if isinstance(w, Select):
            try:
                value = parse_field(name, value)  # booleans: True, "true", "off", ... become the list's on/off
            except ConfigError:
                pass  # not a choice: the Select refuses it
            w.value = field_text(name, value)
        else:
            assert isinstance(w, Input)
            w.value = field_text(name, value)
        self._check(name, w.value)

    def load(self, cfg: TrainConfig) -> None:
        """Show all of `cfg` (e.g. a resumed run's config)."""
        self.form_state.load(cfg)
        for f in FIELDS:
            self.set_value(f.name, self.form_state.values[f.name])

    # ---------------------------------------------------------------- events

    @on(Input.Changed, ".field-input")
    def _input_changed(self, event: Input.Changed) -> None:
        event.stop()
        name = (event.input.id or "").removeprefix("field-")
        self._check(name, event.value)

    @on(Select.Changed, ".field-input")
    def _select_changed(self, event: Select.Changed) -> None:
        event.stop()
        name = (event.select.id or "").removeprefix("field-")
        if event.value is Select.NULL:
            return
        changed = field_text(name, self.form_state.values.get(name)) != event.value
        self._check(name, event.value)
        if name == "preset" and changed and not self._filling:
            self.apply_preset(str(event.value))

    def apply_preset(self, preset: str) -> None:
        """Fill every field the preset sets, on the form; each one stays editable afterwards."""
        values = preset_values(preset, self.device_type)
        self._filling = True
        try:
            for name, value in values.items():
                self.set_value(name, value)
        finally:
            self._filling = False
        self.post_message(self.Changed(self))

    def _check(self, name: str, raw: Any) -> None:
        if not name:
            return
        before = self.form_state.errors.get(name)
        message = self.form_state.set(name, raw, FIELD_BY_NAME[name].label)
        if message != before:  # only what changed is laid out again, on every keystroke
            error = self.query_one(f"#error-{name}", Static)
            error.update(Content(f"✗ {message}" if message else ""))  # plain text: what was typed is never markup
            error.set_class(message is not None, "-shown")
            self.query_one(f"#row-{name}").set_class(message is not None, "-invalid")
        self._show_warnings()  # a field's change can raise or settle a warning on another (epochs: warm-up)
        self._reveal_lines_under(name)
        self.post_message(self.Changed(self))

    def _reveal_lines_under(self, name: str) -> None:
        """While a field is typed into, its error or warning line is scrolled into view with it."""
        if not self.query_one(f"#field-{name}").has_focus:
            return
        for kind in ("warning", "error"):  # the error last: it is the one directly under the field
            line = self.query_one(f"#{kind}-{name}")
            if line.has_class("-shown"):
                self.call_after_refresh(line.scroll_visible, animate=False)

    def _show_warnings(self) -> None:
        warnings = self.form_state.warnings
        for f in FIELDS:
            line = warnings.get(f.name)
            if line == self._warnings_shown.get(f.name):
                continue  # only what changed is laid out again, on every keystroke
            self._warnings_shown[f.name] = line
            shown = self.query_one(f"#warning-{f.name}", Static)
            shown.update(Content(f"! {line}" if line else ""))
            shown.set_class(line is not None, "-shown")
            self.query_one(f"#row-{f.name}").set_class(line is not None, "-warned")

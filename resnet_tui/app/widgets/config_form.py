"""The hyperparameter form. Every field is checked as you type by `config.parse_field`, the same parser
the CLI flags and the TOML file go through, so the form can never accept what `resnet-tui train` refuses."""

from __future__ import annotations

from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.validation import ValidationResult, Validator
from textual.widgets import Input, Label, Select, Static

from resnet_tui.core.config import FIELD_BY_NAME, OPTIMIZERS, PRESETS, ConfigError, TrainConfig, parse_field, preset_values
from resnet_tui.app.state import FormState

# The fields the form shows, in order. The rest of TrainConfig (schedule, augment, ...) comes from the
# preset or the CLI and is carried through unchanged.
FORM_FIELDS = (
    "preset", "data", "epochs", "batch_size", "lr", "optimizer", "momentum", "weight_decay", "seed", "layers", "skip",
    "device", "limit_train", "limit_eval",
)
# Fields chosen from a list; each choice is text that parse_field reads (skip: "on"/"off" -> True/False).
CHOICES = {"preset": PRESETS, "optimizer": OPTIMIZERS, "skip": ("on", "off")}
PLACEHOLDERS = {"limit_train": "all", "limit_eval": "all", "data": "auto, sample or a folder"}


def field_text(name: str, value: Any) -> str:
    """A config value as the form shows it (and as parse_field reads it back)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "on" if value else "off"
    if name == "layers":
        return ",".join(str(n) for n in value)
    if isinstance(value, float):
        return f"{value:g}"
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

    def compose(self) -> ComposeResult:
        for name in FORM_FIELDS:
            f = FIELD_BY_NAME[name]
            with Horizontal(classes="field-row", id=f"row-{name}"):
                yield Label(f.label, classes="field-label")
                if name in CHOICES:
                    yield Select([(c, c) for c in CHOICES[name]], value=field_text(name, self.form_state.values[name]), allow_blank=False,
                                 compact=True, id=f"field-{name}", classes="field-input", tooltip=f.help)
                else:
                    yield Input(field_text(name, self.form_state.values[name]), placeholder=PLACEHOLDERS.get(name, ""),
                                validators=[ConfigFieldValidator(name)], validate_on=["changed"], compact=True,
                                id=f"field-{name}", classes="field-input", tooltip=f.help)
            yield Static("", classes="field-error", id=f"error-{name}")

    # ---------------------------------------------------------------- state

    @property
    def errors(self) -> dict[str, str]:
        """Field name -> the ConfigError line, for every invalid field."""
        return dict(self.form_state.errors)

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
                value = parse_field(name, value)  # skip: True, "true", "off", ... become the list's on/off
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
        for name in FORM_FIELDS:
            self.set_value(name, self.form_state.values[name])

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
        """Fill every field the preset sets; each one stays editable afterwards."""
        values = preset_values(preset, self.device_type)
        self._filling = True
        try:
            for name, value in values.items():
                if name in FORM_FIELDS:
                    self.set_value(name, value)
                else:
                    self.form_state.set_parsed(name, value)
        finally:
            self._filling = False
        self.post_message(self.Changed(self))

    def _check(self, name: str, raw: Any) -> None:
        if not name:
            return
        error = self.query_one(f"#error-{name}", Static)
        row = self.query_one(f"#row-{name}")
        message = self.form_state.set(name, raw, FIELD_BY_NAME[name].label)
        error.update(f"✗ {message}" if message else "")
        invalid = message is not None
        error.set_class(invalid, "-shown")
        row.set_class(invalid, "-invalid")
        self.post_message(self.Changed(self))

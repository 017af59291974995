"""Screen 1, Train: the hyperparameter form, and the live view of the run (device, progress, chart, log)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.widgets.config_form import ConfigForm
from resnet_tui.app.widgets.run_monitor import RunMonitor

if TYPE_CHECKING:
    from resnet_tui.app.app import ResNetApp

IDLE_TEXT = "Set the fields, then press s (or the button) to train. Esc leaves a field; 1-5 switch screens."


class TrainScreen(AppScreen):
    AUTO_FOCUS = "#start"

    def __init__(self) -> None:
        super().__init__()
        self._device_field = ""

    @property
    def resnet_app(self) -> "ResNetApp":
        return cast("ResNetApp", self.app)

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            with Vertical(id="form-panel"):
                yield Button("▶ Start training (s)", id="start", variant="success", compact=True)
                yield ConfigForm(self.resnet_app.initial_config, id="config-form")
                yield Static("", id="form-status")
            yield RunMonitor(idle_text=IDLE_TEXT, stop_hint="s stops", id="train-monitor")

    def on_mount(self) -> None:
        self.query_one("#form-panel").border_title = "Hyperparameters"
        self.query_one(RunMonitor).border_title = "Run"
        self._update_device()
        self.refresh_controls()

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    @on(ConfigForm.Changed)
    def _form_changed(self, event: ConfigForm.Changed) -> None:
        app = self.resnet_app
        cfg = event.form.config
        if cfg is not None:
            app.form_config = cfg
        app.form_errors = event.form.errors
        self.refresh_controls()
        self._update_device()

    def refresh_controls(self) -> None:
        """The start button and the form follow the training state and the form's validity."""
        app = self.resnet_app
        button = self.query_one("#start", Button)
        errors = self.form.errors
        if app.training:
            button.label = "■ Stop training (s)"
            button.variant = "error"
            button.disabled = False
        else:
            button.label = "▶ Start training (s)"
            button.variant = "success"
            button.disabled = bool(errors)
        self.form.disabled = app.training  # edits could not reach the running trainer
        self.set_class(app.training, "-training")  # below 120 columns the form then makes room for the log
        status = self.query_one("#form-status", Static)
        if errors:
            status.update(f"[b red]{len(errors)} invalid field{'s' if len(errors) > 1 else ''}[/]: training cannot start")
        elif app.training:
            status.update("training: the form is locked until the run ends")
        else:
            status.update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.resnet_app.action_toggle_training()

    def _update_device(self) -> None:
        app = self.resnet_app
        if app.device_label is not None:  # injected (tests, screenshots): no detection
            self.monitor.set_device(app.device_label)
            return
        name = self.form.value_text("device")
        if name != self._device_field and "device" not in self.form.errors:
            self._device_field = name
            self._detect_device(name)

    @work(thread=True, exclusive=True, group="device", exit_on_error=False)
    def _detect_device(self, name: str) -> None:
        # importing torch takes a second or two: done here so the screen appears at once
        from resnet_tui.core.device import describe_device, resolve_device
        from resnet_tui.core.errors import UserError

        try:
            device = resolve_device(name)
            text, kind = describe_device(device), device.type
        except UserError as e:
            text, kind = f"{name}: {str(e).split(', but ')[-1]}", "cpu"
        self.app.call_from_thread(self._device_found, text, kind)

    def _device_found(self, text: str, kind: str) -> None:
        self.form.device_type = kind
        self.monitor.set_device(text)

    def apply_events(self, events: list[Any]) -> None:
        self.monitor.apply(events)

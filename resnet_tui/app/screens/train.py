"""Screen 1, Train: the hyperparameter form, and the live view of the run (device, progress, chart, log)."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.state import ToggleTraining
from resnet_tui.app.widgets.config_form import ConfigForm
from resnet_tui.app.widgets.run_monitor import RunMonitor

IDLE_TEXT = "Set the fields, then press s (or the button) to train. Esc leaves a field; 1-5 switch screens."


class TrainScreen(AppScreen):
    AUTO_FOCUS = "#start"

    def __init__(self) -> None:
        super().__init__()
        self._device_field = ""
        self._training = False  # the app's training flag, as last seen

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            with Vertical(id="form-panel"):
                yield Button("▶ Start training (s)", id="start", variant="success", compact=True)
                yield ConfigForm(self.session.form, id="config-form")
                yield Static("", id="form-status")
            yield RunMonitor(idle_text=IDLE_TEXT, stop_hint="s stops", id="train-monitor")

    def on_mount(self) -> None:
        self.query_one("#form-panel").border_title = "Hyperparameters"
        self.query_one(RunMonitor).border_title = "Run"
        self._update_device()
        self.watch(self.app, "training", self._training_changed, init=True)

    def _training_changed(self, training: bool) -> None:
        self._training = training
        self.refresh_controls()

    @property
    def form(self) -> ConfigForm:
        return self.query_one(ConfigForm)

    @property
    def monitor(self) -> RunMonitor:
        return self.query_one(RunMonitor)

    @on(ConfigForm.Changed)
    def _form_changed(self, event: ConfigForm.Changed) -> None:
        self.refresh_controls()
        self._update_device()

    def refresh_controls(self) -> None:
        """The start button and the form follow the training state and the form's validity."""
        training = self._training
        button = self.query_one("#start", Button)
        errors = self.form.errors
        if training:
            button.label = "■ Stop training (s)"
            button.variant = "error"
            button.disabled = False
        else:
            button.label = "▶ Start training (s)"
            button.variant = "success"
            button.disabled = bool(errors)
        self.form.disabled = training  # edits could not reach the running trainer
        self.set_class(training, "-training")  # below 120 columns the form then makes room for the log
        status = self.query_one("#form-status", Static)
        if errors:
            status.update(f"[b red]{len(errors)} invalid field{'s' if len(errors) > 1 else ''}[/]: training cannot start")
        elif training:
            status.update("training: the form is locked until the run ends")
        else:
            status.update("")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "start":
            self.post_message(ToggleTraining())

    def _update_device(self) -> None:
        label = self.session.device_label
        if label is not None:  # injected (tests, screenshots): no detection
            self.monitor.set_device(label)
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

    # ---------------------------------------------------------------- what the app tells this screen

    def apply_events(self, events: list[Any]) -> None:
        self.monitor.apply(events)

    def write_log(self, line: str) -> None:
        """A line of the app's own (an error) after the run's log lines."""
        self.monitor.write_log(line)

    @property
    def eval_result(self) -> Any:
        """The evaluation that ended the run shown (an EvalResult), if it has one."""
        return self.monitor.progress.eval_result

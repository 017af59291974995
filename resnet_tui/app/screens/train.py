"""Screen 1, Train: the hyperparameter form, and the live view of the run (device, progress, the machine, the chart
and its keys, the log)."""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Select, Static

from resnet_tui.app.screens.base import AppScreen
from resnet_tui.app.state import ToggleTraining
from resnet_tui.app.widgets.config_form import ConfigForm
from resnet_tui.app.widgets.loss_chart import CHART_BINDINGS
from resnet_tui.app.widgets.run_monitor import RunMonitor
from resnet_tui.plain_text import plain

IDLE_TEXT = "Set the fields, then press s (or the button) to train. Esc leaves a field; 1-5 switch screens."


class TrainScreen(AppScreen):
    AUTO_FOCUS = "#start"
    # Below 40 rows (80x24) the chart keeps at least 8 rows before, during and after a run: the header's lines are
    # cut with an ellipsis (40 rows and more show them in full), the log shows its last 2 lines, and once a run has
    # ended the progress bar (the status line says where it stopped) and the machine make room for the end's lines.
    # A long end message (a resume command with a long path) can still push the log down: the chart keeps its rows.
    DEFAULT_CSS = """
    #train-monitor > LossChart { min-height: 8; }
    TrainScreen.-normal-height #train-monitor > #run-header { text-wrap: nowrap; text-overflow: ellipsis; }
    TrainScreen.-normal-height #train-monitor > LogTail { height: 3; }
    TrainScreen.-normal-height #train-monitor.-ended > ProgressBar { display: none; }
    TrainScreen.-normal-height #train-monitor.-ended > SystemPanel { display: none; }
    TrainScreen.-tall #train-monitor > LogTail { height: 10; }
    """
    # The chart's keys. A text field takes letters as text (an Input handles its keys before any binding sees them),
    # so typing "lr" into a field never toggles the chart; the footer leaves them out meanwhile (check_action).
    BINDINGS = CHART_BINDINGS

    def __init__(self) -> None:
        super().__init__()
        self._device_field = ""
        self._training = False  # the app's training flag, as last seen
        self._job_text = ""  # what trains the run when it is not this app's thread (a run on several processes)

    def compose_body(self) -> ComposeResult:
        with Horizontal(id="train-body"):
            with Vertical(id="form-panel"):
                yield Button("▶ Start training (s)", id="start", variant="success", compact=True)
                yield ConfigForm(self.session.form, id="config-form")
                yield Static("", id="form-status")
            yield RunMonitor(idle_text=IDLE_TEXT, stop_hint="s stops", system=True, id="train-monitor")

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
            status.update(plain(self._job_text or "training: the form is locked until the run ends"))
        else:
            status.update("")

    def show_job(self, text: str) -> None:
        """Say what trains the run shown, when it is not this app's thread ("" when the run has ended)."""
        self._job_text = text
        self.refresh_controls()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "chart":  # offered (and shown in the footer) unless a form field has the keys
            focused = self.focused
            return focused is None or not any(isinstance(node, (Input, Select)) for node in focused.ancestors_with_self)
        return True

    def action_chart(self, toggle: str) -> None:
        self.monitor.chart.toggle(toggle)

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

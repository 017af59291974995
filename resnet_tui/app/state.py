"""What the screens share with the app, and what they ask it to do: their whole interface to it.

The app holds one `Session` (the current run, the runs folder, the Train form's values, the loaded data
splits, ...) and screens read it through `session_of(self.app)` (`AppScreen.session`), never through the
app's own attributes. What a screen wants the app to do (start or stop training, report an error) it
posts as one of the messages below, which bubble from the screen to the app.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.app import App
from textual.message import Message

from resnet_tui.core.config import ConfigError, TrainConfig, parse_field
from resnet_tui.core.config_checks import cross_field_warnings


class FormState:
    """The Train form's fields, kept once: the form edits them; the app trains with them; the Model, Data
    and Evaluate screens follow them."""

    def __init__(self, initial: TrainConfig) -> None:
        self.values: dict[str, Any] = initial.to_dict()  # each field's last valid (parsed) value
        self.values["layers"] = tuple(initial.layers)
        self.errors: dict[str, str] = {}  # field name -> the ConfigError line, for every field invalid now
        self.last_valid = initial  # the config as it was when no field was invalid

    @property
    def config(self) -> TrainConfig | None:
        """The form's config, or None while a field is invalid."""
        return None if self.errors else TrainConfig(**self.values)

    @property
    def warnings(self) -> dict[str, str]:
        """Field name -> a line of config_checks' cross-field warnings (training can still start), for the valid
        fields: an invalid one shows its error instead."""
        return {name: line for name, line in cross_field_warnings(self.values).items() if name not in self.errors}

    def set(self, name: str, raw: Any, label: str) -> str | None:
        """Parse `raw` (text or a choice) into field `name`; the error line (named by `label`) or None."""
        try:
            self.values[name] = parse_field(name, raw)
        except ConfigError as e:
            self.errors[name] = e.render(label)
        else:
            self.errors.pop(name, None)
        self._settled()
        return self.errors.get(name)

    def load(self, cfg: TrainConfig) -> None:
        self.values = cfg.to_dict()
        self.values["layers"] = tuple(cfg.layers)
        self.errors = {}
        self._settled()

    def _settled(self) -> None:
        if not self.errors:
            self.last_valid = TrainConfig(**self.values)


class SplitCache:
    """Data splits loaded once per app (from worker threads); the Data and Evaluate screens share them."""

    def __init__(self) -> None:
        self._loaded: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def load(self, data: str, split: str, data_dir: str | None, limit: int | None) -> Any:
        from resnet_tui.core.data import load_split

        key = (data, split, data_dir, limit)
        with self._lock:
            cached = self._loaded.get(key)
        if cached is not None:
            return cached
        loaded = load_split(data, split, data_dir, limit)
        with self._lock:
            self._loaded[key] = loaded
        return loaded


@dataclass
class Session:
    """The state the screens share. `device_label` replaces device detection (tests, screenshots)."""

    form: FormState
    runs_root: Path = Path("runs")
    current_run_dir: Path | None = None  # the run trained, opened or evaluated last; Evaluate offers its checkpoints
    device_label: str | None = None
    splits: SplitCache = field(default_factory=SplitCache)


def session_of(app: App[Any]) -> Session:
    """The Session of the app a screen is in (ResNetApp.session)."""
    session = getattr(app, "session", None)
    if not isinstance(session, Session):
        raise TypeError(f"{type(app).__name__} has no Session: the screens of resnet_tui run inside ResNetApp")
    return session


# ---------------------------------------------------------------- what screens ask the app to do


class ToggleTraining(Message):
    """Start training with the form's config, or stop the run that is training."""


class ReportError(Message):
    """Show an error (a notification, and a line in the training log); the app stays usable."""

    def __init__(self, message: str, title: str = "Error") -> None:
        super().__init__()
        self.message, self.title = message, title


class ResumeRun(Message):
    """Resume the interrupted or crashed run in `run_dir` in this app, optionally to `epochs` in all."""

    def __init__(self, run_dir: Path, epochs: str | None = None) -> None:
        super().__init__()
        self.run_dir, self.epochs = run_dir, epochs

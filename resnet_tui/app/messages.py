"""Messages from the training thread to the app."""

from __future__ import annotations

from textual.message import Message

from resnet_tui.core import events as ev


class TrainingEvents(Message):
    """A batch of engine events, coalesced by the relay (about 4 a second)."""

    def __init__(self, events: list[ev.Event]) -> None:
        super().__init__()
        self.events = events


class TrainingFinished(Message):
    """The training thread is done: `end` is the RunEnd, or None when it raised (`error` says why)."""

    def __init__(self, end: ev.RunEnd | None, error: str = "") -> None:
        super().__init__()
        self.end = end
        self.error = error


class SweepEvents(Message):
    """A batch of sweep events (resnet_tui.core.sweep: SweepStarted, RunStarted, RunEvent, RunFinished, SweepFinished)."""

    def __init__(self, events: list) -> None:
        super().__init__()
        self.events = events


class SweepDone(Message):
    """The sweep thread is done: `end` is the SweepFinished, or None when it raised (`error` says why)."""

    def __init__(self, end: object | None, error: str = "") -> None:
        super().__init__()
        self.end = end
        self.error = error

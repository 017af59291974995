"""The training thread's side of the app: buffer engine events and hand them to the UI in coalesced messages.

The trainer calls `emit` from its own thread for every event. Posting one message per batch would make
the UI thread (which shares the CPU and the GIL with training) do work per batch, so batch events are
buffered and posted at most about 4 times a second (toolong's pattern). Rare events (epoch end,
checkpoint, run end, ...) flush the buffer at once so they are never held back.
"""

from __future__ import annotations

import time
from typing import Callable

from resnet_tui.core import events as ev

POST_SECONDS = 0.25


class EventRelay:
    """Called only from the training thread, so the buffer needs no lock."""

    def __init__(self, post: Callable[[list[ev.Event]], None], interval: float = POST_SECONDS,
                 clock: Callable[[], float] = time.monotonic, frequent: Callable[[object], bool] | None = None) -> None:
        """frequent(event): whether an event may wait in the buffer (default: a BatchEnd). A sweep's relay
        passes one that looks inside its RunEvent wrappers."""
        self._post = post
        self._frequent = frequent or (lambda e: isinstance(e, ev.BatchEnd))
        self._interval = interval
        self._clock = clock
        self._buffer: list = []
        self._last_post = float("-inf")

    def __call__(self, event: ev.Event | object) -> None:
        self._buffer.append(event)
        now = self._clock()
        if not self._frequent(event) or now - self._last_post >= self._interval:
            self.flush(now)

    def flush(self, now: float | None = None) -> None:
        if not self._buffer:
            return
        events, self._buffer = self._buffer, []
        self._last_post = self._clock() if now is None else now
        self._post(events)

"""The one owner of the app's training state, and of what a signal does to the process.

A run is idle -> starting (data loading, model building) -> running (its first event arrived) ->
stopping -> idle. A start is taken only when idle, so a double `s` (two keys in one terminal read over a
laggy link) starts exactly one run; `s` stops only a run that is running. A quit or a signal stops the
run whatever its state, after its current batch, with a resumable state saved.

The terminal going away (SIGHUP from a dropped SSH connection) must lose nothing and stop nothing: the
run goes on detached, with no UI, and when it ends the process ends too. Textual's shutdown on a dead
terminal can block for ever on its output queue, so the end of the process never depends on the UI:
once the run has ended after a signal, a timer ends the process if the UI has not closed by itself.
Signal handlers are process-level (signal.signal), so they run even when the event loop is stuck.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Callable

IDLE, STARTING, RUNNING, STOPPING = "idle", "starting", "running", "stopping"
EXIT_GRACE_SECONDS = 3.0  # after a run that a signal ended: time the UI gets to close by itself
UI_ANSWER_SECONDS = 15.0  # a UI that has not taken a finished run's last message by then is gone (its terminal died)


def exit_code_for(status: str | None) -> int:
    """A process's exit code for its run's end status (as the headless CLI: 0 finished, 130 interrupted, else 1)."""
    return {"finished": 0, "interrupted": 130}.get(status or "", 1)


class TrainingJob:
    def __init__(self, hard_exit: Callable[[int], None] = os._exit) -> None:
        self.state = IDLE
        self.stop_event = threading.Event()
        self.detached = False  # the terminal is gone: nothing is shown any more, the run goes on
        self.exit_code: int | None = None  # set by a signal: the process ends with it once the run has ended
        self.on_hangup = "continue"  # the running config's choice
        self.final_code: int | None = None  # once a run that a signal ended or detached has ended: the process's exit code
        self._hard_exit = hard_exit

    # ---------------------------------------------------------------- the run's life

    @property
    def active(self) -> bool:
        return self.state != IDLE

    def begin(self, on_hangup: str) -> bool:
        """A start: taken only when idle."""
        if self.state != IDLE:
            return False
        self.state = STARTING
        self.on_hangup = on_hangup
        self.stop_event.clear()
        return True

    def started(self) -> None:
        """The run's first event arrived: it trains."""
        if self.state == STARTING:
            self.state = RUNNING

    def request_stop(self, force: bool = False) -> bool:
        """Stop after the current batch. A key stops only a running run; a quit or a signal (force) any active one."""
        if self.state == RUNNING or (force and self.state in (STARTING, RUNNING)):
            self.state = STOPPING
            self.stop_event.set()
            return True
        return False

    def should_stop(self) -> bool:
        return self.stop_event.is_set()

    def ended(self) -> None:
        self.state = IDLE

    # ---------------------------------------------------------------- signals

    def on_signal(self, signum: int, quit_ui: Callable[[int], None]) -> None:
        """SIGTERM (and SIGINT) stop the run and end the process; SIGHUP detaches the run (or stops it, with
        on_hangup "stop"). With no run active the UI is asked to close at once, and the process ends
        after a grace period whatever the UI does."""
        hangup = signum == getattr(signal, "SIGHUP", None)
        if hangup:
            self.detached = True
        if not self.active:
            self.exit_code = 128 + signum
            quit_ui(self.exit_code)
            self._exit_later(self.exit_code)
            return
        if hangup and self.on_hangup == "continue":
            if self.exit_code is None:
                self.exit_code = -1  # the run's own status decides, when it ends
            return
        self.exit_code = 128 + signum
        self.request_stop(force=True)

    def run_ended(self, status: str | None) -> int | None:
        """Called by the training thread when its run has ended, its files closed and its lock released. If
        a signal asked for it, the process ends: at once when detached (no terminal to give back), else after
        a grace period in which the UI closes by itself. Returns the exit code, or None."""
        if self.exit_code is None:
            return None
        code = exit_code_for(status) if self.exit_code < 0 else self.exit_code
        self.final_code = code
        if self.detached:
            self._hard_exit(code)
        else:
            self._exit_later(code)
        return code

    def ui_gone(self, status: str | None) -> None:
        """The UI did not answer after the run ended (its terminal's writes failed with no SIGHUP): end the
        process with the run's status rather than leave it behind."""
        self.detached = True
        self._hard_exit(exit_code_for(status))

    def _exit_later(self, code: int) -> None:
        timer = threading.Timer(EXIT_GRACE_SECONDS, self._hard_exit, args=(code,))
        timer.daemon = True  # a normal exit of the process is never held up by it
        timer.start()


def install_signal_handlers(handler: Callable[[int], None]) -> dict[int, Any]:
    """Process-level handlers for SIGHUP, SIGTERM; returns the previous ones (for restore_signal_handlers)."""
    previous: dict[int, Any] = {}
    if threading.current_thread() is not threading.main_thread():
        return previous
    for name in ("SIGHUP", "SIGTERM"):
        sig = getattr(signal, name, None)
        if sig is not None:
            previous[sig] = signal.signal(sig, lambda signum, frame: handler(signum))
    return previous


def restore_signal_handlers(previous: dict[int, Any]) -> None:
    if threading.current_thread() is threading.main_thread():
        for sig, old in previous.items():
            signal.signal(sig, old)

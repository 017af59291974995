"""Desktop notifications through the terminal, for a run that ends while nobody watches its tab.

The terminal bell, then OSC 9 (`ESC ] 9 ; text BEL`: iTerm2, kitty, WezTerm, Windows Terminal, ...) and OSC 777
(`ESC ] 777 ; notify ; title ; body BEL`: foot, WezTerm, urxvt, VTE terminals). Both are escape codes, so they
travel over SSH like any output. Inside tmux they are wrapped in its passthrough (`ESC P tmux; ... ESC \\`,
shown by tmux >= 3.3 only with `set -g allow-passthrough on`); the bell goes to tmux itself, which marks the
window. Nothing is ever written to a stream that is not a terminal: a pipe or a log file gets no escape codes.
"""

from __future__ import annotations

import os
import sys
import unicodedata
from typing import IO, Any, Mapping

ESC, BEL = "\x1b", "\a"
TITLE = "resnet-tui"
MAX_TEXT = 200  # characters of a notification's body: a desktop notification shows a line or two


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """`text` without control characters (newlines, ESC, BEL, C1 codes: any of them would end or break the escape
    code it travels in), shortened to `limit` characters."""
    text = "".join(" " if unicodedata.category(c) == "Cc" else c for c in text)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def tmux_passthrough(code: str) -> str:
    """An escape code wrapped so that tmux hands it on to the terminal it runs in (its ESCs doubled)."""
    return f"{ESC}Ptmux;{code.replace(ESC, ESC + ESC)}{ESC}\\"


def notification_codes(title: str, body: str, tmux: bool = False) -> str:
    """The bell, OSC 9 and OSC 777 for a notification, wrapped for tmux's passthrough when `tmux`."""
    # ';' separates OSC 777's fields: a title with one would move part of it into the body
    title, body = clean(title, 60).replace(";", ","), clean(body)
    codes = [f"{ESC}]9;{title}: {body}{BEL}", f"{ESC}]777;notify;{title};{body}{BEL}"]
    if tmux:
        codes = [tmux_passthrough(code) for code in codes]
    return BEL + "".join(codes)


def is_terminal(stream: IO[str]) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):  # no isatty, or a closed stream
        return False


def notify_terminal(stream: IO[str], body: str, title: str = TITLE, env: Mapping[str, str] | None = None) -> bool:
    """Ring the bell and send a desktop notification through `stream`, only if it is a terminal.
    Returns whether the codes were written (a failed write is given up silently: it is only a notification)."""
    if not is_terminal(stream):
        return False
    in_tmux = bool((os.environ if env is None else env).get("TMUX"))
    try:
        stream.write(notification_codes(title, body, tmux=in_tmux))
        stream.flush()
    except (OSError, ValueError):
        return False
    return True


class DriverOutput:
    """A Textual app's driver as a stream for notify_terminal: the codes go out with the app's own output, in order.
    Textual writes to the process's original stderr, so that is what must be a terminal."""

    def __init__(self, driver: Any, terminal: IO[str] | None = None) -> None:
        self._driver = driver
        self._terminal = terminal if terminal is not None else sys.__stderr__

    def write(self, text: str) -> int:
        self._driver.write(text)
        return len(text)

    def flush(self) -> None:
        self._driver.flush()

    def isatty(self) -> bool:
        return self._terminal is not None and is_terminal(self._terminal)


def run_end_text(run_dir: str, status: str, message: str = "", accuracy: float | None = None) -> str | None:
    """What a run's end notification says, or None for an end that needs none (a stop the user asked for)."""
    if status == "finished":
        return f"run {run_dir} finished" + (f": {accuracy:.1%} accuracy" if accuracy is not None else "")
    if status in ("failed", "diverged"):
        return f"run {run_dir} {status}" + (f": {message}" if message else "")
    return None


__all__ = ["DriverOutput", "TITLE", "clean", "notification_codes", "notify_terminal", "run_end_text", "tmux_passthrough"]

"""Strings from files (statuses, folder and class names, messages) shown safely by the front ends: as text, never
as Rich markup, with control characters written out. Rich only (no torch), so the app can import it at start."""

from __future__ import annotations

import unicodedata

from rich.text import Text

_BIDI = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")  # could reorder what follows on screen


def printable(s: object) -> str:
    """str(s) with its control characters (ANSI escapes, newlines, bidi overrides) written as escapes like \\x1b,
    so that none reaches a terminal raw."""
    text = str(s)
    if text.isprintable():
        return text
    return "".join(c.encode("unicode_escape").decode("ascii") if c in _BIDI or unicodedata.category(c) in ("Cc", "Zl", "Zp")
                   else c for c in text)


def plain(s: object, style: str = "") -> Text:
    """str(s) as Rich text: never read as markup, control characters escaped (printable)."""
    return Text(printable(s), style=style)

"""Filters of the run lists (`runs list --filter`, `/` on the Runs screen): a text parsed into a predicate over runs.RunSummary.

A filter is words separated by spaces or commas, all of which must hold (AND):
    adam                 plain text: the run's name (its folder below the runs root) or status contains it, any case
    optimizer=adam       a config field (config.FIELDS) or a result field compared with = != < <= > >=
    lr<0.01  acc>0.8  acc>=80%  status=crashed  started>2026-11-28 09:45  layers=2,2,2
A comma inside an expression's value stays in the value (layers=2,2,2); spaces around an operator are allowed (lr < 0.01).
A run without the value compared (no evaluation yet, no config.toml) matches no expression on it.
A bad expression raises UserError with one line naming it and what is allowed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from resnet_tui.core.config import FIELD_BY_NAME, ConfigError, TrainConfig, parse_field
from resnet_tui.core.errors import UserError
from resnet_tui.core.runs import RunSummary, finite_number

OPERATORS = ("<=", ">=", "!=", "==", "=", "<", ">")
_EXPRESSION = re.compile(r"^([^<>=!]*)(<=|>=|!=|==|=|<|>)(.*)$")
_SPACED_OPERATOR = re.compile(r"\s*(<=|>=|!=|==|=|<|>)\s*")
_TIME = re.compile(r"^\d{1,2}:\d{2}(:\d{2})?$")
_DATE_EXPRESSION = re.compile(r"^[^<>=!]*(<=|>=|!=|==|=|<|>)\d{4}-\d{2}-\d{2}$")
STATUSES = ("running", "finished", "interrupted", "diverged", "failed", "crashed", "unreadable", "unknown")

# A result field: how to read it from a run (its summary and its name) and what kind of value it is:
# number (compared by value), text (= and != only, any case), date (text that also orders: "YYYY-MM-DD HH:MM:SS").
Getter = Callable[[RunSummary, str], Any]
RESULT_FIELDS: dict[str, tuple[str, Getter]] = {
    "name": ("text", lambda s, name: name),
    "status": ("text", lambda s, name: s.status),
    "started": ("date", lambda s, name: s.started or None),
    "accuracy": ("number", lambda s, name: s.accuracy),
    "nll": ("number", lambda s, name: s.nll),
    "last_loss": ("number", lambda s, name: s.last_loss),
    "train_loss": ("number", lambda s, name: s.train_loss),
    "epochs_done": ("number", lambda s, name: s.epochs_done),
    "images_per_sec": ("number", lambda s, name: s.images_per_sec),
}
ALIASES = {"acc": "accuracy", "eval_loss": "nll", "loss": "last_loss", "run": "name", "folder": "name", "date": "started",
           "start": "started", "done": "epochs_done", "img_s": "images_per_sec", "speed": "images_per_sec"}


def field_names() -> list[str]:
    """Every field a filter knows, result fields first."""
    return [*RESULT_FIELDS, *FIELD_BY_NAME]


def _numeric_config_field(name: str) -> bool:
    """Whether a config field holds a number (lr, epochs, limit_train), so that < and > make sense on it."""
    default = getattr(TrainConfig(), name, None)
    if isinstance(default, bool) or isinstance(default, (str, tuple)):
        return False
    try:
        probe = parse_field(name, "1")
    except ConfigError:
        return False
    return isinstance(probe, (int, float)) and not isinstance(probe, bool)


@dataclass(frozen=True)
class Condition:
    """One expression, parsed: `field op value`; `test` says whether a run's value satisfies it."""

    expression: str  # as typed
    field: str  # the field's full name (an alias resolved)
    op: str  # one of = != < <= > >=
    kind: str  # number, text, date or config (a config field that is not a number: compared as parse_field reads it)
    value: Any
    get: Getter

    def test(self, s: RunSummary, name: str) -> bool:
        have = self.get(s, name)
        if have is None:
            return False
        if self.kind == "number":
            have = finite_number(have)
            return have is not None and _compare(have, self.op, self.value)
        if self.kind == "config":
            return _compare(_config_value(self.field, have), self.op, self.value)
        have = str(have).lower()
        if self.kind == "date" and self.op in ("=", "!="):  # a date stands for every time that day: started=2026-11-28
            return have.startswith(self.value) == (self.op == "=")
        return _compare(have, self.op, self.value)


def _compare(have: Any, op: str, want: Any) -> bool:
    if op == "=":
        return bool(have == want)
    if op == "!=":
        return bool(have != want)
    try:
        return {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}[op]
    except TypeError:  # a value of another type in a hand-edited file
        return False


def _config_value(field: str, raw: Any) -> Any:
    """A run's config value as parse_field reads it (a TOML list of layers as a tuple), or as it is if it does not parse."""
    try:
        return parse_field(field, raw)
    except ConfigError:
        return raw


@dataclass(frozen=True)
class RunFilter:
    """A parsed filter. `matches(summary, name)`: name is the run's folder below the runs root (what the lists show)."""

    text: str = ""
    words: tuple[str, ...] = ()  # plain text, lower case
    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.words or self.conditions)

    def matches(self, s: RunSummary, name: str | None = None) -> bool:
        name = s.path.name if name is None else name
        haystack = f"{name}\n{s.path.name}\n{s.status}".lower()
        return all(w in haystack for w in self.words) and all(c.test(s, name) for c in self.conditions)


def run_name(path: Path, root: Path | str | None) -> str:
    """A run's name in the lists: its folder below the runs root (sweep-.../lr=0.01 for a run of a sweep)."""
    if root is not None:
        try:
            return str(path.relative_to(root))
        except ValueError:
            pass
    return path.name


def filter_runs(summaries: Iterable[RunSummary], flt: RunFilter, root: Path | str | None = None) -> list[RunSummary]:
    return [s for s in summaries if flt.matches(s, run_name(s.path, root))]


# ---------------------------------------------------------------- parsing


def _pieces(text: str) -> list[str]:
    """The filter's words: split at spaces and commas, except that a comma inside an expression's value stays in it."""
    text = _SPACED_OPERATOR.sub(lambda m: m.group(1), text.strip())
    pieces: list[str] = []
    for word in text.split():
        if pieces and _TIME.match(word) and _DATE_EXPRESSION.match(pieces[-1]):
            pieces[-1] += " " + word  # started>2026-11-28 09:45
            continue
        previous_is_expression = False
        for part in filter(None, word.split(",")):
            is_expression = _EXPRESSION.match(part) is not None
            if previous_is_expression and not is_expression:
                pieces[-1] += "," + part  # layers=2,2,2
            else:
                pieces.append(part)
                previous_is_expression = is_expression
    return pieces


def parse_filter(text: str, what: str = "filter") -> RunFilter:
    """Parse a filter (see the module's doc). `what` names it in errors (--filter on the command line)."""
    words: list[str] = []
    conditions: list[Condition] = []
    for piece in _pieces(text):
        m = _EXPRESSION.match(piece)
        if m is None:
            words.append(piece.lower())
        else:
            conditions.append(_condition(piece, m.group(1), m.group(2), m.group(3), what))
    return RunFilter(text, tuple(words), tuple(conditions))


def _condition(expression: str, raw_field: str, op: str, raw_value: str, what: str) -> Condition:
    def fail(message: str) -> UserError:
        return UserError(f"{what} {expression!r}: {message}")

    op = "=" if op == "==" else op
    if not raw_field:
        raise fail(f"expected a field name before {op!r}, like lr<0.01")
    if not raw_value:
        raise fail(f"expected a value after {op!r}, like lr<0.01")
    field = _field(raw_field, fail)
    if field in RESULT_FIELDS:
        kind, get = RESULT_FIELDS[field]
    else:
        kind = "number" if _numeric_config_field(field) else "config"
        get = lambda s, name, field=field: s.config.get(field)  # noqa: E731
    ordering = op not in ("=", "!=")
    if ordering and kind in ("text", "config"):
        raise fail(f"{field} is not a number, so {op} does not apply; use = or !=")
    return Condition(expression, field, op, kind, _value(field, kind, raw_value, op, fail), get)


def _field(raw: str, fail: Callable[[str], UserError]) -> str:
    key = raw.strip().lower().replace("-", "_").replace("/", "_")
    key = ALIASES.get(key, key)
    if key in RESULT_FIELDS or key in FIELD_BY_NAME:
        return key
    close = difflib.get_close_matches(key, [*field_names(), *ALIASES], n=1, cutoff=0.6)
    hint = f"did you mean {ALIASES.get(close[0], close[0])!r}?" if close else "fields: " + ", ".join(field_names())
    raise fail(f"unknown field {raw.strip()!r}; {hint}")


def _value(field: str, kind: str, raw: str, op: str, fail: Callable[[str], UserError]) -> Any:
    if kind == "number":
        return _number_value(field, raw, op, fail)
    if kind == "config":
        try:
            return parse_field(field, raw)
        except ConfigError as e:
            raise fail(f"{field}: got {raw!r}, expected {e.allowed}") from None
    value = raw.lower().replace("t", " ") if kind == "date" else raw.lower()  # 2026-11-28T09:45 as the records write it
    if field == "status" and value not in STATUSES:
        close = difflib.get_close_matches(value, STATUSES, n=1, cutoff=0.6)
        raise fail(f"status: got {raw!r}, expected one of {', '.join(STATUSES)}" + (f"; did you mean {close[0]!r}?" if close else ""))
    return value


def _number_value(field: str, raw: str, op: str, fail: Callable[[str], UserError]) -> float:
    percent = field == "accuracy" and raw.endswith("%")
    try:
        number = float(raw[:-1] if percent else raw)
    except ValueError:
        raise fail(f"{field}: got {raw!r}, expected a number ({op} compares numbers)") from None
    if finite_number(number) is None:
        raise fail(f"{field}: got {raw!r}, expected a finite number")
    if field == "accuracy":
        if percent:
            return number / 100
        if number > 1:
            raise fail(f"accuracy: got {raw}, expected a fraction from 0 to 1 or a percentage like {raw}%")
    return number


__all__ = ["ALIASES", "OPERATORS", "RESULT_FIELDS", "STATUSES", "Condition", "RunFilter", "field_names", "filter_runs",
           "parse_filter", "run_name"]

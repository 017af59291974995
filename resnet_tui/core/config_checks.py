"""Checks across fields of a config, and how a config differs from the lab's.

Each field alone is validated by `config.parse_field`; what is left are combinations that are valid but
probably not meant (a warm-up as long as the run, Nesterov without momentum) and a data folder that is not
there. They are warnings, not errors: training can still start. Pure Python (no torch), cheap enough to
run on every keystroke of the app's form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping

from resnet_tui.core.config import FIELDS, RUN_FIELDS, TrainConfig, preset_values

DATA_SOURCES = ("auto", "cifar10", "sample")  # data values that are not folder paths
_DEFAULTS = TrainConfig()


def _count(n: float, unit: str) -> str:
    return f"{n:g} {unit}" + ("" if n == 1 else "s")


def _warmup(get: Callable[[str], Any]) -> str | None:
    warmup, epochs = get("warmup_epochs"), get("epochs")
    if get("schedule") == "warmup-linear" and warmup >= epochs:
        return f"warm-up {_count(warmup, 'epoch')} >= {_count(epochs, 'epoch')}: the lr never decays"
    if get("schedule") == "constant" and warmup > 0:
        return "ignored with the constant schedule"
    return None


def _nesterov(get: Callable[[str], Any]) -> str | None:
    if not get("nesterov"):
        return None
    if get("optimizer") != "sgd":
        return f"ignored with {get('optimizer')} (Nesterov is SGD's)"
    if get("momentum") == 0:
        return "ignored with momentum 0: Nesterov needs momentum"
    return None


def _momentum(get: Callable[[str], Any]) -> str | None:
    if get("momentum") > 0 and get("optimizer") in ("adam", "adamw"):
        return f"ignored by {get('optimizer')} (it has its own betas)"
    return None


def _data(get: Callable[[str], Any]) -> str | None:
    data = get("data")
    if not isinstance(data, str) or data in DATA_SOURCES:
        return None
    path = Path(data).expanduser()
    if not path.exists():
        return "no such folder"
    if not path.is_dir():
        return "not a folder"
    if not (path / "train").is_dir() or not (path / "test").is_dir():
        return "no train/ and test/ folders in it"
    return None


# field -> its check; a check reads the other fields it depends on
_CHECKS: dict[str, Callable[[Callable[[str], Any]], str | None]] = {
    "warmup_epochs": _warmup, "nesterov": _nesterov, "momentum": _momentum, "data": _data,
}


def cross_field_warnings(values: Mapping[str, Any]) -> dict[str, str]:
    """Field name -> one line (in FIELDS order), for each field whose value is valid but will not do what it seems to.

    `values` holds parsed values (TrainConfig.to_dict(), the form's FormState.values); a field missing
    from it counts as its default. Train/eval subsets larger than the data are not checked: that needs the data.
    """

    def get(name: str) -> Any:
        return values[name] if name in values else getattr(_DEFAULTS, name)

    found = {name: check(get) for name, check in _CHECKS.items()}
    return {f.name: found[f.name] for f in FIELDS if found.get(f.name)}  # in the form's order


def differences_from_lab(config: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, value, lab value) for every learning field (not a RUN_FIELD) whose value is not the lab preset's,
    in FIELDS order (the preset first, when it is not lab). Fields missing from `config` are left out."""
    lab = preset_values("lab")
    out = []
    for f in FIELDS:
        if f.name in RUN_FIELDS or f.name not in lab or f.name not in config:
            continue
        value, lab_value = config[f.name], lab[f.name]
        if f.name == "layers":
            value, lab_value = tuple(value), tuple(lab_value)
        if value != lab_value:
            out.append((f.name, config[f.name], lab[f.name]))
    return out


__all__ = ["DATA_SOURCES", "cross_field_warnings", "differences_from_lab"]

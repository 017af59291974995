"""Loading checkpoints safely: weights_only=True, so a .pth from the internet can never run code."""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_tui.core.errors import UserError

PRETRAINED_URL = "https://raw.githubusercontent.com/GitiHubi/courseML/master/lab_06/models/cifar10_resnet_model_epoch_199.pth"


def is_url(s: str) -> bool:
    return s.startswith(("http://", "https://"))


def fetch(url: str, timeout: float = 30.0) -> Path:
    """Download `url` into the cache (once), atomically. Offline gives a clear error."""
    from resnet_tui.core.data import cache_dir
    from resnet_tui.core.runs import atomic_write

    name = url.rstrip("/").rsplit("/", 1)[-1] or "checkpoint.pth"
    dest = cache_dir() / "checkpoints" / hashlib.sha256(url.encode()).hexdigest()[:12] / name
    if dest.exists():
        return dest
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            data = r.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise UserError(f"checkpoint: could not download {url} ({reason}); check the network, or pass a local file") from None
    atomic_write(dest, lambda f: f.write(data))
    return dest


def read_state_dict(source: str | Path) -> dict[str, torch.Tensor]:
    """A state_dict from a path or URL. Accepts a plain state_dict (the lab's format) or our resume state."""
    src = str(source)
    path = fetch(src) if is_url(src) else Path(src).expanduser()
    if not is_url(src):
        if not path.exists():
            raise UserError(f"checkpoint: got {src!r}, expected an existing .pth file or an http(s) URL (no such file)")
        if path.is_dir():
            raise UserError(f"checkpoint: got {src!r}, expected a .pth file, not a folder")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        blocked = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if blocked:  # weights_only refused to import a callable: this file would run code under a plain torch.load
            raise UserError(f"checkpoint: {src!r} was refused and nothing in it was run: it asks to call code, not just load tensors ({blocked[0]})") from None
        raise UserError(f"checkpoint: {src!r} is not a PyTorch checkpoint (unreadable pickle data)") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError, KeyError, IndexError, TypeError) as e:
        raise UserError(f"checkpoint: {src!r} is not a readable PyTorch checkpoint (truncated or corrupt: {type(e).__name__})") from None
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # our resume state
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise UserError(f"checkpoint: {src!r} is not a model checkpoint (expected a state_dict of tensors)")
    return {k.removeprefix("_orig_mod."): v for k, v in obj.items()}


def infer_layers(state: dict[str, torch.Tensor]) -> tuple[int, int, int] | None:
    """Blocks per stage, read off the keys (layer{s}.{i}.conv1.weight)."""
    counts = []
    for stage in (1, 2, 3):
        idx = {int(k.split(".")[1]) for k in state if k.startswith(f"layer{stage}.") and k.split(".")[1].isdigit()}
        if not idx:
            return None
        counts.append(max(idx) + 1)
    return tuple(counts)  # type: ignore[return-value]


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, layers: tuple[int, ...]) -> None:
    """load_state_dict(strict=True), with an error that says which keys or shapes differ."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        ck_layers = infer_layers(state)
        parts = []
        if ck_layers and tuple(ck_layers) != tuple(layers):
            parts.append(f"it was saved for layers {','.join(map(str, ck_layers))}, not {','.join(map(str, layers))}")
        if shapes:
            parts.append("shapes differ: " + "; ".join(shapes[:3]) + (f" (+{len(shapes) - 3} more)" if len(shapes) > 3 else ""))
        if missing:
            parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (first: {unexpected[0]})")
        raise UserError(f"checkpoint: {source!r} does not fit this model: " + "; ".join(parts))
    model.load_state_dict(state, strict=True)


def plain_state_dict(model: nn.Module) -> dict[str, Any]:
    """Contiguous CPU tensors under the lab's key names, whatever the memory format or compile wrapper."""
    base = getattr(model, "_orig_mod", model)
    return {k: v.detach().to("cpu").contiguous() for k, v in base.state_dict().items()}


def save_state_dict(model: nn.Module, path: Path) -> None:
    from resnet_tui.core.runs import atomic_write

    state = plain_state_dict(model)
    atomic_write(path, lambda f: torch.save(state, f))

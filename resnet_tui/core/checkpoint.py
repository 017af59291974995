"""Loading checkpoints and resume states safely.

torch.load(weights_only=True), so a .pth from the internet can never run code; then one loader checks what it
loaded (dense tensors; the model's keys, shapes and float dtypes; block counts within the caps of --layers; every
field of a resume state, its optimizer state against the run's optimizer) before a model is built from it or a
run writes anything. Every refusal is one line (UserError).
"""

from __future__ import annotations

import hashlib
import inspect
import math
import pickle
import re
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from resnet_tui.core.config import MAX_BLOCKS
from resnet_tui.core.errors import UserError

_BLOCK_KEY = re.compile(r"layer([123])\.(\d+)\.", re.ASCII)  # layer{stage}.{block}.…
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


def torch_load(path: Path, source: str, what: str, hint: str = "") -> Any:
    """torch.load(weights_only=True) onto the CPU; every way a file can be unreadable is one line."""
    try:
        with warnings.catch_warnings():
            # weights_only checks sparse tensors and says so on stderr; they are refused after loading anyway
            warnings.filterwarnings("ignore", message="Validating sparse tensor invariants")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        blocked = [line.strip() for line in str(e).splitlines() if "GLOBAL" in line]
        if blocked:  # weights_only refused to import a callable: this file would run code under a plain torch.load
            raise UserError(f"{what}: {source!r} was refused and nothing in it was run: it asks to call code, not just load tensors ({blocked[0]})") from None
        raise UserError(f"{what}: {source!r} is not a PyTorch checkpoint (unreadable pickle data){hint}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, AttributeError, KeyError, IndexError, TypeError) as e:
        raise UserError(f"{what}: {source!r} is not a readable PyTorch checkpoint (truncated or corrupt: {type(e).__name__}){hint}") from None


def read_state_dict(source: str | Path) -> dict[str, torch.Tensor]:
    """A checked state_dict from a path or URL. Accepts a plain state_dict (the lab's format) or our resume state."""
    src = str(source)
    path = fetch(src) if is_url(src) else Path(src).expanduser()
    if not is_url(src):
        if not path.exists():
            raise UserError(f"checkpoint: got {src!r}, expected an existing .pth file or an http(s) URL (no such file)")
        if path.is_dir():
            raise UserError(f"checkpoint: got {src!r}, expected a .pth file, not a folder")
    obj = torch_load(path, src, "checkpoint")
    if isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict):
        obj = obj["model"]  # our resume state
    state = check_state_dict(obj, src, "checkpoint")
    infer_layers(state, src)  # block counts within the caps, before anyone builds a model from them
    return state


def check_state_dict(obj: Any, source: str, what: str) -> dict[str, torch.Tensor]:
    """A dict of str -> dense tensors that hold their values (no meta, sparse or quantized ones), without compile's prefix."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise UserError(f"{what}: {source!r} is not a model checkpoint (expected a state_dict of tensors)")
    for k, v in obj.items():
        kind = _not_dense(v)
        if kind:
            raise UserError(f"{what}: {source!r} holds {_short(k)} as a {kind} tensor, expected dense tensors with their values")
    return {k.removeprefix("_orig_mod."): v for k, v in obj.items()}


def _not_dense(t: torch.Tensor) -> str:
    if t.is_meta:
        return "meta (shape only, no values)"
    if t.layout != torch.strided:
        return str(t.layout).removeprefix("torch.")
    if t.is_quantized:
        return "quantized"
    return ""


def _short(key: Any) -> str:
    text = repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def infer_layers(state: dict[str, torch.Tensor], source: str = "checkpoint") -> tuple[int, int, int] | None:
    """Blocks per stage, read off the keys (layer{s}.{i}.conv1.weight); a block beyond the cap of --layers is refused,
    so that no key (layer1.1000000.…) can make us build a huge model. None when a stage has no keys."""
    counts = [0, 0, 0]
    for key in state:
        m = _BLOCK_KEY.match(key)
        if m is None:
            continue
        if len(m[2]) > 3 or int(m[2]) >= MAX_BLOCKS:
            raise UserError(f"checkpoint: {source!r} has the key {_short(key)}, a block beyond what --layers allows "
                            f"(blocks per stage from 1 to {MAX_BLOCKS})")
        counts[int(m[1]) - 1] = max(counts[int(m[1]) - 1], int(m[2]) + 1)
    return tuple(counts) if all(counts) else None  # type: ignore[return-value]


def check_fits(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str,
               layers: tuple[int, ...] | None = None, what: str = "checkpoint") -> None:
    """`state` has exactly the keys of `expected` (a model's state_dict), with its shapes, and floats where it has floats.
    The error says which keys, shapes or dtypes differ, and for which layers or how many classes the file was saved."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    common = [k for k in expected if k in state]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(expected[k].shape)}" for k in common if state[k].shape != expected[k].shape]
    dtypes = [f"{k} {state[k].dtype}" for k in common if not _dtype_fits(state[k], expected[k])]
    if not (missing or unexpected or shapes or dtypes):
        return
    parts = []
    ck_layers, layers = infer_layers(state, source), layers or infer_layers(expected)
    if ck_layers and layers and tuple(ck_layers) != tuple(layers):
        parts.append(f"it was saved for layers {','.join(map(str, ck_layers))}, not {','.join(map(str, layers))}")
    if shapes:
        parts.append("shapes differ: " + "; ".join(shapes[:3]) + (f" (+{len(shapes) - 3} more)" if len(shapes) > 3 else ""))
    head, want = state.get("fc.weight"), expected.get("fc.weight")
    if head is not None and want is not None and head.ndim == 2 and head.shape[0] != want.shape[0]:
        parts.append(f"its head is for {head.shape[0]} classes, the data has {want.shape[0]} classes")
    if dtypes:
        parts.append("dtypes differ: " + "; ".join(dtypes[:3]) + " (expected float weights and statistics, integer counters)")
    if missing:
        parts.append(f"{len(missing)} missing keys (first: {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (first: {_short(unexpected[0])})")
    raise UserError(f"{what}: {source!r} does not fit this model: " + "; ".join(parts))


def _dtype_fits(got: torch.Tensor, want: torch.Tensor) -> bool:
    if want.is_floating_point():
        return got.is_floating_point()
    return not got.is_floating_point() and not got.is_complex() and got.dtype != torch.bool  # num_batches_tracked


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str, layers: tuple[int, ...]) -> None:
    """check_fits against the model, then load_state_dict(strict=True)."""
    check_fits(state, model.state_dict(), source, layers)
    model.load_state_dict(state, strict=True)


def model_from_state(state: dict[str, torch.Tensor], source: str, layers: tuple[int, int, int] | None = None,
                     skip: bool = True, num_classes: int = 10) -> nn.Module:
    """The ResNet a checked state_dict holds, on the CPU, sized for `num_classes`. Layers are read off the keys unless
    given. The keys, shapes and dtypes are checked against a shape-only model on the meta device before the real one is built."""
    from resnet_tui.core.model import ResNet

    layers = layers or infer_layers(state, source) or (2, 2, 2)
    if skip and not any(".downsample." in k for k in state) and any(k.startswith("layer2.") for k in state):
        skip = False  # a plain (no-skip) network has no downsample shortcuts
    with torch.device("meta"):
        expected = ResNet(layers, skip=skip, num_classes=num_classes).state_dict()
    check_fits(state, expected, source, layers)
    model = ResNet(layers, skip=skip, num_classes=num_classes)
    model.load_state_dict(state, strict=True)
    return model


# ---------------------------------------------------------------- resume.pt


@dataclass
class ResumeState:
    """A resume.pt whose every field was checked against the run it continues; nothing of it is applied yet."""

    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    rng_cpu: torch.Tensor
    rng_cuda: torch.Tensor | None  # only when resuming on CUDA and the state has one
    epoch0: int
    batch0: int
    images: int
    train_seconds: float
    partial_losses: list[float]
    world_size: int = 1  # the processes that trained it (states saved before there were several: 1)


RESUME_KEYS = ("version", "model", "optimizer", "scheduler", "rng_cpu", "epoch0", "batch0", "images", "train_seconds", "partial_losses")


def read_resume_state(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                      steps_per_epoch: int, device: torch.device, version: int) -> ResumeState:
    """Load resume.pt and check all of it against this run's model, optimizer, scheduler and data, before anything is applied."""
    source = str(path)
    obj = torch_load(path, source, "--resume", hint=f"; the epoch checkpoints are still in {path.parent / 'checkpoints'}")
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UserError(f"--resume: {source!r} holds a model state_dict only (an epoch checkpoint copied over it?), "
                        f"expected a resume state with the optimizer, schedule and position too")
    if not isinstance(obj, dict):
        raise UserError(f"--resume: {source!r} holds a {type(obj).__name__}, expected a resume state (a dict)")
    missing = [k for k in RESUME_KEYS if k not in obj]
    if missing:
        raise UserError(f"--resume: {source!r} is not a complete resume state (missing {', '.join(missing)})")
    field = _FieldCheck(obj, source)
    if obj["version"] != version:
        raise field.bad("version", f"{version} (this version of resnet-tui's resume states)")
    batch0 = field.integer("batch0", 0, steps_per_epoch, " (the mini-batches of an epoch of this data)")
    partial = obj["partial_losses"]
    if not isinstance(partial, list) or len(partial) > batch0 or not all(_finite_number(x) for x in partial):
        raise field.bad("partial_losses", f"a list of at most batch0 = {batch0} finite losses")
    if not isinstance(obj["model"], dict):
        raise field.bad("model", "a state_dict of tensors")
    state = check_state_dict(obj["model"], source, "--resume")
    check_fits(state, model.state_dict(), source, what="--resume")
    check_optimizer_state(obj["optimizer"], optimizer, source)
    own_scheduler = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}  # lr_lambdas are not saved
    problem = _unlike(obj["scheduler"], own_scheduler, "scheduler")
    if problem or obj["scheduler"]["last_epoch"] < 0:
        raise UserError(f"--resume: {source!r} holds a scheduler state unlike this run's ({problem or 'last_epoch < 0'})")
    rng_cuda = obj.get("rng_cuda") if device.type == "cuda" else None  # a CUDA run resumed on the CPU leaves it unused
    return ResumeState(
        model=state, optimizer=obj["optimizer"], scheduler=obj["scheduler"],
        rng_cpu=_check_rng(obj["rng_cpu"], "rng_cpu", source, torch.device("cpu")),
        rng_cuda=None if rng_cuda is None else _check_rng(rng_cuda, "rng_cuda", source, device),
        epoch0=field.integer("epoch0", 0, None), batch0=batch0, images=field.integer("images", 0, None),
        train_seconds=field.seconds("train_seconds"), partial_losses=[float(x) for x in partial],
        world_size=field.integer("world_size", 1, None) if "world_size" in obj else 1,
    )


class _FieldCheck:
    """Plain fields of a resume state: the value, or a one-line error naming the field, its value and what is allowed."""

    def __init__(self, obj: dict[str, Any], source: str):
        self.obj, self.source = obj, source

    def bad(self, key: str, allowed: str) -> UserError:
        return UserError(f"--resume: {self.source!r} holds {key} = {_show(self.obj[key])}, expected {allowed}")

    def integer(self, key: str, low: int, high: int | None, why: str = "") -> int:
        v = self.obj[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < low or (high is not None and v > high):
            raise self.bad(key, (f"an integer >= {low}" if high is None else f"an integer from {low} to {high}") + why)
        return v

    def seconds(self, key: str) -> float:
        v = self.obj[key]
        if not _finite_number(v) or v < 0:
            raise self.bad(key, "a finite number >= 0")
        return float(v)


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _show(v: Any) -> str:
    if isinstance(v, torch.Tensor):
        return f"a {str(v.dtype).removeprefix('torch.')} tensor of shape {tuple(v.shape)}"
    if v is None or isinstance(v, (str, int, float, bool)):
        return _short(v)
    return f"a {type(v).__name__}"


def _check_rng(t: Any, key: str, source: str, device: torch.device) -> torch.Tensor:
    """An RNG state torch accepts: tried on a throwaway generator, so the run's own generators are untouched."""
    if not isinstance(t, torch.Tensor) or _not_dense(t) or t.dtype != torch.uint8:
        raise UserError(f"--resume: {source!r} holds {key} = {_show(t)}, expected a uint8 tensor (an RNG state)")
    try:
        torch.Generator(device=device).set_state(t)
    except (RuntimeError, ValueError, TypeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:100]
        raise UserError(f"--resume: {source!r} holds {key} = {_show(t)}, which torch refuses as an RNG state ({reason})") from None
    return t


def check_optimizer_state(saved: Any, optimizer: torch.optim.Optimizer, source: str) -> None:
    """`saved` is what this run's optimizer would save: the same param groups (keys, value types, parameter counts)
    and, per parameter, the state this optimizer keeps (momentum buffers shaped like the parameter, Adam's step, ...)."""
    name = type(optimizer).__name__
    if not isinstance(saved, dict) or set(saved) != {"state", "param_groups"} or not isinstance(saved["state"], dict):
        problem = f"got {_show(saved)}, expected an optimizer state_dict"
    else:
        problem = (_unlike(saved["param_groups"], optimizer.state_dict()["param_groups"], "param_groups")
                   or _per_param_problem(saved, optimizer))
    if problem:
        raise UserError(f"--resume: {source!r} holds optimizer state that is not this run's {name} ({problem})")


def _per_param_problem(saved: dict[str, Any], optimizer: torch.optim.Optimizer) -> str:
    ids = [i for group in saved["param_groups"] for i in group["params"]]
    params = [p for group in optimizer.param_groups for p in group["params"]]
    by_id = dict(zip(ids, params))  # how Optimizer.load_state_dict pairs them
    if len(by_id) != len(ids):
        return "a parameter id appears twice in param_groups"
    template = _state_per_parameter(optimizer)
    for i, entry in saved["state"].items():
        if i not in by_id:
            return f"state for parameter {_short(i)}, which no param group has"
        param = by_id[i]
        # template tensors shaped like the throwaway parameter stand for tensors shaped like this one
        expected = {k: torch.empty(param.shape, device="meta") if isinstance(v, torch.Tensor) and v.shape == (2,) else v
                    for k, v in template.items()}
        problem = _unlike(entry, expected, f"state[{i}]")
        if problem:
            return problem
    return ""


def _state_per_parameter(optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """The state this optimizer keeps per parameter, from one step on a throwaway 2-element parameter."""
    p = nn.Parameter(torch.zeros(2))
    accepted = inspect.signature(type(optimizer)).parameters
    probe = type(optimizer)([p], **{k: v for k, v in optimizer.defaults.items() if k in accepted})
    p.grad = torch.ones(2)
    probe.step()
    return dict(probe.state[p])


def _unlike(saved: Any, own: Any, where: str) -> str:
    """'' when `saved` has the structure and value types of `own` (what this run itself would save); else what differs."""
    if isinstance(own, dict):
        if not isinstance(saved, dict):
            return f"{where} is {_show(saved)}, expected a dict"
        missing, extra = [k for k in own if k not in saved], [k for k in saved if k not in own]
        if missing or extra:
            return f"{where} lacks {_short(missing[0])}" if missing else f"{where} has {_short(extra[0])}, which this run does not"
        return next((p for k in own if (p := _unlike(saved[k], own[k], f"{where}[{k!r}]"))), "")
    if isinstance(own, (list, tuple)):
        if not isinstance(saved, (list, tuple)) or len(saved) != len(own):
            return f"{where} is {_show(saved)}, expected a list of {len(own)}"
        return next((p for i, (a, b) in enumerate(zip(saved, own)) if (p := _unlike(a, b, f"{where}[{i}]"))), "")
    if isinstance(own, torch.Tensor):
        ok = (isinstance(saved, torch.Tensor) and not _not_dense(saved) and saved.shape == own.shape
              and saved.is_floating_point() == own.is_floating_point() and not saved.is_complex())
        return "" if ok else f"{where} is {_show(saved)}, expected a tensor of shape {tuple(own.shape)}"
    if own is None or isinstance(own, bool):
        ok = saved is None or isinstance(saved, bool)  # flags (foreach, fused, ...) are None or a bool
    elif isinstance(own, int):
        ok = isinstance(saved, int) and not isinstance(saved, bool)
    elif isinstance(own, float):
        ok = _finite_number(saved)
    else:
        ok = type(saved) is type(own)
    return "" if ok else f"{where} is {_show(saved)}, expected {_kind(own)}"


def _kind(v: Any) -> str:
    if v is None or isinstance(v, bool):
        return "true, false or None"
    if isinstance(v, int):
        return "an integer"
    if isinstance(v, float):
        return "a finite number"
    return f"a {type(v).__name__}"


def plain_state_dict(model: nn.Module) -> dict[str, Any]:
    """Contiguous CPU tensors under the lab's key names, whatever the memory format or compile wrapper."""
    base = getattr(model, "_orig_mod", model)
    return {k: v.detach().to("cpu").contiguous() for k, v in base.state_dict().items()}


def save_state_dict(model: nn.Module, path: Path) -> None:
    from resnet_tui.core.runs import atomic_write

    state = plain_state_dict(model)
    atomic_write(path, lambda f: torch.save(state, f))

"""The one validated hyperparameter config, shared by the CLI flags, the TOML file and the app's form.

Everything here is pure Python (no torch), so `resnet-tui --help` and the form's
as-you-type validation stay fast.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import stat
try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from resnet_tui.core.errors import UserError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULES = ("constant", "warmup-linear")
PRECISIONS = ("auto", "fp32", "bf16")
PRESETS = ("lab", "fast")
ON_HANGUP = ("continue", "stop")
MAX_BLOCKS = 64  # residual blocks per stage: the cap of --layers, and of the layers read off a checkpoint's keys
MAX_SEED = 2**32 - 1  # numpy's seed range; torch accepts more, but the lab seeds both
MAX_PROCESSES = 1024  # --gpus: processes of one run on this machine
MAX_CONFIG_BYTES = 1 << 20  # a config file is a few hundred bytes; anything over 1 MB is not one


class ConfigError(UserError):
    """A bad value for one field. `field` is the config name; front ends show it as a flag, key or label."""

    def __init__(self, field: str, got: Any, allowed: str, source: str = "", message: str | None = None) -> None:
        self.field, self.got, self.allowed, self.source, self.message = field, got, allowed, source, message
        super().__init__(self.render())

    def render(self, name: str | None = None) -> str:
        where = f"{self.source}: " if self.source else ""
        if self.message:
            return where + self.message
        return f"{where}{name or self.field}: got {self.got!r}, expected {self.allowed}"

    def as_flag(self) -> str:
        return self.render("--" + self.field.replace("_", "-"))


# --- value parsers: each takes a str (flag/form) or a native TOML value, returns the typed value or raises ValueError(allowed)


def _int(minimum: int, maximum: int | None = None, why: str = "") -> Callable[[Any], int]:
    allowed = f"an integer >= {minimum}" if maximum is None else f"an integer from {minimum} to {maximum}{why}"

    def parse(v: Any) -> int:
        if isinstance(v, bool):
            raise ValueError(allowed)
        if isinstance(v, str):
            try:
                v = int(v.strip().replace("_", ""))
            except ValueError:
                raise ValueError(allowed) from None
        if not isinstance(v, int) or v < minimum or (maximum is not None and v > maximum):
            raise ValueError(allowed)
        return v

    parse.allowed = allowed  # type: ignore[attr-defined]
    return parse


def _optional_int(minimum: int) -> Callable[[Any], int | None]:
    inner = _int(minimum)
    allowed = f"an integer >= {minimum} (or empty for all)"

    def parse(v: Any) -> int | None:
        if v is None or (isinstance(v, str) and v.strip().lower() in ("", "none", "all")):
            return None
        try:
            return inner(v)
        except ValueError:
            raise ValueError(allowed) from None

    parse.allowed = allowed  # type: ignore[attr-defined]
    return parse


def _float(low: float, high: float | None = None, low_open: bool = False, high_open: bool = True) -> Callable[[Any], float]:
    if high is None:
        allowed = f"a number {'>' if low_open else '>='} {low:g}"
    else:
        allowed = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(v: Any) -> float:
        if isinstance(v, bool):
            raise ValueError(allowed)
        if isinstance(v, str):
            try:
                v = float(v.strip())
            except ValueError:
                raise ValueError(allowed) from None
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(allowed)
        v = float(v)
        if v < low or (low_open and v == low):
            raise ValueError(allowed)
        if high is not None and (v > high or (high_open and v == high)):
            raise ValueError(allowed)
        return v

    parse.allowed = allowed  # type: ignore[attr-defined]
    return parse


def _choice(options: tuple[str, ...]) -> Callable[[Any], str]:
    allowed = "one of " + ", ".join(options)

    def parse(v: Any) -> str:
        if not isinstance(v, str) or v.strip().lower() not in options:
            raise ValueError(allowed)
        return v.strip().lower()

    parse.allowed = allowed  # type: ignore[attr-defined]
    return parse


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(v, str) and v.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(_bool.allowed)  # type: ignore[attr-defined]


_bool.allowed = "true or false"  # type: ignore[attr-defined]


def _layers(v: Any) -> tuple[int, int, int]:
    allowed = "three integers >= 1 separated by commas, like 2,2,2"
    if isinstance(v, str):
        parts = [p for p in v.replace(" ", ",").split(",") if p]
        try:
            v = [int(p) for p in parts]
        except ValueError:
            raise ValueError(allowed) from None
    if not isinstance(v, (list, tuple)) or len(v) != 3:
        raise ValueError(allowed)
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 or n > MAX_BLOCKS for n in v):
        raise ValueError(allowed.replace(">= 1", f"from 1 to {MAX_BLOCKS}"))
    return tuple(v)  # type: ignore[return-value]


# parse_field reports `allowed`, not the ValueError's text, so it names the upper bound too
_layers.allowed = f"three integers from 1 to {MAX_BLOCKS} separated by commas, like 2,2,2"  # type: ignore[attr-defined]


def _device(v: Any) -> str:
    allowed = "auto, cpu, cuda, cuda:N or mps"
    if not isinstance(v, str):
        raise ValueError(allowed)
    s = v.strip().lower()
    if s in ("auto", "cpu", "cuda", "mps") or (s.startswith("cuda:") and s[5:].isdigit()):
        return s
    raise ValueError(allowed)


_device.allowed = "auto, cpu, cuda, cuda:N or mps"  # type: ignore[attr-defined]


def _data(v: Any) -> str:
    allowed = "auto, cifar10, sample or a folder path"
    if not isinstance(v, str) or not v.strip():
        raise ValueError(allowed)
    return v.strip()


_data.allowed = "auto, cifar10, sample or a folder path"  # type: ignore[attr-defined]


def _optional_str(v: Any) -> str | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if not isinstance(v, str):
        raise ValueError("a path")
    return v.strip()


_optional_str.allowed = "a path"  # type: ignore[attr-defined]


def _lens_every(v: Any) -> int | str:
    allowed = "auto (about 50 measurements an epoch), 0 (off) or an integer >= 1 (every N optimizer steps)"
    if isinstance(v, str) and v.strip().lower() == "auto":
        return "auto"
    try:
        return _int(0)(v)
    except ValueError:
        raise ValueError(allowed) from None


_lens_every.allowed = "auto (about 50 measurements an epoch), 0 (off) or an integer >= 1 (every N optimizer steps)"  # type: ignore[attr-defined]


def _eval_every(v: Any) -> int | str:
    try:
        return "auto" if isinstance(v, str) and v.strip().lower() == "auto" else _int(0)(v)
    except ValueError:
        raise ValueError(_eval_every.allowed) from None  # type: ignore[attr-defined]


_eval_every.allowed = "auto (every epoch on CUDA and MPS, only at the end on a CPU), 0 (only at the end) or an integer >= 1 (every N epochs)"  # type: ignore[attr-defined]


def _gpus(v: Any) -> int | str:
    try:
        return "all" if isinstance(v, str) and v.strip().lower() == "all" else _int(1, MAX_PROCESSES)(v)
    except ValueError:
        raise ValueError(_gpus.allowed) from None  # type: ignore[attr-defined]


_gpus.allowed = f"an integer from 1 to {MAX_PROCESSES}, or all (every visible CUDA GPU)"  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Field:
    name: str
    parse: Callable[[Any], Any]
    help: str
    label: str
    flag_bool: bool = False  # shown as --name/--no-name on the CLI

    @property
    def allowed(self) -> str:
        return self.parse.allowed  # type: ignore[attr-defined]


# The order here is the order of the form and of --help.
FIELDS: tuple[Field, ...] = (
    Field("preset", _choice(PRESETS), "lab: the notebook's hyperparameters; fast: a tuned recipe for the same network", "Preset"),
    Field("data", _data, "auto (CIFAR-10 if present or downloadable, else the bundled sample), cifar10, sample, or an image-folder path with train/ and test/", "Data"),
    Field("data_dir", _optional_str, "where CIFAR-10 is downloaded (default: the user cache dir)", "Data dir"),
    Field("epochs", _int(1), "number of training epochs", "Epochs"),
    Field("batch_size", _int(1), "mini-batch size", "Batch size"),
    Field("lr", _float(0, low_open=True), "learning rate", "Learning rate"),
    Field("optimizer", _choice(OPTIMIZERS), "optimizer: " + ", ".join(OPTIMIZERS), "Optimizer"),
    Field("momentum", _float(0, 1), "momentum (SGD, RMSprop)", "Momentum"),
    Field("nesterov", _bool, "Nesterov momentum (SGD)", "Nesterov", flag_bool=True),
    Field("weight_decay", _float(0), "weight decay", "Weight decay"),
    Field("schedule", _choice(SCHEDULES), "learning-rate schedule: constant, or warmup-linear (linear warm-up, then linear decay to 0)", "LR schedule"),
    Field("warmup_epochs", _float(0), "epochs of linear warm-up (warmup-linear schedule)", "Warm-up epochs"),
    Field("label_smoothing", _float(0, 1), "label smoothing of the NLL loss", "Label smoothing"),
    Field("augment", _bool, "random flip and 4-pixel translate, on the device", "Augment", flag_bool=True),
    Field("tta", _bool, "test-time augmentation in the final evaluation: each test image and its mirror image, "
          "their class probabilities averaged", "TTA", flag_bool=True),
    Field("seed", _int(0, MAX_SEED, " (numpy's seed range)"), "random seed", "Seed"),
    Field("layers", _layers, "residual blocks per stage", "Layers"),
    Field("skip", _bool, "residual shortcuts (--no-skip trains the plain network of the same depth)", "Skip connections", flag_bool=True),
    Field("device", _device, "auto (cuda, else mps, else cpu), cpu, cuda, cuda:N or mps", "Device"),
    Field("precision", _choice(PRECISIONS), "auto (bf16 autocast on CUDA and on CPUs where it measured faster: AMX, or AVX512-BF16 without AVX512-FP16; else fp32; the device line says why), fp32 or bf16", "Precision"),
    Field("gpus", _gpus, "processes of one run, data-parallel (torch.distributed): 1, N or all (one per visible CUDA GPU); "
          "with --device cpu, N CPU processes (gloo). --batch-size stays the global batch", "GPUs"),
    Field("sync_bn", _bool, "with several processes: SyncBatchNorm, batch statistics over the whole global batch (CUDA), "
          "instead of each process's own", "Sync BatchNorm", flag_bool=True),
    Field("compile", _bool, "torch.compile the model (CUDA graphs on GPU); falls back with a notice", "Compile", flag_bool=True),
    Field("limit_train", _optional_int(1), "train on a deterministic, class-balanced subset of N images", "Train subset"),
    Field("limit_eval", _optional_int(1), "evaluate on a deterministic, class-balanced subset of N images", "Eval subset"),
    Field("on_hangup", _choice(ON_HANGUP), "when the terminal goes away (SIGHUP, a dropped SSH connection): continue training "
          "detached (like nohup), or stop and save a resumable state", "On hang-up"),
    Field("resume_every", _float(0), "save the resumable state at most every this many seconds, at a batch boundary "
          "(0: only at epoch ends and stops)", "Resume every (s)"),
    Field("lens_every", _lens_every, "measure the residual lens (per-block ||F(x)||/||x||, gradient norms, activations) every "
          "N optimizer steps: auto (about 50 times an epoch), 0 (off)", "Lens every"),
    Field("eval_every", _eval_every, "evaluate on the test split every N epochs during training, and always after the last: "
          "auto (every epoch on CUDA and MPS, where it is cheap; only at the end on a CPU), 0 (only at the end)", "Eval every"),
)
FIELD_BY_NAME = {f.name: f for f in FIELDS}


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "lab"
    data: str = "auto"
    data_dir: str | None = None
    epochs: int = 1
    batch_size: int = 128
    lr: float = 0.001
    optimizer: str = "sgd"
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    augment: bool = False
    tta: bool = False
    seed: int = 1234
    layers: tuple[int, int, int] = (2, 2, 2)
    skip: bool = True
    device: str = "auto"
    precision: str = "auto"
    gpus: int | str = 1  # processes of the run: an int, or "all" (resnet_tui.core.distributed)
    sync_bn: bool = False
    compile: bool = False
    limit_train: int | None = None
    limit_eval: int | None = None
    on_hangup: str = "continue"
    resume_every: float = 60.0
    lens_every: int | str = "auto"  # "auto" or optimizer steps; 0: off (resnet_tui.core.lens)
    eval_every: int | str = "auto"  # "auto" or epochs; 0: only after the last epoch (eval_every_epochs resolves auto)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["layers"] = list(self.layers)
        return d

    def to_toml(self) -> str:
        lines = []
        for f in FIELDS:
            v = getattr(self, f.name)
            if v is None:
                lines.append(f"# {f.name} = (not set)")
            else:
                lines.append(f"{f.name} = {_toml_value(v)}")
        return "\n".join(lines) + "\n"

    @property
    def layers_str(self) -> str:
        return ",".join(str(n) for n in self.layers)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


# The fast preset: Nesterov SGD, warm-up then linear decay, label smoothing, weight decay on weights,
# flip + translate on the device. Batch size and lr depend on the device (see preset_values).
_FAST = dict(
    preset="fast", epochs=30, optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=5e-4,
    schedule="warmup-linear", warmup_epochs=2.0, label_smoothing=0.1, augment=True, tta=True,
)
# GPU: 40 epochs at batch 512 and lr 0.4 reached 86.3% (87.0% with flip TTA) on one H200 in 41 s uncompiled, measured
# with a plain script of the same recipe and network (issue 11); compiled with CUDA graphs, the target is 30 s.
FAST_GPU_EPOCHS, FAST_GPU_BATCH, FAST_GPU_LR = 40, 512, 0.4
FAST_CPU_BATCH, FAST_CPU_LR = 64, 0.025  # batch 64: the fastest measured on a 2-core CPU (channels_last)


# Where and how a run happens, not how the network learns: presets leave them alone.
RUN_FIELDS = ("data", "data_dir", "device", "gpus", "limit_train", "limit_eval", "on_hangup", "resume_every", "lens_every", "eval_every")


def eval_every_epochs(cfg: TrainConfig, device_type: str) -> int:
    """Epochs between evaluations of the test split during training; 0: only after the last epoch (which is always
    evaluated). auto: every epoch on a GPU (CUDA, MPS), where an evaluation is a small fraction of an epoch; only at
    the end on a CPU, where it is not."""
    if cfg.eval_every == "auto":
        return 1 if device_type in ("cuda", "mps") else 0
    return int(cfg.eval_every)


def preset_values(preset: str, device_type: str = "cpu") -> dict[str, Any]:
    """The field values a preset sets. The lab preset is the dataclass defaults."""
    if preset == "lab":
        defaults = TrainConfig()
        return {f.name: getattr(defaults, f.name) for f in FIELDS if f.name not in RUN_FIELDS}
    values = dict(_FAST)
    if device_type == "cpu":
        values.update(batch_size=FAST_CPU_BATCH, lr=FAST_CPU_LR)
    else:
        values.update(epochs=FAST_GPU_EPOCHS, batch_size=FAST_GPU_BATCH, lr=FAST_GPU_LR)
    values["compile"] = device_type == "cuda"  # CUDA graphs (reduce-overhead); falls back to eager with a notice
    return values


def parse_field(name: str, value: Any, source: str = "") -> Any:
    f = FIELD_BY_NAME[name]
    try:
        return f.parse(value)
    except (ValueError, OverflowError):  # OverflowError: a TOML integer too large for a float (lr = 1e400 written out)
        raise ConfigError(name, value, f.allowed, source) from None


def unknown_key_error(key: str, source: str) -> ConfigError:
    close = difflib.get_close_matches(key, list(FIELD_BY_NAME), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(FIELD_BY_NAME)
    return ConfigError(key, key, hint, source, message=f"unknown key {key!r}; {hint}")


def read_toml(path: str | Path, flag: str = "--config") -> dict[str, Any]:
    """Read and validate a config TOML file. Returns only the keys it sets, parsed. `flag` names it in errors."""
    source = str(path)
    text = read_small_text(Path(path), flag, "TOML file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"{source}: not valid TOML: {e}") from None
    except RecursionError:  # tomllib parses nested arrays recursively
        raise UserError(f"{source}: not valid TOML: nested too deeply") from None
    return parse_mapping(raw, source)


def read_small_text(path: Path, flag: str, what: str) -> str:
    """A regular UTF-8 file of at most 1 MB, read without ever reading more (so /dev/zero or a FIFO cannot hang us)."""
    source = str(path)
    try:
        # O_NONBLOCK: opening a FIFO does not wait for a writer; fstat then refuses it
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise UserError(f"{flag}: got {source!r}, expected an existing {what}") from None
    except OSError as e:
        raise UserError(f"{flag}: cannot read {source!r} ({e.strerror or e})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UserError(f"{flag}: got {source!r}, expected a {what} (a regular file, not a folder, device or pipe)")
    with os.fdopen(fd, "rb") as f:
        try:
            data = f.read(MAX_CONFIG_BYTES + 1)
        except OSError as e:
            raise UserError(f"{flag}: cannot read {source!r} ({e.strerror or e})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise UserError(f"{flag}: got {source!r}, expected a {what} of at most 1 MB (it is larger)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{flag}: {source!r} is not UTF-8 text (byte {e.start}), expected a {what}") from None


def parse_mapping(raw: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in FIELD_BY_NAME:
            raise unknown_key_error(key, source)
        out[key] = parse_field(key, value, source)
    return out


def build_config(
    file_values: Mapping[str, Any] | None = None,
    flag_values: Mapping[str, Any] | None = None,
    device_type: str = "cpu",
) -> TrainConfig:
    """Resolve preset, then the TOML file, then flags (flags win). Values are validated already."""
    file_values = dict(file_values or {})
    flag_values = {k: v for k, v in (flag_values or {}).items() if v is not None}
    preset = flag_values.get("preset", file_values.get("preset", "lab"))
    merged: dict[str, Any] = preset_values(preset, device_type)
    merged.update(file_values)
    merged.update(flag_values)
    return TrainConfig(**merged)


__all__ = [
    "ConfigError", "FIELDS", "FIELD_BY_NAME", "Field", "TrainConfig", "build_config", "eval_every_epochs", "parse_field",
    "parse_mapping", "preset_values", "read_toml", "OPTIMIZERS", "PRESETS",
]

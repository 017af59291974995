"""Command line: `resnet-tui` opens the app; `resnet-tui --no-ui train|evaluate` and `info` run headless.

Imports here stay light (no torch, no textual) so that `--help` is fast: the engine and the app are
imported inside the commands.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Any, Callable, Optional

import typer

try:  # typer >= 0.20 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover - older typer
    from click import exceptions as click_exc  # type: ignore[no-redef]

from resnet_tui.config import FIELDS, ConfigError, TrainConfig, build_config, parse_field, read_toml
from resnet_tui.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    invoke_without_command=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Train and evaluate the lab's residual network on CIFAR-10, in a terminal app or headless.",
)

PRETRAINED_HELP = "evaluate the lab's published 200-epoch checkpoint"


class State:
    no_ui = False


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    raise typer.Exit(code)


@app.callback()
def main_callback(
    ctx: typer.Context,
    no_ui: bool = typer.Option(False, "--no-ui", help="run headless (for nohup, tmux, Slurm): plain log lines, no app"),
) -> None:
    State.no_ui = no_ui
    if ctx.invoked_subcommand is None:
        if no_ui:
            fail("--no-ui needs a command: train, evaluate or info")
        _open_app(mode="idle")


# ---------------------------------------------------------------- config flags, generated from config.FIELDS


def with_config_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add one CLI option per config field to `func`'s signature (typer reads __signature__)."""
    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    for f in FIELDS:
        flag = "--" + f.name.replace("_", "-")
        if f.flag_bool:
            opt = typer.Option(None, f"{flag}/--no-{f.name.replace('_', '-')}", help=f.help, show_default=False)
            annotation: Any = Optional[bool]
        else:
            default = _default_text(f.name)
            opt = typer.Option(None, flag, help=f.help + (f" [default: {default}]" if default else ""), show_default=False, metavar=f.name.upper())
            annotation = Optional[str]
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=annotation))
    func.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return func


def _default_text(name: str) -> str:
    v = getattr(TrainConfig(), name)
    if name == "layers":
        return ",".join(map(str, v))
    if v is None:
        return "all" if name.startswith("limit_") else ""
    return str(v)


def resolve_config(config_file: Optional[Path], flags: dict[str, Any]) -> TrainConfig:
    """Flags override the TOML file; both go through config.parse_field. Errors name the flag or key."""
    file_values = read_toml(config_file) if config_file else {}
    flag_values: dict[str, Any] = {}
    for f in FIELDS:
        raw = flags.get(f.name)
        if raw is None:
            continue
        try:
            flag_values[f.name] = parse_field(f.name, raw)
        except ConfigError as e:
            raise UserError(e.as_flag()) from None
    device_type = "cpu"
    preset = flag_values.get("preset", file_values.get("preset", "lab"))
    if preset != "lab":  # the fast preset picks its batch size by device
        from resnet_tui.device import resolve_device

        device_type = resolve_device(flag_values.get("device", file_values.get("device", "auto"))).type
    return build_config(file_values, flag_values, device_type)


# ---------------------------------------------------------------- train


@app.command()
@with_config_options
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="a TOML file of config keys (named like the flags, with underscores); flags override it", metavar="FILE"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="where the run is written [default: runs/<timestamp>]", metavar="DIR"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the run in this run directory (optionally with a new --epochs)", metavar="RUN_DIR"),
    **flags: Any,
) -> None:
    """Train the network. Flags override --config; defaults are the lab's."""
    if resume is not None:
        cfg, run_path = _resume_config(resume, flags)
    else:
        cfg = resolve_config(config, flags)
        from resnet_tui.runs import default_run_dir

        run_path = run_dir or default_run_dir()
    if not State.no_ui:
        _open_app(mode="train", config=cfg, run_dir=run_path, resume=resume is not None)
        return
    code = run_headless_training(cfg, run_path, resume=resume is not None)
    raise typer.Exit(code)


def _resume_config(resume: Path, flags: dict[str, Any]) -> tuple[TrainConfig, Path]:
    from resnet_tui.config import parse_mapping, tomllib
    from resnet_tui.runs import CONFIG_NAME

    cfg_path = resume / CONFIG_NAME
    if not resume.is_dir() or not cfg_path.exists():
        raise UserError(f"--resume: got {str(resume)!r}, expected a run directory with {CONFIG_NAME}")
    try:
        saved = parse_mapping(tomllib.loads(cfg_path.read_text(encoding="utf-8")), str(cfg_path))
    except ValueError as e:
        raise UserError(f"--resume: {str(cfg_path)!r} is not valid TOML ({e})") from None
    cfg = TrainConfig(**saved)
    changed = {k: v for k, v in flags.items() if v is not None}
    if set(changed) - {"epochs", "device"}:
        raise UserError(f"--resume: only --epochs and --device can change when resuming (got {', '.join('--' + k.replace('_', '-') for k in changed)})")
    if "epochs" in changed:
        try:
            cfg = cfg.replace(epochs=parse_field("epochs", changed["epochs"]))
        except ConfigError as e:
            raise UserError(e.as_flag()) from None
    if "device" in changed:
        cfg = cfg.replace(device=parse_field("device", changed["device"]))
    return cfg, resume


def run_headless_training(cfg: TrainConfig, run_path: Path, resume: bool = False) -> int:
    """Train with the headless printer. Ctrl+C, SIGTERM and SIGHUP stop at the next batch, save, and exit 128+signal."""
    import signal

    from resnet_tui.headless import HeadlessPrinter
    from resnet_tui.train import train as run_train

    received: list[int] = []

    def on_signal(signum: int, frame: Any) -> None:
        if received:  # a second signal: stop now, without saving
            signal.signal(signum, signal.SIG_DFL)
            raise KeyboardInterrupt
        received.append(signum)
        print(f"\n[LOG] {signal.Signals(signum).name} received: stopping after this batch and saving (again to abort)", file=sys.stderr, flush=True)

    handled = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if hasattr(signal, "SIGHUP") else [])
    previous = {s: signal.signal(s, on_signal) for s in handled}
    printer = HeadlessPrinter()
    try:
        end = run_train(cfg, run_path, printer, should_stop=lambda: bool(received), resume=resume)
    finally:
        printer.close()
        for s, h in previous.items():
            signal.signal(s, h)
    if received:
        return 128 + received[0]
    return {"finished": 0, "interrupted": 130}.get(end.status, 1)


# ---------------------------------------------------------------- evaluate


@app.command()
def evaluate(
    checkpoint: Optional[str] = typer.Argument(None, help="a .pth file, an http(s) URL, or a run directory", metavar="CHECKPOINT"),
    pretrained: bool = typer.Option(False, "--pretrained", help=PRETRAINED_HELP),
    data: str = typer.Option("auto", "--data", help="auto, cifar10, sample, or an image-folder path"),
    data_dir: Optional[str] = typer.Option(None, "--data-dir", help="where CIFAR-10 is downloaded"),
    limit_eval: Optional[str] = typer.Option(None, "--limit-eval", help="evaluate on a class-balanced subset of N images", metavar="N"),
    layers: Optional[str] = typer.Option(None, "--layers", help="blocks per stage [default: read off the checkpoint]"),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:N or mps"),
    as_json: bool = typer.Option(False, "--json", help='print one JSON object: {"accuracy", "nll", "n", "classes", "confusion"}'),
) -> None:
    """Evaluate a checkpoint on the test split: NLL, accuracy, per-class precision/recall/F1, confusion matrix."""
    source = _checkpoint_source(checkpoint, pretrained)
    try:
        data = parse_field("data", data)
        limit = parse_field("limit_eval", limit_eval)
        lay = parse_field("layers", layers) if layers is not None else None
        dev = parse_field("device", device)
    except ConfigError as e:
        raise UserError(e.as_flag()) from None
    if not State.no_ui:
        _open_app(mode="evaluate", checkpoint=source, config=TrainConfig(data=data, data_dir=data_dir, limit_eval=limit, device=dev))
        return
    from resnet_tui.data import load_split
    from resnet_tui.device import resolve_device
    from resnet_tui.evaluate import evaluate_checkpoint
    from resnet_tui.report import print_eval

    from resnet_tui.checkpoint import read_state_dict

    torch_device = resolve_device(dev)
    read_state_dict(source)  # fail on a bad checkpoint before spending time on the data
    test = load_split(data, "test", data_dir, limit)
    for note in test.notices:
        print(f"[WARNING] {note}", file=sys.stderr, flush=True)
    result = evaluate_checkpoint(source, test, torch_device, layers=lay)
    assert result is not None
    print_eval(result, source, as_json=as_json)


def _checkpoint_source(checkpoint: Optional[str], pretrained: bool) -> str:
    """CHECKPOINT may be a file, a URL or a run directory (its last epoch checkpoint); --pretrained is the lab's."""
    from resnet_tui.checkpoint import PRETRAINED_URL
    from resnet_tui.runs import RunDir

    if pretrained and checkpoint:
        raise UserError(f"CHECKPOINT: got {checkpoint!r} and --pretrained, expected one of them")
    if pretrained:
        return PRETRAINED_URL
    if not checkpoint:
        raise UserError("CHECKPOINT: missing, expected a .pth file, an http(s) URL, a run directory, or --pretrained")
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        found = RunDir(path).list_checkpoints()
        if not found:
            raise UserError(f"CHECKPOINT: got {checkpoint!r}, a folder without checkpoints/cifar10_model_epoch_N.pth")
        return str(found[-1][1])
    return checkpoint


# ---------------------------------------------------------------- info


@app.command()
def info(
    layers: str = typer.Option("2,2,2", "--layers", help="blocks per stage"),
    skip: bool = typer.Option(True, "--skip/--no-skip", help="residual shortcuts (--no-skip: the plain network)"),
    as_json: bool = typer.Option(False, "--json", help="print the tree as JSON"),
) -> None:
    """Print the architecture: each module's output shape and parameter count, and the total."""
    try:
        lay = parse_field("layers", layers)
    except ConfigError as e:
        raise UserError(e.as_flag()) from None
    from resnet_tui.report import print_info

    print_info(lay, skip, as_json)


# ---------------------------------------------------------------- app


def _open_app(**kwargs: Any) -> None:
    from resnet_tui.app import run_app

    run_app(**kwargs)


def main(argv: list[str] | None = None) -> int:
    """Entry point. User errors print one line and exit 2; no tracebacks."""
    try:
        rv = app(args=argv, standalone_mode=False, prog_name="resnet-tui")
        if isinstance(rv, int):
            return rv
    except typer.Exit as e:
        return e.exit_code
    except click_exc.UsageError as e:
        print(f"error: {e.format_message()}", file=sys.stderr, flush=True)
        return 2
    except typer.Abort:
        return 130
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    sys.exit(main())

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

from resnet_tui.core.config import FIELDS, ConfigError, TrainConfig, build_config, parse_field, read_toml
from resnet_tui.core.errors import UserError

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
    argv: list[str] = []  # the arguments main() was given: `--gpus N` runs the same command as N ranks


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
            fail("--no-ui needs a command: train, evaluate, sweep, runs or info")
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
    from resnet_tui.core.operations import preset_device_type

    preset = flag_values.get("preset", file_values.get("preset", "lab"))
    device_type = preset_device_type([preset], flag_values.get("device", file_values.get("device", "auto")))
    return build_config(file_values, flag_values, device_type)


# ---------------------------------------------------------------- train


@app.command()
@with_config_options
def train(
    config: Optional[Path] = typer.Option(None, "--config", help="a TOML file of config keys (named like the flags, with underscores); flags override it", metavar="FILE"),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="where the run is written [default: runs/<timestamp>]", metavar="DIR"),
    resume: Optional[Path] = typer.Option(None, "--resume", help="continue the run in this run directory (optionally with a new --epochs)", metavar="RUN_DIR"),
    notify: bool = typer.Option(True, "--notify/--no-notify", help="when the run ends (finished, failed or diverged), ring the terminal bell "
                                "and send a desktop notification (OSC 9 and OSC 777; through tmux's passthrough inside tmux); "
                                "never written when stdout is not a terminal"),
    **flags: Any,
) -> None:
    """Train the network. Flags override --config; defaults are the lab's."""
    if resume is not None:
        cfg, run_path = _resume_config(resume, flags, config=config, run_dir=run_dir)
    else:
        cfg = resolve_config(config, flags)
        from resnet_tui.core.runs import default_run_dir

        run_path = run_dir or default_run_dir()
    if not State.no_ui:
        _open_app(mode="train", config=cfg, run_dir=run_path, resume=resume is not None, notify=notify)
        return
    _print_config_warnings(cfg)
    nproc = _processes_to_launch(cfg)
    if nproc > 1:
        raise typer.Exit(_launch_ranks(nproc, run_path, resume is not None, cfg.on_hangup))
    code = run_headless_training(cfg, run_path, resume=resume is not None, notify=notify)
    raise typer.Exit(code)


def _processes_to_launch(cfg: TrainConfig) -> int:
    """The processes `--gpus` asks this command to start (1: train here). Under torchrun this process is one rank
    already: torchrun's --nproc-per-node and --nnodes say how many there are."""
    from resnet_tui.core.distributed import launched_by_torchrun
    from resnet_tui.core.operations import run_processes

    return 1 if launched_by_torchrun() else run_processes(cfg)


def _launch_ranks(nproc: int, run_path: Path, resume: bool, on_hangup: str) -> int:
    """`--gpus N`: this same command as N ranks, through torch.distributed's launcher; they train into one run directory
    (named here, so that every rank writes the same one)."""
    from resnet_tui.core.distributed import launch
    from resnet_tui.headless import SafeStream, say

    args = list(State.argv)
    if not resume and "--run-dir" not in args:
        args += ["--run-dir", str(run_path)]
    out = SafeStream(sys.stdout)  # a closed pipe must not stop the launch
    out.write(f"[LOG] training {run_path} as {nproc} processes (torch.distributed); Ctrl+C stops them all after the same batch\n")
    out.flush()
    code, who = launch(nproc, args, on_hangup)
    if who:
        say(f"error: {who}; the run failed, and its last saved resume state is intact: "
            f"resnet-tui --no-ui train --resume {run_path}")
    return code


def _print_config_warnings(cfg: TrainConfig) -> None:
    """Valid values that will not do what they seem to (the form shows the same lines under its fields)."""
    from resnet_tui.core.config_checks import cross_field_warnings

    for name, line in cross_field_warnings(cfg.to_dict()).items():
        if name != "data":  # a data folder that is not there fails the run with its own one-line error
            print(f"[WARNING] --{name.replace('_', '-')}: {line}", file=sys.stderr, flush=True)


def _resume_config(resume: Path, flags: dict[str, Any], config: Optional[Path] = None,
                   run_dir: Optional[Path] = None) -> tuple[TrainConfig, Path]:
    from resnet_tui.core.operations import resume_config
    from resnet_tui.core.runs import CONFIG_NAME

    ignored = [name for name, value in (("--config", config), ("--run-dir", run_dir)) if value is not None]
    if ignored:
        raise UserError(f"--resume: got {' and '.join(ignored)}, which a resumed run would ignore (it keeps RUN_DIR's "
                        f"{CONFIG_NAME} and writes into RUN_DIR); expected neither")
    return resume_config(resume, {k: v for k, v in flags.items() if v is not None}), resume


def run_headless_training(cfg: TrainConfig, run_path: Path, resume: bool = False, notify: bool = False) -> int:
    """Train with the headless printer. Ctrl+C and SIGTERM stop at the next batch, save, and exit 128+signal;
    SIGHUP detaches (or stops, with --on-hangup stop). A closed pipe or a dead terminal never stops training.
    notify: a desktop notification through the terminal when the run ends (not on a stop the user asked for)."""
    from resnet_tui.core.device import resolve_device
    from resnet_tui.core.distributed import join
    from resnet_tui.core.train import train as run_train
    from resnet_tui.headless import HeadlessPrinter, SignalStop

    cohort = join(resolve_device(cfg.device))  # under torchrun: this rank's place in the run; else a cohort of one
    try:
        run_path = Path(cohort.broadcast(str(run_path)))  # rank 0's: a default run dir is named after the time
        printer = HeadlessPrinter(notify=notify) if cohort.main else None  # rank 0 speaks for the run
        with SignalStop(cfg.on_hangup, on_detach=printer.detach if printer else None, quiet=not cohort.main) as signals:
            try:
                end = run_train(cfg, run_path, printer or (lambda e: None), should_stop=signals.stop_requested,
                                resume=resume, cohort=cohort)
            finally:
                if printer is not None:
                    printer.close()
    finally:
        cohort.close()
    if not cohort.main and end.status == "failed":
        from resnet_tui.headless import say

        say(f"error: rank {cohort.rank}: {end.message}")
    return training_exit_code(end.status, signals.exit_code, cohort.main)


def training_exit_code(status: str, signal_code: int | None, main: bool = True) -> int:
    """A training process's exit code. Rank 0 speaks for the run: 128+signal after a stop it was sent, else 0, 130
    (interrupted) or 1. A follower rank exits 0 unless it failed itself: the launcher (torchrun's elastic agent) takes
    a non-zero exit for a failure and shuts the other ranks down at once, and rank 0 may still be writing the run's
    end (and its exit code, the launcher's, would be lost)."""
    if not main:
        return 1 if status == "failed" else 0
    if signal_code is not None and status != "failed":  # a rank failure is not the stop the signal asked for
        return signal_code
    return {"finished": 0, "interrupted": 130}.get(status, 1)


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
    best: bool = typer.Option(False, "--best", help="CHECKPOINT is a run directory: evaluate its epoch checkpoint with the lowest loss (see --by)"),
    by: Optional[str] = typer.Option(None, "--by", help="with --best: train_loss (the epochs' mean training loss, from metrics.jsonl) or eval_loss (evaluate every epoch checkpoint on the test split) [default: train_loss]", metavar="LOSS"),
    confusion_csv: Optional[str] = typer.Option(None, "--confusion-csv", help="also write the confusion matrix as CSV (rows: true class; - for stdout)", metavar="FILE"),
    tta: bool = typer.Option(False, "--tta/--no-tta", help="test-time augmentation: average the class probabilities of each image and its mirror image"),
    against: Optional[str] = typer.Option(None, "--against", help="also evaluate B (a .pth file, an http(s) URL, or a run directory) the same way on the same test images (--data, --limit-eval, --tta, --device, --layers, --best/--by apply to both) and print the change from CHECKPOINT to B: accuracy, NLL, per-class recall, each confusion cell (with --json: as JSON; --confusion-csv: the change matrix); headless only", metavar="B"),
) -> None:
    """Evaluate a checkpoint on the test split: NLL, accuracy, per-class precision/recall/F1, confusion matrix."""
    from resnet_tui.core import operations as ops

    source = ops.resolve_source(checkpoint, pretrained, best, by)
    against_source = _against_source(against, best, by) if against is not None else None
    try:
        data = parse_field("data", data)
        limit = parse_field("limit_eval", limit_eval)
        lay = parse_field("layers", layers) if layers is not None else None
        dev = parse_field("device", device)
    except ConfigError as e:
        raise UserError(e.as_flag()) from None
    if not State.no_ui and against_source is not None:
        raise UserError("--against: got it without --no-ui, expected `resnet-tui --no-ui evaluate A --against B` "
                        "(in the app, diff two evaluations from the Evaluate screen)")
    if not State.no_ui:
        # by train loss the epoch is chosen here, without torch; by eval loss the app evaluates each epoch checkpoint
        chosen = ops.choose_from_metrics(source)
        _open_app(mode="evaluate", checkpoint=chosen.checkpoint, best_by=chosen.best_by,
                  config=TrainConfig(data=data, data_dir=data_dir, limit_eval=limit, device=dev, tta=tta))
        return
    if against_source is not None:
        _evaluate_against_headless(source, against_source, data, data_dir, limit, lay, dev, as_json, confusion_csv, tta)
        return
    _evaluate_headless(source, data, data_dir, limit, lay, dev, as_json, confusion_csv, tta)


def _test_loader(data: str, data_dir: Optional[str], limit: Optional[int]) -> Callable[[], Any]:
    """load_test for operations.evaluate_source: the test split, its notices on stderr."""
    from resnet_tui.core.data import load_split

    def load_test() -> Any:
        test = load_split(data, "test", data_dir, limit)
        for note in test.notices:
            print(f"[WARNING] {note}", file=sys.stderr, flush=True)
        return test

    return load_test


def _evaluate_headless(source: Any, data: str, data_dir: Optional[str], limit: Optional[int], layers: Any, device: str,
                       as_json: bool, confusion_csv: Optional[str], tta: bool = False) -> None:
    from resnet_tui.core.operations import evaluate_source
    from resnet_tui.report import print_eval

    load_test = _test_loader(data, data_dir, limit)
    done = evaluate_source(source, load_test, device, layers=layers, tta=tta)
    assert done is not None  # nothing asks it to stop
    extra = None
    if done.best is not None:
        why = sys.stderr if as_json else sys.stdout  # with --json, stdout stays one JSON object
        print(done.best.reason(), file=why, flush=True)
        if done.best.optimistic:
            print("note: chosen by its loss on the same test images it is reported on, so these numbers are optimistic", file=why, flush=True)
        extra = {"best": done.best.to_json()}
    print_eval(done.result, done.checkpoint, as_json=as_json, extra=extra)
    if confusion_csv is not None:
        from resnet_tui.core.export import write_confusion_csv

        write_confusion_csv(done.result.classes, done.result.confusion, confusion_csv)
        if confusion_csv != "-":
            print(f"confusion matrix written to {confusion_csv}", file=sys.stderr, flush=True)


def _against_source(against: str, best: bool, by: Optional[str]) -> Any:
    """B of `evaluate A --against B`, chosen like A: with --best, the best epoch of B's run by the same loss."""
    from resnet_tui.core import operations as ops

    if not against.strip():
        raise UserError("--against: got '', expected a .pth file, an http(s) URL, or a run directory")
    if best and not Path(against).expanduser().is_dir():
        raise UserError(f"--against: got {against!r} with --best, expected a run directory (--best chooses among its epoch checkpoints)")
    return ops.resolve_source(against, False, best, by, what="--against")


def _evaluate_against_headless(source: Any, against: Any, data: str, data_dir: Optional[str], limit: Optional[int],
                               layers: Any, device: str, as_json: bool, confusion_csv: Optional[str], tta: bool) -> None:
    """`evaluate A --against B`: both evaluated the same way on the same test images, then the change from A to B."""
    from resnet_tui.core.eval_diff import diff_evaluations, evaluate_pair
    from resnet_tui.diff_report import print_diff

    pair = evaluate_pair(source, against, _test_loader(data, data_dir, limit), device, layers=layers, tta=tta, b_label="--against")
    assert pair is not None  # nothing asks it to stop
    extra: dict[str, Any] = {}
    for name, done in zip("ab", pair):
        if done.best is not None:
            why = sys.stderr if as_json else sys.stdout  # with --json, stdout stays one JSON object
            print(f"{name.upper()}: {done.best.reason()}", file=why, flush=True)
            if done.best.optimistic:
                print(f"note: {name.upper()} was chosen by its loss on the same test images it is reported on, so its numbers are optimistic",
                      file=why, flush=True)
            extra[f"best_{name}"] = done.best.to_json()
    diff = diff_evaluations(pair[0].result, pair[1].result)
    print_diff(diff, pair[0].checkpoint, pair[1].checkpoint, as_json=as_json, extra=extra)
    if confusion_csv is not None:
        from resnet_tui.core.export import write_confusion_csv

        write_confusion_csv(diff.classes, diff.confusion_change, confusion_csv)
        if confusion_csv != "-":
            print(f"confusion change matrix (B - A) written to {confusion_csv}", file=sys.stderr, flush=True)


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


# ---------------------------------------------------------------- watch


@app.command()
def watch(run_dir: Path = typer.Argument(..., help="a run directory that another process is training into", metavar="RUN_DIR")) -> None:
    """Follow a run another process is writing (e.g. under nohup or Slurm) through its metrics.jsonl: chart, progress, log, evaluation."""
    from resnet_tui.core.runs import METRICS_NAME

    if not (run_dir / METRICS_NAME).is_file():
        raise UserError(f"RUN_DIR: got {str(run_dir)!r}, expected a run directory with {METRICS_NAME}")
    if State.no_ui:
        fail(f"watch follows a run in the app; without it, read {run_dir / METRICS_NAME}")
    _open_app(mode="watch", run_dir=run_dir)


# ---------------------------------------------------------------- stop


@app.command()
def stop(
    run_dir: Path = typer.Argument(..., help="a run directory that a live process is training", metavar="RUN_DIR"),
    wait: float = typer.Option(60.0, "--wait", help="seconds to wait for the run to save and end (0: do not wait)", metavar="SECONDS"),
) -> None:
    """Stop a live run cleanly (from any terminal): it stops after its batch, saves a resumable state and ends."""
    from resnet_tui.core.lock import request_stop, wait_released

    who = request_stop(run_dir)
    print(f"asked {who.describe()} to stop {run_dir} after its batch and save", flush=True)
    if wait <= 0:
        return
    if not wait_released(run_dir, wait):
        fail(f"{run_dir} is still training after {wait:g} s; it may be in its final evaluation or a checkpoint write", code=1)
    print(f"stopped; resume with: resnet-tui --no-ui train --resume {run_dir}", flush=True)


# ---------------------------------------------------------------- sweep


def with_sweep_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """One option per config field that takes a list of values (booleans as on,off; layers separated by ';')."""
    from resnet_tui.core.sweep import SINGLE_VALUED, separator

    sig = inspect.signature(func)
    params = [p for p in sig.parameters.values() if p.kind != inspect.Parameter.VAR_KEYWORD]
    for f in FIELDS:
        sep = separator(f.name)
        if f.name in SINGLE_VALUED:
            hint, metavar = "one value", f.name.upper()
        elif f.flag_bool:
            hint, metavar = "on, off or on,off", "on,off"
        elif f.name == "layers":
            hint, metavar = "lists separated by ';', like \"2,2,2;8,8,8\"", "L;L"
        else:
            hint, metavar = f"values separated by {sep!r}", f"{f.name.upper()}{sep}..."
        default = ("on" if getattr(TrainConfig(), f.name) else "off") if f.flag_bool else _default_text(f.name)
        opt = typer.Option(None, "--" + f.name.replace("_", "-"), help=f"{f.help} ({hint})" + (f" [default: {default}]" if default else ""),
                           show_default=False, metavar=metavar)
        params.append(inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=Optional[str]))
    func.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    return func


@app.command()
@with_sweep_options
def sweep(
    ctx: typer.Context,
    config: Optional[Path] = typer.Option(None, "--config", help="a TOML file of config keys for every run; the flags override it", metavar="FILE"),
    out: Optional[Path] = typer.Option(None, "--out", help="the sweep folder: one run directory per combination, and sweep.json [default: runs/sweep-<timestamp>]", metavar="SWEEP_DIR"),
    notify: bool = typer.Option(True, "--notify/--no-notify", help="when the sweep has trained all its runs, ring the terminal bell "
                                "and send a desktop notification (OSC 9 and OSC 777; through tmux's passthrough inside tmux); "
                                "never written when stdout is not a terminal"),
    plan_only: bool = typer.Option(False, "--plan", help="write the grid to SWEEP_DIR/sweep.json and print its number of points "
                                   "and the sbatch line that trains them; trains nothing"),
    point: Optional[str] = typer.Option(None, "--point", help="train point K (from 0) of the sweep planned in --out SWEEP_DIR "
                                        "(no grid flags: the grid is read from its sweep.json), as the sweep would "
                                        "[default: $SLURM_ARRAY_TASK_ID when set, as in a Slurm job array]", metavar="K", show_default=False),
    status: bool = typer.Option(False, "--status", help="print the ranked table of the sweep in --out SWEEP_DIR, read from its run "
                                "directories (points trained on any machine that shares the folder); trains nothing"),
    **flags: Any,
) -> None:
    """Train every combination of the values given (a grid), e.g. --optimizer sgd,adam --lr 0.1,0.01; rank the runs by test accuracy.

    Each run gets a directory in SWEEP_DIR named after its values (optimizer=adam,lr=0.01). With several CUDA GPUs
    one run trains per GPU at a time; otherwise one after another. Starting the same sweep again keeps the finished runs.
    Over a cluster: --plan writes the grid, then each job trains one --point K (a Slurm array's index by default).
    """
    from resnet_tui.core.config import FIELD_BY_NAME
    from resnet_tui.core.sweep import default_sweep_dir, parse_axes, plan_sweep

    order = [k for k in ctx.params if k in FIELD_BY_NAME]  # command-line order: the first flag varies slowest
    given = {k: flags[k] for k in order if flags.get(k) is not None}
    if _uses_planned_sweep(out, given, config, plan_only, point, status):
        raise typer.Exit(_planned_sweep(out, point, status, notify))  # type: ignore[arg-type]
    values = parse_axes(given)
    file_values = read_toml(config) if config else {}
    from resnet_tui.core.operations import preset_device_type

    presets = values.get("preset", [file_values.get("preset", "lab")])
    device_type = preset_device_type(presets, values.get("device", [file_values.get("device", "auto")])[0])
    plan = plan_sweep(out or default_sweep_dir(), values, file_values, device_type)
    if plan_only:
        raise typer.Exit(print_sweep_plan(plan))
    from resnet_tui.core.sweep import check_out_dir

    check_out_dir(plan)
    if not State.no_ui:
        _open_app(mode="sweep", plan=plan, notify=notify)
        return
    raise typer.Exit(run_headless_sweep(plan, notify=notify))


def _uses_planned_sweep(out: Optional[Path], grid: dict[str, Any], config: Optional[Path], plan_only: bool,
                        point: Optional[str], status: bool) -> bool:
    """Whether the sweep comes from SWEEP_DIR/sweep.json rather than from the flags: --point and --status, and a bare
    `sweep --out SWEEP_DIR` on a planned folder (one point when $SLURM_ARRAY_TASK_ID is set, else all of them)."""
    import os

    from resnet_tui.core.sweep_points import POINT_ENV, has_plan

    asked = "--point" if point is not None else "--status" if status else None
    if asked is None:
        if plan_only or grid or config is not None or out is None:
            return False
        return POINT_ENV in os.environ or has_plan(out)
    if point is not None and status:
        raise UserError("--status: got it with --point; expected one of them (--status trains nothing)")
    if plan_only:
        raise UserError(f"--plan: got it with {asked}; expected --plan to write the grid, then {asked} on the planned folder")
    if grid or config is not None:
        got = ", ".join(["--config"] * (config is not None) + ["--" + k.replace("_", "-") for k in grid])
        raise UserError(f"{asked}: got {got} too; expected only --out SWEEP_DIR (the grid comes from its sweep.json)")
    if out is None:
        raise UserError(f"{asked}: expected --out SWEEP_DIR too (the folder that --plan wrote)")
    return True


def _planned_sweep(out: Path, point: Optional[str], status: bool, notify: bool) -> int:
    """The sweep planned in OUT/sweep.json: its ranked table (--status), one point (--point or the job array's
    index), or all its points here."""
    import os

    from resnet_tui.core import sweep_points as sp

    plan = sp.load_plan(out)
    if status:
        return _print_planned_status(plan)
    if point is not None or sp.POINT_ENV in os.environ:
        k = sp.point_index(plan, point, os.environ)
        if not State.no_ui:
            raise UserError(f"--point: got it without --no-ui; expected `resnet-tui --no-ui sweep --out {out} --point {k}` (a point trains headless)")
        return run_headless_point(plan, k, notify)
    if not State.no_ui:
        _open_app(mode="sweep", plan=plan, notify=notify)
        return 0
    return run_headless_sweep(plan, notify=notify)


def print_sweep_plan(plan: Any) -> int:
    """--plan: write sweep.json, then say how many points it holds and how to train them (on Slurm, one array job each)."""
    import shlex

    from resnet_tui.core import sweep_points as sp

    results = sp.write_plan(plan)
    n, where = len(plan.points), shlex.quote(str(plan.out))
    done = sum(sp.is_done(r) for r in results)
    print(f"{n} point{'s' if n != 1 else ''} planned in {plan.out}/sweep.json; nothing trained"
          + (f" ({done} already done there, kept)" if done else ""))
    for p, r in zip(plan.points, results):
        print(f"  {p.index:>4}  {p.name}" + (f"  ({r.status})" if r.status != "pending" else ""))
    print(f"train point K (0 to {n - 1}) on any machine that shares the folder: resnet-tui --no-ui sweep --out {where} --point K")
    print(f"on Slurm: sbatch --array={sp.array_range(plan)} JOB_SCRIPT  (it runs: resnet-tui --no-ui sweep --out {where} "
          f"--point ${sp.POINT_ENV}; see the README)")
    print(f"the ranked table, from the points finished so far: resnet-tui --no-ui sweep --out {where} --status", flush=True)
    for line in _relative_paths(plan):
        print(f"[WARNING] {line}", file=sys.stderr, flush=True)
    return 0


def _relative_paths(plan: Any) -> list[str]:
    """Data paths that a job started in another working directory would not find."""
    seen: dict[str, str] = {}
    for p in plan.points:
        for name, value in (("data", p.config.data), ("data_dir", p.config.data_dir)):
            if value and value not in ("auto", "cifar10", "sample") and not Path(value).expanduser().is_absolute():
                seen.setdefault(value, name)
    return [f"--{name.replace('_', '-')}: {value!r} is a relative path; each point resolves it from the working directory "
            "its job starts in (give an absolute path when jobs start elsewhere)" for value, name in seen.items()]


def _print_planned_status(plan: Any) -> int:
    """--status: the ranked table, each point's result read from its own run directory."""
    from collections import Counter

    from resnet_tui.core import sweep_points as sp
    from resnet_tui.report import print_sweep_table

    results = sp.point_results(plan)
    print_sweep_table(results, plan.out)
    counts = Counter(r.status for r in results)
    print(f"{len(results)} point(s): " + ", ".join(f"{c} {s}" for s, c in sorted(counts.items())), flush=True)
    return 0


def run_headless_point(plan: Any, k: int, notify: bool = False) -> int:
    """Train point k of a planned sweep as the sweep would (its run directory, its config; an interrupted point
    resumes), with a train run's headless output. A point already done is kept, as a sweep started again keeps it."""
    from resnet_tui.core import sweep_points as sp
    from resnet_tui.core.sweep import read_result
    from resnet_tui.headless import SafeStream, lab_time

    point, out = plan.points[k], SafeStream(sys.stdout)
    before = read_result(point)
    if sp.is_done(before):
        acc = f", accuracy {before.accuracy:.2%}" if before.accuracy is not None else ""
        out.write(f"[SWEEP {lab_time()}] point {k} of {plan.out}: {point.name} is already {before.status}{acc}; "
                  "kept, not trained again\n")
        out.flush()
        return 0 if before.status == "finished" else 1
    cfg, resume = sp.prepare_point(point)
    out.write(f"[SWEEP {lab_time()}] point {k} ({k + 1}/{len(plan.points)}) of {plan.out}: {point.name}"
              f"{' (resuming)' if resume else ''}\n")
    out.flush()
    return run_headless_training(cfg, point.run_dir, resume=resume, notify=notify)


def run_headless_sweep(plan: Any, notify: bool = False) -> int:
    """Run a sweep with plain log lines, then print the ranked table. Signals stop the current run(s), which save;
    SIGHUP detaches (or stops, with --on-hangup stop), and a dead terminal never stops the sweep.
    notify: one desktop notification through the terminal when the sweep ends (not one per run)."""
    from resnet_tui.core import sweep as sw
    from resnet_tui.headless import HeadlessPrinter, SafeStream, SignalStop, lab_time
    from resnet_tui.report import print_sweep_table

    total = len(plan.points)
    printers: dict[int, HeadlessPrinter] = {}
    out = SafeStream(sys.stdout)

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    def detach() -> None:
        out.lose("the terminal hung up")
        for printer in printers.values():
            printer.detach()

    def on_event(e: Any) -> None:
        if isinstance(e, sw.SweepStarted):
            where = ", ".join(e.slots) + (" (one subprocess per device; each run logs to its train.log)" if e.processes else "")
            say(f"[SWEEP {lab_time()}] {total} run(s) in {plan.out} on {where}")
            if e.skipped:
                say(f"[SWEEP {lab_time()}] kept from an earlier start: {', '.join(plan.points[i].name for i in e.skipped)}")
        elif isinstance(e, sw.RunStarted):
            say(f"[SWEEP {lab_time()}] run {e.index + 1}/{total}: {e.name} on {e.device}{' (resuming)' if e.resume else ''}")
            printers[e.index] = HeadlessPrinter()
            if out.lost:
                printers[e.index].detach(out.lost)
        elif isinstance(e, sw.RunEvent):
            printers[e.index](e.event)
        elif isinstance(e, sw.RunFinished):
            r = e.result
            printer = printers.pop(r.index, None)
            if printer is not None:
                printer.close()
            acc = f", accuracy {r.accuracy:.2%}" if r.accuracy is not None else ""
            say(f"[SWEEP {lab_time()}] run {r.index + 1}/{total} {r.name}: {r.status}{acc}" + (f" ({r.message})" if r.message and r.status != "finished" else ""))

    on_hangup = plan.points[0].config.on_hangup if plan.points else "continue"
    with SignalStop(on_hangup, what="the sweep", on_detach=detach) as signals:
        try:
            end = sw.run_sweep(plan, on_event, should_stop=signals.stop_requested)
        finally:
            for printer in printers.values():
                printer.close()
    if not out.lost:
        print_sweep_table(end.results, plan.out)
        say(f"runs and sweep.json in {plan.out}")
        if end.status != "finished":
            say("to continue: run the same sweep command again (finished runs are kept; an interrupted run resumes)")
    if notify and end.status == "finished":  # a sweep the user stopped needs no word
        from resnet_tui.notify import notify_terminal

        done = sum(r.status == "finished" for r in end.results)
        notify_terminal(out, f"sweep {plan.out} finished: {done}/{len(end.results)} runs finished")  # type: ignore[arg-type]
    if signals.exit_code is not None:
        return signals.exit_code
    if end.status != "finished":
        return 130
    return 0 if all(r.status == "finished" for r in end.results) else 1


# ---------------------------------------------------------------- runs


runs_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, help="List run directories and export their metrics (plain output, with or without --no-ui).")
app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def runs_list(
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="the folder of run directories (sweep folders in it are listed too)", metavar="DIR"),
    as_json: bool = typer.Option(False, "--json", help="print a JSON list of the runs"),
    sort: str = typer.Option("started", "--sort", help="sort by a column: started, name, status, optimizer, lr, epochs, last_loss, "
                             "train_loss, accuracy, nll, images_per_sec, or a config field (newest, most accurate, fastest first; "
                             "lowest loss first) [default: started]", metavar="COLUMN", show_default=False),
    reverse: bool = typer.Option(False, "--reverse", help="the other order of --sort"),
    filter_text: Optional[str] = typer.Option(None, "--filter", help="only the runs that match all of: words in the run's name or "
                                              "status, and expressions FIELD OP VALUE on config fields and results with = != < <= > >= "
                                              "(e.g. 'optimizer=adam lr<0.01', 'acc>0.8', 'status=crashed')", metavar="TEXT"),
) -> None:
    """List the run directories (newest first): start, status, epochs, optimizer, lr, last loss, test accuracy."""
    from resnet_tui.report import print_runs
    from resnet_tui.core.run_filter import filter_runs, parse_filter
    from resnet_tui.core.runs import default_descending, list_runs, sort_column, sort_runs

    column = sort_column(sort)
    flt = parse_filter(filter_text or "", "--filter")
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"--runs-dir: got {str(runs_dir)!r}, expected a folder")
    every_run = list_runs(runs_dir, include_sweeps=True)
    runs = sort_runs(filter_runs(every_run, flt, runs_dir), column, default_descending(column) != reverse)
    if every_run and not runs and not as_json:
        print(f"no run of the {len(every_run)} in {runs_dir} matches --filter {filter_text!r}", flush=True)
        return
    print_runs(runs, runs_dir, as_json=as_json)


@runs_app.command("export")
def runs_export(
    run_dirs: list[Path] = typer.Argument(..., help="run directories, or folders of runs (a runs folder with its sweep folders, or a sweep folder)", metavar="RUN_DIR"),
    csv_file: Optional[str] = typer.Option(None, "--csv", help="write the per-batch, per-epoch and eval metrics as CSV (- for stdout); "
                                           "of several runs (or a folder), one long CSV with a run column and config.* columns", metavar="FILE"),
    confusion_csv: Optional[str] = typer.Option(None, "--confusion-csv", help="write the confusion matrix of the run's final evaluation as CSV (- for stdout; one run only)", metavar="FILE"),
) -> None:
    """Export runs' metrics.jsonl as CSV: columns kind,epoch,batch,loss,images,time,lr,train_loss,seconds,images_per_sec,accuracy,nll
    (several runs: run first, then these, then config.<field> for every config field; a run that cannot be read is skipped with a warning)."""
    from resnet_tui.core.export import METRICS_NAME, find_runs, last_eval, long_metrics_csv, metrics_path, write_confusion_csv, write_metrics_csv, write_text

    if csv_file is None and confusion_csv is None:
        raise UserError("runs export: expected --csv FILE and/or --confusion-csv FILE")
    if csv_file is not None and csv_file == confusion_csv:
        raise UserError(f"--confusion-csv: got {confusion_csv!r}, the same file as --csv; expected another file")
    if len(run_dirs) > 1 or not (run_dirs[0] / METRICS_NAME).exists():  # several runs, or a folder of runs: one long CSV
        runs = find_runs(run_dirs)
        if confusion_csv is not None:
            raise UserError(f"--confusion-csv: got {len(runs)} runs, expected one run directory (use --csv for several)")
        text, n, written = long_metrics_csv(runs, lambda line: print(f"warning: {line}", file=sys.stderr, flush=True))
        write_text(csv_file, text, "--csv")
        if csv_file != "-":
            print(f"{n} rows of {written} run{'s' if written != 1 else ''} written to {csv_file}", file=sys.stderr, flush=True)
        return
    run_dir = run_dirs[0]
    metrics_path(run_dir)
    if confusion_csv is not None:
        ev = last_eval(run_dir)  # fails before anything is written
    if csv_file is not None:
        n = write_metrics_csv(run_dir, csv_file)
        if csv_file != "-":
            print(f"{n} rows written to {csv_file}", file=sys.stderr, flush=True)
    if confusion_csv is not None:
        write_confusion_csv(ev["classes"], ev["confusion"], confusion_csv)
        if confusion_csv != "-":
            print(f"confusion matrix (epoch {ev.get('epoch')}) written to {confusion_csv}", file=sys.stderr, flush=True)


@runs_app.command("lens")
def runs_lens(
    run_dir: Path = typer.Argument(..., help="a run directory", metavar="RUN_DIR"),
    csv_file: Optional[str] = typer.Option(None, "--csv", help="write every lens measurement as CSV, one row per step and block (- for stdout)", metavar="FILE"),
) -> None:
    """The residual lens of a run: per block, ||F(x)||/||x||, gradient norm, output mean and std at the first, middle and last measured steps."""
    from resnet_tui.core.export import read_records, to_csv, write_text
    from resnet_tui.core.lens_series import CSV_COLUMNS, LensSeries, no_lens_line
    from resnet_tui.report import print_lens

    series = LensSeries.of(read_records(run_dir))
    if not series:
        raise UserError(no_lens_line(run_dir))
    if csv_file != "-":
        print_lens(series, run_dir)
    if csv_file is not None:
        rows = series.csv_rows()
        write_text(csv_file, to_csv(CSV_COLUMNS, rows), "--csv")
        if csv_file != "-":
            print(f"{len(rows)} rows written to {csv_file}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- app


def _open_app(**kwargs: Any) -> None:
    from resnet_tui.app import run_app

    run_app(**kwargs)


def main(argv: list[str] | None = None) -> int:
    """Entry point. User errors print one line and exit 2; no tracebacks."""
    State.argv = list(sys.argv[1:] if argv is None else argv)
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
        if not getattr(e, "quiet", False):
            print(f"error: {e}", file=sys.stderr, flush=True)
        return e.exit_code
    except KeyboardInterrupt:
        print("aborted", file=sys.stderr)
        return 130
    return 0


def run() -> None:
    sys.exit(main())

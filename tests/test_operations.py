"""core.operations: what `resnet-tui evaluate` and the app's Evaluate screen both do. Resolving each kind of
source and its one-line errors, choosing the best epoch, evaluating, and the preset's device type, on a real
tiny run (the `tiny_run` fixture: 2 epochs, 40 test images) and the real CIFAR-10 test images."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_tui.core.checkpoint import PRETRAINED_URL
from resnet_tui.core.data import load_split
from resnet_tui.core.errors import UserError
from resnet_tui.core.evaluate import evaluate_checkpoint
from resnet_tui.core.operations import (
    EvalSource, best_candidates, best_checkpoint, choose_from_metrics, evaluate_source, preset_device_type, resolve_source,
    run_dir_of,
)

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


@pytest.fixture(scope="module")
def run(tiny_run) -> Path:
    run_dir, proc, _ = tiny_run
    assert proc.returncode == 0, proc.stderr
    return run_dir


@pytest.fixture(scope="module")
def test_split(cifar_dir):
    return load_split(str(cifar_dir), "test", limit=40)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def train_losses(run_dir: Path) -> dict[int, float]:
    return {e["epoch"]: e["train_loss"] for e in records(run_dir) if e["event"] == "epoch"}


def never_load():
    raise AssertionError("the data was loaded before the bad input was refused")


# ---------------------------------------------------------------- resolving a source


def test_a_file_or_a_url_is_evaluated_as_given_and_pretrained_is_the_labs(run: Path) -> None:
    checkpoint = str(run / "checkpoints" / "cifar10_model_epoch_0.pth")
    assert resolve_source(checkpoint) == EvalSource(checkpoint)
    assert resolve_source("https://example.org/m.pth") == EvalSource("https://example.org/m.pth")
    assert resolve_source("missing.pth") == EvalSource("missing.pth")  # refused when read (test_cli), before any data
    assert resolve_source(None, pretrained=True) == EvalSource(PRETRAINED_URL)


def test_a_run_directory_is_its_last_epoch_checkpoint(run: Path) -> None:
    assert resolve_source(str(run)) == EvalSource(str(run / "checkpoints" / "cifar10_model_epoch_1.pth"))


def test_best_is_the_run_directory_and_the_loss_named_either_way(run: Path) -> None:
    assert resolve_source(str(run), best=True) == EvalSource(str(run), "train_loss")
    for by in ("eval_loss", "eval-loss", " Eval_Loss "):
        assert resolve_source(str(run), best=True, by=by) == EvalSource(str(run), "eval_loss")


def test_run_dir_of_a_folder_an_epoch_checkpoint_and_anything_else(run: Path, tmp_path: Path) -> None:
    assert run_dir_of(str(run)) == run
    assert run_dir_of(str(run / "checkpoints" / "cifar10_model_epoch_0.pth")) == run
    stray = tmp_path / "checkpoints" / "m.pth"  # a checkpoints/ folder that is not in a run
    stray.parent.mkdir()
    stray.write_bytes(b"")
    assert run_dir_of(str(stray)) is None
    assert run_dir_of(PRETRAINED_URL) is None


RESOLVE_ERRORS = {
    "pretrained and a checkpoint": (dict(checkpoint="m.pth", pretrained=True), "CHECKPOINT: got 'm.pth' and --pretrained, expected one of them"),
    "nothing": (dict(checkpoint=None), "CHECKPOINT: missing, expected a .pth file, an http(s) URL, a run directory, or --pretrained"),
    "unknown --by": (dict(checkpoint="RUN", best=True, by="val_acc"), "--by: got 'val_acc', expected one of train_loss, eval_loss"),
    "--by without --best": (dict(checkpoint="RUN", by="eval_loss"), "--by: got 'eval_loss' without --best, expected it only with --best"),
    "--best with --pretrained": (dict(checkpoint=None, pretrained=True, best=True),
                                 "--best: got --pretrained, expected a run directory as CHECKPOINT (--best chooses among a run's epoch checkpoints)"),
    "--best without a run": (dict(checkpoint=None, best=True),
                             "--best: CHECKPOINT is missing, expected a run directory (--best chooses among its epoch checkpoints)"),
    "--best of a file": (dict(checkpoint="FILE", best=True),
                         "--best: got 'FILE' as CHECKPOINT, expected a run directory (--best chooses among its epoch checkpoints)"),
}


@pytest.mark.parametrize("case", list(RESOLVE_ERRORS))
def test_resolve_errors_are_the_clis_lines(case: str, run: Path) -> None:
    kwargs, message = RESOLVE_ERRORS[case]
    checkpoint = {"RUN": str(run), "FILE": str(run / "checkpoints" / "cifar10_model_epoch_0.pth")}.get(kwargs["checkpoint"], kwargs["checkpoint"])
    message = message.replace("'FILE'", repr(checkpoint))
    with pytest.raises(UserError) as e:
        resolve_source(**{**kwargs, "checkpoint": checkpoint})
    assert str(e.value) == message


def test_a_folder_without_checkpoints_is_named_as_the_caller_calls_it(tmp_path: Path) -> None:
    with pytest.raises(UserError) as e:
        resolve_source(str(tmp_path))
    assert str(e.value) == f"CHECKPOINT: got {str(tmp_path)!r}, a folder without checkpoints/cifar10_model_epoch_N.pth"
    with pytest.raises(UserError) as e:
        resolve_source(str(tmp_path), what="checkpoint")  # the app's Evaluate screen
    assert str(e.value) == f"checkpoint: got {str(tmp_path)!r}, a folder without checkpoints/cifar10_model_epoch_N.pth"


# ---------------------------------------------------------------- choosing the best epoch


def test_best_by_train_loss_is_the_lowest_epoch_record(run: Path) -> None:
    losses = train_losses(run)
    want = min(losses, key=lambda e: (losses[e], e))
    best = best_checkpoint(run, "train_loss")
    assert best is not None
    assert (best.epoch, best.value, best.losses, best.by) == (want, losses[want], losses, "train_loss")
    assert best.path == run / "checkpoints" / f"cifar10_model_epoch_{want - 1}.pth" and not best.optimistic
    assert best.to_json() == {"epoch": want, "checkpoint": str(best.path), "by": "train_loss", "value": losses[want],
                              "losses": {str(e): v for e, v in losses.items()}}
    assert choose_from_metrics(EvalSource(str(run), "train_loss")) == EvalSource(str(best.path))


def copy_run(run: Path, dest: Path, epochs: dict[int, float] | None, checkpoints: bool = True) -> Path:
    """The tiny run's metrics (with other epoch records when `epochs` is given) and maybe its checkpoints."""
    dest.mkdir()
    kept = [e for e in records(run) if epochs is None or e["event"] != "epoch"]
    kept += [{"event": "epoch", "epoch": e, "train_loss": v} for e, v in (epochs or {}).items()]
    (dest / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    if checkpoints:
        shutil.copytree(run / "checkpoints", dest / "checkpoints")
    return dest


def test_a_non_finite_training_loss_is_never_chosen_and_ties_go_to_the_earlier_epoch(run: Path, tmp_path: Path) -> None:
    nan_first = copy_run(run, tmp_path / "nan", {1: math.nan, 2: 2.5})
    best = best_checkpoint(nan_first, "train_loss")
    assert best is not None and best.epoch == 2 and best.losses == {2: 2.5}
    tied = copy_run(run, tmp_path / "tied", {1: 2.0, 2: 2.0})
    best = best_checkpoint(tied, "train_loss")
    assert best is not None and best.epoch == 1


def test_best_errors_name_the_run_and_what_is_missing(run: Path, tmp_path: Path) -> None:
    cases = {
        tmp_path / "not-a-run": "expected a run directory with metrics.jsonl",
        copy_run(run, tmp_path / "no-epochs", {}): "has no epoch records in metrics.jsonl (no epoch finished)",
        copy_run(run, tmp_path / "no-checkpoints", None, checkpoints=False):
            "has epoch records but none with a finite train_loss and its checkpoint in checkpoints/ (epochs recorded: 1, 2)",
    }
    (tmp_path / "not-a-run").mkdir()
    for folder, message in cases.items():
        with pytest.raises(UserError) as e:
            best_candidates(folder, "train_loss")
        assert str(e.value).startswith("--best: ") and repr(str(folder)) in str(e.value) and message in str(e.value)
        with pytest.raises(UserError):  # the app opens only on a run it can choose in
            choose_from_metrics(EvalSource(str(folder), "eval_loss"))
        with pytest.raises(UserError):  # refused before the data is loaded
            evaluate_source(EvalSource(str(folder), "eval_loss"), never_load, "cpu")


def test_choosing_by_train_loss_imports_no_torch(run: Path) -> None:
    """The CLI chooses before opening the app, and the engine's runs module no longer imports evaluation."""
    code = ("import sys; import resnet_tui.core.runs; assert 'resnet_tui.core.evaluate' not in sys.modules; "
            "from resnet_tui.core.operations import choose_from_metrics, preset_device_type, resolve_source; "
            f"print(choose_from_metrics(resolve_source({str(run)!r}, best=True)).checkpoint); "
            "assert preset_device_type(['lab'], 'cuda:7') == 'cpu'; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(best_checkpoint(run, "train_loss").path)


# ---------------------------------------------------------------- evaluating


def test_evaluating_a_run_directory_evaluates_its_last_checkpoint(run: Path, test_split) -> None:
    last = run / "checkpoints" / "cifar10_model_epoch_1.pth"
    seen: list[tuple[int, int]] = []
    done = evaluate_source(resolve_source(str(run)), lambda: test_split, "cpu", on_progress=lambda n, total: seen.append((n, total)))
    expected = evaluate_checkpoint(str(last), test_split, CPU)
    assert done is not None and done.best is None and done.checkpoint == str(last) and done.split is test_split
    assert (done.result.n, done.result.nll, done.result.confusion) == (40, expected.nll, expected.confusion)
    assert seen[-1] == (40, 40)  # images


def test_evaluating_the_best_by_train_loss(run: Path, test_split) -> None:
    best = best_checkpoint(run, "train_loss")
    done = evaluate_source(EvalSource(str(run), "train_loss"), lambda: test_split, "cpu")
    assert done is not None and done.best == best and done.checkpoint == str(best.path)
    assert done.result.nll == evaluate_checkpoint(str(best.path), test_split, CPU).nll


def test_evaluating_the_best_by_eval_loss_evaluates_every_epoch(run: Path, test_split) -> None:
    nll = {e: evaluate_checkpoint(str(run / "checkpoints" / f"cifar10_model_epoch_{e - 1}.pth"), test_split, CPU).nll for e in (1, 2)}
    seen: list[tuple[int, int]] = []
    done = evaluate_source(EvalSource(str(run), "eval_loss"), lambda: test_split, "cpu", on_progress=lambda n, total: seen.append((n, total)))
    assert done is not None and done.best is not None and done.best.optimistic
    want = min(nll, key=lambda e: (nll[e], e))
    assert done.best.epoch == want and done.best.losses == pytest.approx(nll, rel=1e-12)
    assert done.result.nll == done.best.value == min(nll.values()) and done.checkpoint == str(done.best.path)
    assert seen == [(1, 2), (2, 2)]  # checkpoints


@pytest.mark.parametrize("best_by", [None, "eval_loss"])
def test_a_stop_request_ends_it_with_none(best_by, run: Path, test_split) -> None:
    source = EvalSource(str(run), best_by) if best_by else resolve_source(str(run))
    assert evaluate_source(source, lambda: test_split, "cpu", should_stop=lambda: True) is None


def test_a_bad_checkpoint_is_refused_before_the_data_is_loaded(tmp_path: Path) -> None:
    bad = tmp_path / "notes.pth"
    bad.write_text("lab notes, not weights\n")
    with pytest.raises(UserError, match="is not a PyTorch checkpoint|is not a readable PyTorch checkpoint"):
        evaluate_source(resolve_source(str(bad)), never_load, "cpu")
    with pytest.raises(UserError, match="no such file"):
        evaluate_source(resolve_source(str(tmp_path / "missing.pth")), never_load, "cpu")


@NO_CUDA
def test_an_unavailable_device_is_refused_before_anything_is_read(run: Path) -> None:
    with pytest.raises(UserError) as e:
        evaluate_source(EvalSource(str(run), "eval_loss"), never_load, "cuda:3")
    assert str(e.value) == "--device: got 'cuda:3', but CUDA is not available here; use auto or cpu"


# ---------------------------------------------------------------- presets


def test_the_fast_preset_is_chosen_for_the_device_and_the_lab_preset_for_none() -> None:
    from resnet_tui.core.device import resolve_device

    assert preset_device_type(["lab"], "auto") == "cpu"
    assert preset_device_type(["fast"], "cpu") == "cpu"
    assert preset_device_type(["lab", "fast"], "auto") == resolve_device("auto").type


@NO_CUDA
def test_the_fast_preset_on_an_unavailable_device_is_a_one_line_error() -> None:
    with pytest.raises(UserError) as e:
        preset_device_type(["fast"], "cuda:1")
    assert str(e.value) == "--device: got 'cuda:1', but CUDA is not available here; use auto or cpu"

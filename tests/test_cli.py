"""The headless CLI's contract for bad input (exit 2, one line naming field, value and what is allowed, no traceback),
config files, and a light `--help`. Every case runs `python -m resnet_tui` in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys

from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def assert_one_line_error(proc: subprocess.CompletedProcess, *needles: str) -> str:
    assert proc.returncode == 2, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert len(err.splitlines()) == 1, f"expected one line on stderr, got:\n{proc.stderr}"
    assert err.startswith("error: ")
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


# (args, substrings the one-line message must contain: the field, the value, what is allowed)
FLAG_CASES = {
    "epochs < 1": (["train", "--epochs", "0"], ["--epochs", "'0'", "an integer >= 1"]),
    "batch size < 1": (["train", "--batch-size", "-4"], ["--batch-size", "'-4'", "an integer >= 1"]),
    "lr = 0": (["train", "--lr", "0"], ["--lr", "'0'", "a number > 0"]),
    "lr < 0": (["train", "--lr", "-0.1"], ["--lr", "'-0.1'", "a number > 0"]),
    "lr not a number": (["train", "--lr", "fast"], ["--lr", "'fast'", "a number > 0"]),
    "lr not finite": (["train", "--lr", "nan"], ["--lr", "'nan'", "a number > 0"]),
    "unknown optimizer": (["train", "--optimizer", "adagrad"], ["--optimizer", "'adagrad'", "one of sgd, adam, adamw, rmsprop"]),
    "two layers": (["train", "--layers", "2,2"], ["--layers", "'2,2'", "three integers"]),
    "layers not numbers": (["train", "--layers", "a,b,c"], ["--layers", "'a,b,c'", "like 2,2,2"]),
    "layers zero": (["train", "--layers", "0,2,2"], ["--layers", "'0,2,2'", "from 1 to 64"]),
    "layers too deep": (["train", "--layers", "65,1,1"], ["--layers", "'65,1,1'", "from 1 to 64"]),
    "momentum >= 1": (["train", "--momentum", "1"], ["--momentum", "'1'", "[0, 1)"]),
    "limit-train 0": (["train", "--limit-train", "0"], ["--limit-train", "'0'", "an integer >= 1"]),
    "unknown flag": (["train", "--epoch", "3"], ["--epoch", "--epochs"]),
    "unknown command": (["trian"], ["trian"]),
    "info layers": (["info", "--layers", "2;2;2"], ["--layers", "'2;2;2'"]),
    "evaluate without checkpoint": (["evaluate"], ["CHECKPOINT", "missing", ".pth"]),
    "lens-every negative": (["train", "--lens-every", "-1"], ["--lens-every", "'-1'", "auto", "0 (off)"]),
    "lens-every a word": (["train", "--lens-every", "often"], ["--lens-every", "'often'", "an integer >= 1"]),
    "runs lens of no run": (["runs", "lens", "no-such-run"], ["RUN_DIR", "'no-such-run'", "metrics.jsonl"]),
}


@pytest.mark.parametrize("case", list(FLAG_CASES))
def test_bad_flag_is_one_line_and_exit_2(case, cli, tmp_path):
    args, needles = FLAG_CASES[case]
    extra = ["--run-dir", str(tmp_path / "run")] if args[0] == "train" else []
    proc = cli("--no-ui", *args, *extra, timeout=60)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_data_path_that_does_not_exist(cli, tmp_path):
    missing = tmp_path / "no-such-data"
    proc = cli("--no-ui", "train", "--data", str(missing), "--run-dir", str(tmp_path / "run"), "--device", "cpu")
    assert_one_line_error(proc, "--data", repr(str(missing)), "does not exist")


def test_data_path_without_train_and_test(cli, tmp_path):
    (tmp_path / "flat" / "cat").mkdir(parents=True)
    proc = cli("--no-ui", "train", "--data", str(tmp_path / "flat"), "--run-dir", str(tmp_path / "run"), "--device", "cpu")
    assert_one_line_error(proc, "--data", repr(str(tmp_path / "flat")), "train/ and test/")


def test_data_with_mismatched_classes(cli, cifar_dir, tmp_path):
    import shutil

    for split, cls in (("train", "cat"), ("train", "dog"), ("test", "cat"), ("test", "frog")):
        (tmp_path / "d" / split / cls).mkdir(parents=True)
        shutil.copy2(next((cifar_dir / split / cls).iterdir()), tmp_path / "d" / split / cls / "1.jpg")
    proc = cli("--no-ui", "train", "--data", str(tmp_path / "d"), "--run-dir", str(tmp_path / "run"), "--device", "cpu")
    assert_one_line_error(proc, "--data", "different classes", "only in train: dog", "only in test: frog")


def test_checkpoint_that_does_not_exist(cli, tmp_path):
    proc = cli("--no-ui", "evaluate", str(tmp_path / "nope.pth"), "--device", "cpu")
    assert_one_line_error(proc, "checkpoint", repr(str(tmp_path / "nope.pth")), "no such file")


def test_file_that_is_not_a_checkpoint(cli, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are my lab notes, not weights\n")
    proc = cli("--no-ui", "evaluate", str(notes), "--device", "cpu")
    assert_one_line_error(proc, "checkpoint", repr(str(notes)), "not a")
    # a valid torch file that holds no state_dict
    other = tmp_path / "list.pth"
    torch.save([1, 2, 3], other)
    proc = cli("--no-ui", "evaluate", str(other), "--device", "cpu")
    assert_one_line_error(proc, "checkpoint", repr(str(other)), "expected a state_dict of tensors")


def test_checkpoint_for_other_layers_says_which(cli, tmp_path, cifar_dir):
    from resnet_tui.core.model import ResNet

    path = tmp_path / "small.pth"
    torch.save(ResNet((1, 1, 1)).state_dict(), path)
    proc = cli("--no-ui", "evaluate", str(path), "--layers", "2,2,2", "--data", str(cifar_dir), "--limit-eval", "10", "--device", "cpu")
    assert_one_line_error(proc, repr(str(path)), "saved for layers 1,1,1, not 2,2,2", "missing keys")
    # a 100-class head: the shapes that differ are named
    state = ResNet((1, 1, 1)).state_dict()
    state["fc.weight"], state["fc.bias"] = torch.zeros(100, 1024), torch.zeros(100)
    torch.save(state, path)
    proc = cli("--no-ui", "evaluate", str(path), "--data", str(cifar_dir), "--limit-eval", "10", "--device", "cpu")
    assert_one_line_error(proc, "shapes differ", "fc.weight (100, 1024) vs (10, 1024)")


def test_resume_of_something_that_is_not_a_run(cli, tmp_path):
    proc = cli("--no-ui", "train", "--resume", str(tmp_path / "nothing"))
    assert_one_line_error(proc, "--resume", repr(str(tmp_path / "nothing")), "run directory")


# ---------------------------------------------------------------- config files


@pytest.mark.parametrize(
    "toml, needles",
    [
        ("epoch = 3\n", ["unknown key 'epoch'", "did you mean 'epochs'?"]),
        ("batchsize = 32\n", ["unknown key 'batchsize'", "did you mean 'batch_size'?"]),
        ('epochs = "three"\n', ["epochs", "'three'", "an integer >= 1"]),
        ("epochs = 2.5\n", ["epochs", "2.5", "an integer >= 1"]),
        ("lr = true\n", ["lr", "True", "a number > 0"]),
        ("layers = [2, 2]\n", ["layers", "[2, 2]", "three integers"]),
        ('optimizer = "lbfgs"\n', ["optimizer", "'lbfgs'", "one of sgd, adam"]),
        ("lr = 1" + "0" * 400 + "\n", ["lr", "a number > 0"]),
        ("epochs = [\n", ["not valid TOML"]),
    ],
)
def test_bad_config_file(toml, needles, cli, tmp_path):
    cfg = tmp_path / "lab.toml"
    cfg.write_text(toml)
    proc = cli("--no-ui", "train", "--config", str(cfg), "--run-dir", str(tmp_path / "run"))
    assert_one_line_error(proc, str(cfg), *needles)


def test_missing_config_file(cli, tmp_path):
    proc = cli("--no-ui", "train", "--config", str(tmp_path / "none.toml"))
    assert_one_line_error(proc, "--config", repr(str(tmp_path / "none.toml")), "existing TOML file")


def test_flags_override_the_config_file(tiny_run):
    """tiny_run's file says batch_size 64 and lr 0.5; its flags say 16 and 0.01; the rest comes from the file."""
    from resnet_tui.core.config import read_toml

    run_dir, proc, expected = tiny_run
    assert proc.returncode == 0, proc.stderr
    resolved = read_toml(run_dir / "config.toml")  # the run's config.toml is itself a valid config file
    for key in ("epochs", "batch_size", "lr", "seed", "momentum", "optimizer", "limit_train", "limit_eval"):
        assert resolved[key] == expected[key], key
    assert list(resolved["layers"]) == expected["layers"]


# ---------------------------------------------------------------- light --help


HEAVY = ("torch", "torchvision", "textual", "numpy", "sklearn")


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["evaluate", "--help"]])
def test_help_imports_neither_torch_nor_textual(argv):
    code = (
        "import sys, json\n"
        "from resnet_tui.cli import main\n"
        f"rc = main({argv!r})\n"
        f"heavy = sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))\n"
        "print('RESULT', rc, json.dumps(heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    _, rc, heavy = line.split(" ", 2)
    assert rc == "0"
    assert json.loads(heavy) == [], f"`resnet-tui {' '.join(argv)}` imported {heavy}"
    assert "Usage:" in proc.stdout


def test_python_m_resnet_tui_help(cli):
    proc = cli("--help", timeout=60)
    assert proc.returncode == 0, proc.stderr
    for word in ("Usage:", "--no-ui", "train", "evaluate", "info"):
        assert word in proc.stdout
    proc = cli("--no-ui", "train", "--help", timeout=60)
    assert proc.returncode == 0
    for flag in ("--epochs", "--batch-size", "--lr", "--optimizer", "--layers", "--config", "--resume", "--run-dir"):
        assert flag in proc.stdout


def test_engine_modules_import_neither_textual_nor_rich():
    code = (
        "import sys, json, importlib, pkgutil\n"
        "import resnet_tui.core as core\n"
        "names = [m.name for m in pkgutil.iter_modules(core.__path__)]\n"
        "assert len(names) >= 12, names\n"
        "for m in names:\n"
        "    importlib.import_module('resnet_tui.core.' + m)\n"
        "ui = sorted({m.split('.')[0] for m in sys.modules} & {'textual', 'rich', 'typer', 'textual_plotext', 'plotext'})\n"
        "print('RESULT', json.dumps(ui))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    ui = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert ui == [], f"the engine imported UI libraries: {ui}"


def test_data_auto_offline_trains_on_the_sample_with_a_visible_notice(tmp_path):
    """Offline (urlopen fails, as it does without a network), --data auto falls back to the bundled sample and says so."""
    code = (
        "import sys, urllib.error, urllib.request\n"
        "def offline(req, *a, **k):\n"
        "    print('ASKED', getattr(req, 'full_url', req), file=sys.stderr)\n"
        "    raise urllib.error.URLError('no network (test)')\n"
        "urllib.request.urlopen = offline\n"
        "from resnet_tui.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    run_dir = tmp_path / "run"
    args = ["--no-ui", "train", "--data", "auto", "--data-dir", str(tmp_path / "empty"), "--limit-train", "40", "--limit-eval", "20",
            "--layers", "1,1,1", "--batch-size", "20", "--epochs", "1", "--device", "cpu", "--run-dir", str(run_dir)]
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ASKED https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in proc.stderr  # the download was tried
    notice = [ln for ln in proc.stdout.splitlines() if ln.startswith("[WARNING] using the bundled CIFAR-10 sample")]
    assert notice and "because CIFAR-10 is neither on disk nor downloadable" in notice[0]
    assert "data: 40 training and 20 test images" in proc.stdout
    events = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any(e["event"] == "notice" and "bundled CIFAR-10 sample" in e["text"] for e in events)
    assert events[-1]["status"] == "finished"

"""Hostile files and inputs get one line (exit 2), never a traceback: checkpoints and resume states that lie about
their contents, image folders with more classes, symlink loops or unreadable folders, seeds numpy refuses, config
files without end, and --resume with flags it would ignore. Real files in tmp_path; real CLI processes for the CLI's
refusals (exit 2); folders the CLI trains on and evaluates (11 classes, symlink loops) through cli.main in this process."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from resnet_tui.core import checkpoint, data, evaluate
from resnet_tui.core import model as model_mod
from resnet_tui.core import train as train_mod
from resnet_tui.core.config import TrainConfig, parse_field, read_toml
from resnet_tui.core.errors import UserError
from resnet_tui.core.model import ResNet

from cli_helpers import FOLDER_CLASSES as CLASSES, assert_one_line_error, make_folder, run_in_process

def add_class(root: Path, src: Path, name: str, like: str = "cat", n_train: int = 4, n_test: int = 2) -> None:
    """An extra class folder made of real images of another class (from the far end of the set, so not duplicates)."""
    for split, n in (("train", n_train), ("test", n_test)):
        (root / split / name).mkdir(parents=True)
        for f in sorted((src / split / like).iterdir())[-n:]:
            shutil.copy2(f, root / split / name / f.name)


# ---------------------------------------------------------------- checkpoints


def tiny_state() -> dict[str, torch.Tensor]:
    return ResNet((1, 1, 1)).state_dict()


def test_a_key_for_a_million_blocks_is_refused_before_any_model_is_built(tmp_path, cifar_dir, monkeypatch):
    state = {"layer1.1000000.conv1.weight": torch.zeros(1), "layer2.0.conv1.weight": torch.zeros(1),
             "layer3.0.conv1.weight": torch.zeros(1)}
    path = tmp_path / "tiny.pth"
    torch.save(state, path)
    assert path.stat().st_size < 4096
    built: list[tuple[int, ...]] = []
    real_init = model_mod.ResNet.__init__

    def guarded_init(self, layers=(2, 2, 2), *args, **kwargs):
        built.append(tuple(layers))
        assert max(layers) <= 64, f"a ResNet with layers {tuple(layers)} was built from a checkpoint's keys"
        real_init(self, layers, *args, **kwargs)

    monkeypatch.setattr(model_mod.ResNet, "__init__", guarded_init)
    split = data.load_image_folder(cifar_dir, "test", limit=10)
    with pytest.raises(UserError) as e:
        evaluate.evaluate_checkpoint(str(path), split, torch.device("cpu"))
    msg = str(e.value)
    assert "\n" not in msg and repr(str(path)) in msg and "64" in msg
    assert all(max(layers) <= 64 for layers in built)


def test_a_key_for_65_blocks_is_one_line_via_the_cli(tmp_path, cifar_dir, cli):
    state = tiny_state()
    state["layer1.64.conv1.weight"] = torch.zeros(16, 16, 3, 3)
    path = tmp_path / "deep.pth"
    torch.save(state, path)
    proc = cli("--no-ui", "evaluate", str(path), "--data", str(cifar_dir), "--limit-eval", "10", "--device", "cpu")
    assert_one_line_error(proc, repr(str(path)), "layer1.64", "from 1 to 64")


@pytest.mark.parametrize("kind", ["meta", "sparse"])
def test_checkpoints_with_meta_or_sparse_tensors_are_one_line(kind, tmp_path, cifar_dir, cli):
    state = tiny_state()
    w = state["fc.weight"]
    state["fc.weight"] = torch.empty(w.shape, device="meta") if kind == "meta" else w.to_sparse()
    path = tmp_path / f"{kind}.pth"
    torch.save(state, path)
    proc = cli("--no-ui", "evaluate", str(path), "--data", str(cifar_dir), "--limit-eval", "10", "--device", "cpu")
    assert_one_line_error(proc, repr(str(path)), "'fc.weight'", kind)


@pytest.mark.parametrize("dtype", [torch.int64, torch.complex64, torch.bool])
def test_checkpoint_weights_of_a_non_float_dtype_are_refused(dtype, tmp_path):
    state = tiny_state()
    state["conv.weight"] = torch.ones(state["conv.weight"].shape, dtype=dtype)
    path = tmp_path / "ints.pth"
    torch.save(state, path)
    with pytest.raises(UserError) as e:
        checkpoint.load_into(ResNet((1, 1, 1)), checkpoint.read_state_dict(path), str(path), (1, 1, 1))
    assert "\n" not in str(e.value) and "conv.weight" in str(e.value) and "float" in str(e.value)


# ---------------------------------------------------------------- resume.pt


@pytest.fixture(scope="module")
def finished_run(cifar_dir, tmp_path_factory) -> Path:
    """A finished 1-epoch SGD run (2 batches), with its resume.pt, trained by the engine (the CLI's --resume is under test)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    cfg = TrainConfig(data=str(cifar_dir), limit_train=32, limit_eval=20, layers=(1, 1, 1), batch_size=16, device="cpu")
    assert train_mod.train(cfg, run_dir, lambda e: None).status == "finished"
    return run_dir


def tampered_copy(run_dir: Path, dest: Path, change) -> Path:
    shutil.copytree(run_dir, dest)
    state = torch.load(dest / "resume.pt", weights_only=True)
    state = change(state)
    torch.save(state, dest / "resume.pt")
    return dest


def snapshot(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder and its bytes (a run lock is coordination between processes, not the run's data)."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file() and p.name != "lock"}


def adam_state_dict() -> dict:
    """Adam's optimizer state for the same network (as an Adam run would save it)."""
    model = ResNet((1, 1, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    model(torch.zeros(2, 3, 32, 32)).sum().backward()
    opt.step()
    return opt.state_dict()


RESUME_CLI_CASES = {
    "an epoch checkpoint copied over it": (lambda s: s["model"], ["state_dict", "epoch checkpoint"]),
    "Adam state in an SGD run": (lambda s: {**s, "optimizer": adam_state_dict()}, ["optimizer", "SGD", "momentum"]),
    "a bad RNG state": (lambda s: {**s, "rng_cpu": torch.zeros(5056, dtype=torch.uint8)}, ["rng_cpu"]),
    "an RNG state of the wrong size": (lambda s: {**s, "rng_cpu": torch.zeros(7, dtype=torch.uint8)}, ["rng_cpu"]),
}


@pytest.mark.parametrize("case", list(RESUME_CLI_CASES))
def test_a_hostile_resume_state_is_one_line_and_nothing_is_written(case, finished_run, tmp_path, cli, metrics_of):
    change, needles = RESUME_CLI_CASES[case]
    run_dir = tampered_copy(finished_run, tmp_path / "run", change)
    before = snapshot(run_dir)
    proc = cli("--no-ui", "train", "--resume", str(run_dir), "--epochs", "2")
    assert_one_line_error(proc, "--resume", "resume.pt", *needles)
    assert snapshot(run_dir) == before, "a refused resume wrote to the run folder"
    assert [e["event"] for e in metrics_of(run_dir / "metrics.jsonl")].count("start") == 1


RESUME_FIELD_CASES = {
    "epoch0 text": ("epoch0", "one"),
    "batch0 none": ("batch0", None),
    "batch0 negative": ("batch0", -1),
    "images text": ("images", "many"),
    "train_seconds text": ("train_seconds", "x"),
    "partial_losses a number": ("partial_losses", 3),
    "partial_losses of text": ("partial_losses", ["a"]),
    "model missing": ("model", "(deleted)"),
    "scheduler of text": ("scheduler", "constant"),
}


@pytest.mark.parametrize("case", list(RESUME_FIELD_CASES))
def test_resume_fields_of_the_wrong_type_are_refused_before_any_write(case, finished_run, cifar_dir, tmp_path):
    key, value = RESUME_FIELD_CASES[case]

    def change(state):
        if value == "(deleted)":
            del state[key]
        else:
            state[key] = value
        return state

    run_dir = tampered_copy(finished_run, tmp_path / "run", change)
    cfg = TrainConfig(**read_toml(run_dir / "config.toml")).replace(epochs=2)
    splits = data.load_data(str(cifar_dir), None, limit_train=32, limit_eval=20)
    before = snapshot(run_dir)
    with pytest.raises(UserError) as e:
        train_mod.train(cfg, run_dir, lambda e: None, resume=True, splits=splits)
    msg = str(e.value)
    assert "\n" not in msg and "resume.pt" in msg and key in msg, msg
    assert snapshot(run_dir) == before


def test_a_resume_state_with_a_corrupt_optimizer_tensor_is_refused(cifar_dir, tmp_path, cli):
    """SGD with momentum keeps one momentum buffer per parameter, shaped like it: a wrong shape is named."""
    momentum_run = tmp_path / "momentum"  # trained by the engine, as finished_run (the CLI's --resume is under test)
    cfg = TrainConfig(data=str(cifar_dir), limit_train=32, limit_eval=20, layers=(1, 1, 1), batch_size=16, device="cpu", momentum=0.9)
    assert train_mod.train(cfg, momentum_run, lambda e: None).status == "finished"

    def change(state):
        state["optimizer"]["state"][0]["momentum_buffer"] = torch.zeros(3)
        return state

    run_dir = tampered_copy(momentum_run, tmp_path / "run", change)
    before = snapshot(run_dir)
    proc = cli("--no-ui", "train", "--resume", str(run_dir), "--epochs", "2")
    assert_one_line_error(proc, "--resume", "momentum_buffer")
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw", "rmsprop"])
def test_a_genuine_mid_epoch_state_of_every_optimizer_passes_the_loader(optimizer, tmp_path):
    """The checks refuse what this run would not save, and nothing it would: momentum, weight-decay groups, a schedule."""
    cfg = TrainConfig(optimizer=optimizer, weight_decay=5e-4, momentum=0.0 if optimizer.startswith("adam") else 0.9,
                      layers=(1, 1, 1), schedule="warmup-linear", warmup_epochs=0.5, epochs=2)

    def fresh():
        model = ResNet((1, 1, 1))
        opt = train_mod.build_optimizer(cfg, model)
        return model, opt, torch.optim.lr_scheduler.LambdaLR(opt, train_mod.lr_factor(cfg, 4))

    model, opt, sched = fresh()
    model(torch.randn(4, 3, 32, 32)).sum().backward()
    opt.step()
    sched.step()
    state = {"version": train_mod.RESUME_VERSION, "model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}, "rng_cpu": torch.get_rng_state(),
             "epoch0": 0, "batch0": 1, "images": 4, "train_seconds": 0.5, "partial_losses": [2.3], "config": cfg.to_dict()}
    torch.save(state, tmp_path / "resume.pt")
    model2, opt2, sched2 = fresh()
    loaded = checkpoint.read_resume_state(tmp_path / "resume.pt", model2, opt2, sched2, 4, torch.device("cpu"), train_mod.RESUME_VERSION)
    assert (loaded.epoch0, loaded.batch0, loaded.images, loaded.partial_losses) == (0, 1, 4, [2.3])
    opt2.load_state_dict(loaded.optimizer)
    assert opt2.state_dict()["param_groups"] == opt.state_dict()["param_groups"]


# ---------------------------------------------------------------- image folders


def test_an_eleven_class_folder_trains_and_evaluates(cifar_dir, tmp_path, capsys, metrics_of):
    root = make_folder(cifar_dir, tmp_path / "eleven")
    add_class(root, cifar_dir, "zebra")
    run_dir = tmp_path / "run"
    flags = ["--data", str(root), "--layers", "1,1,1", "--batch-size", "16", "--device", "cpu"]
    proc = run_in_process(capsys, "--no-ui", "train", *flags, "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    evals = [e for e in metrics_of(run_dir / "metrics.jsonl") if e["event"] == "eval"]
    assert len(evals[-1]["classes"]) == 11 and evals[-1]["classes"][-1] == "zebra" and evals[-1]["n"] == 22
    state = torch.load(run_dir / "checkpoints" / "cifar10_model_epoch_0.pth", weights_only=True)
    assert tuple(state["fc.weight"].shape) == (11, 1024)

    proc = run_in_process(capsys, "--no-ui", "evaluate", str(run_dir), "--data", str(root), "--device", "cpu", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["n"] == 22 and len(result["classes"]) == 11 and result["classes"][-1] == "zebra"


def test_a_ten_class_checkpoint_on_eleven_class_data_is_one_line(cifar_dir, tmp_path, cli):
    root = make_folder(cifar_dir, tmp_path / "eleven", n_train=1, n_test=2)
    add_class(root, cifar_dir, "zebra", n_train=1, n_test=2)
    path = tmp_path / "ten.pth"
    torch.save(tiny_state(), path)
    proc = cli("--no-ui", "evaluate", str(path), "--data", str(root), "--device", "cpu")
    assert_one_line_error(proc, repr(str(path)), "10 classes", "11 classes")


def test_a_symlink_loop_in_an_image_folder_is_skipped_with_a_warning(cifar_dir, tmp_path, capsys, metrics_of):
    root = make_folder(cifar_dir, tmp_path / "loopy")
    os.symlink("loop", root / "train" / "loop")  # points at itself
    os.symlink("bad.jpg", root / "test" / "cat" / "bad.jpg")
    run_dir = tmp_path / "run"
    proc = run_in_process(capsys, "--no-ui", "train", "--data", str(root), "--layers", "1,1,1", "--batch-size", "16", "--device", "cpu",
                          "--run-dir", str(run_dir))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    out = proc.stdout + proc.stderr
    assert "loop" in out and "bad.jpg" in out
    evals = [e for e in metrics_of(run_dir / "metrics.jsonl") if e["event"] == "eval"]
    assert len(evals[-1]["classes"]) == 10 and evals[-1]["n"] == 20


def test_an_image_folder_of_symlink_loops_only_is_one_line(tmp_path, cli):
    root = tmp_path / "loops"
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        os.symlink("cat", root / split / "cat")
    proc = cli("--no-ui", "train", "--data", str(root), "--device", "cpu", "--run-dir", str(tmp_path / "run"))
    assert_one_line_error(proc, "--data", "cat")
    assert not (tmp_path / "run").exists()


def unreadable(monkeypatch, folder: Path) -> None:
    """chmod 000; root reads such a folder anyway, so then the PermissionError a user would get is injected."""
    folder.chmod(0)
    try:
        os.listdir(folder)
    except PermissionError:
        return  # not root: the real error
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == folder:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(data.os, "scandir", scandir)


def test_an_unreadable_class_folder_is_skipped_with_a_warning(cifar_dir, tmp_path, monkeypatch):
    root = make_folder(cifar_dir, tmp_path / "locked", n_train=2, n_test=2)
    unreadable(monkeypatch, root / "train" / "cat")
    try:
        train, test = data.load_data(str(root))
    finally:
        (root / "train" / "cat").chmod(0o755)
    assert "cat" not in train.classes and train.classes == test.classes and len(train.classes) == 9
    assert len(train) == 18 and len(test) == 18
    assert any("cat" in n and "Permission denied" in n for n in train.notices + test.notices)


def test_an_image_folder_whose_only_class_is_unreadable_is_one_line(cifar_dir, tmp_path, monkeypatch):
    root = make_folder(cifar_dir, tmp_path / "locked", classes=("cat",), n_train=2, n_test=2)
    unreadable(monkeypatch, root / "train" / "cat")
    try:
        with pytest.raises(UserError) as e:
            data.load_data(str(root))
    finally:
        (root / "train" / "cat").chmod(0o755)
    assert "\n" not in str(e.value) and "cat" in str(e.value) and "--data" in str(e.value)


# ---------------------------------------------------------------- flags and config files


def test_a_seed_numpy_refuses_is_one_line(cifar_dir, tmp_path, cli, tiny):
    proc = cli("--no-ui", "train", *tiny(cifar_dir), "--seed", "4294967296", "--run-dir", str(tmp_path / "run"))
    assert_one_line_error(proc, "--seed", "'4294967296'", "4294967295")
    assert not (tmp_path / "run").exists()
    assert parse_field("seed", 2**32 - 1) == 2**32 - 1


def test_a_seed_numpy_refuses_fails_a_sweep_before_it_runs(cifar_dir, tmp_path, cli, tiny):
    proc = cli("--no-ui", "sweep", "--seed", "1,4294967296", *tiny(cifar_dir), "--out", str(tmp_path / "sw"))
    assert_one_line_error(proc, "seed", "4294967296", "4294967295")
    assert not (tmp_path / "sw").exists()


def test_config_dev_zero_is_refused_without_reading_it_all(tmp_path, cli):
    proc = cli("--no-ui", "train", "--config", "/dev/zero", "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_line_error(proc, "--config", "'/dev/zero'", "regular file")


def test_config_fifo_is_refused_without_waiting_for_a_writer(tmp_path, cli):
    fifo = tmp_path / "cfg.toml"
    os.mkfifo(fifo)
    proc = cli("--no-ui", "train", "--config", str(fifo), "--run-dir", str(tmp_path / "run"), timeout=60)
    assert_one_line_error(proc, "--config", repr(str(fifo)), "regular file")


def test_config_over_one_megabyte_is_refused(tmp_path):
    big = tmp_path / "big.toml"
    big.write_text("# padding\n" * 110_000 + "epochs = 2\n")
    assert big.stat().st_size > 1 << 20
    with pytest.raises(UserError) as e:
        read_toml(big)
    assert "\n" not in str(e.value) and "1 MB" in str(e.value) and repr(str(big)) in str(e.value)


def test_config_nested_too_deeply_is_one_line(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("layers = " + "[" * 50_000 + "\n")
    with pytest.raises(UserError) as e:
        read_toml(deep)
    assert "\n" not in str(e.value) and str(deep) in str(e.value) and "nested too deeply" in str(e.value)


# ---------------------------------------------------------------- --resume and the flags it would ignore


@pytest.mark.parametrize("flags, needles", [
    (["--config", "bad.toml"], ["--config"]),
    (["--run-dir", "other"], ["--run-dir"]),
    (["--config", "bad.toml", "--run-dir", "other"], ["--config", "--run-dir"]),
])
def test_resume_refuses_config_and_run_dir(flags, needles, finished_run, tmp_path, cli):
    before = snapshot(finished_run)
    proc = cli("--no-ui", "train", "--resume", str(finished_run), *flags, cwd=tmp_path)
    assert_one_line_error(proc, "--resume", *needles)
    assert snapshot(finished_run) == before and not (tmp_path / "other").exists()


def test_resume_may_change_how_a_run_is_supervised(finished_run, tmp_path, cli):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    proc = cli("--no-ui", "train", "--resume", str(run_dir), "--on-hangup", "stop", "--resume-every", "5")
    assert proc.returncode == 0, proc.stderr[-3000:]
    saved = read_toml(run_dir / "config.toml")
    assert saved["on_hangup"] == "stop" and saved["resume_every"] == 5.0
    proc = cli("--no-ui", "train", "--resume", str(run_dir), "--on-hangup", "later")
    assert_one_line_error(proc, "--on-hangup", "'later'", "continue, stop")


@pytest.mark.parametrize("kind", ["a folder", "not UTF-8"])
def test_a_run_whose_config_is_not_a_text_file_is_one_line(kind, finished_run, tmp_path, cli):
    run_dir = tmp_path / "run"
    shutil.copytree(finished_run, run_dir)
    cfg = run_dir / "config.toml"
    cfg.unlink()
    if kind == "a folder":
        cfg.mkdir()
    else:
        cfg.write_bytes(b"epochs = 1\n# \xff\xfe\n")
    proc = cli("--no-ui", "train", "--resume", str(run_dir))
    assert_one_line_error(proc, "--resume", repr(str(cfg)))

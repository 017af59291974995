"""Experiments: sweeps, the best checkpoint, the residual ablation (--no-skip), CSV export and `runs list`.

Real tiny runs on the shared CIFAR-10 images (64 training and 50 test images, batch 32, layers 1,1,1 or 2,2,2),
through the CLI in this process (cli.main, as the entry point calls it) or, where the process boundary matters, a subprocess.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_tui import cli
from resnet_tui.core.config import TrainConfig, tomllib
from resnet_tui.core.data import load_split
from resnet_tui.core.evaluate import evaluate_checkpoint
from resnet_tui.core.model import ResNet
from resnet_tui.core.operations import best_checkpoint
from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.runs import RunDir, summarize
from resnet_tui.core import sweep as sw
from resnet_tui.core.checkpoint import read_state_dict, save_state_dict

ROOT = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")


def tiny(cifar_dir: Path) -> list[str]:
    return ["--data", str(cifar_dir), "--limit-train", "64", "--limit-eval", "50", "--batch-size", "32", "--device", "cpu"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def events(run_dir: Path, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [e for e in map(json.loads, lines) if e["event"] == kind]  # as written, not read through records


def table_rows(text: str) -> list[list[str]]:
    """The body rows of a rich table printed to a pipe."""
    rows = []
    for line in text.splitlines():
        if line.startswith("│"):
            rows.append([c.strip() for c in line.strip("│").split("│")])
    return rows


@pytest.fixture(scope="module")
def trained_run(cifar_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real finished run: 2 epochs of 2 batches, then the evaluation on 50 test images."""
    from resnet_tui.core.train import train

    run_dir = tmp_path_factory.mktemp("runs") / "tiny-run"
    cfg = TrainConfig(data=str(cifar_dir), limit_train=64, limit_eval=50, batch_size=32, layers=(1, 1, 1), epochs=2, lr=0.05, device="cpu")
    end = train(cfg, run_dir, lambda e: None)
    assert end.status == "finished"
    return run_dir


# ---------------------------------------------------------------- sweeps


def test_sweep_grid_run_dirs_sweep_json_and_ranked_table(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sw"
    argv = ["--no-ui", "sweep", "--optimizer", "sgd,adam", "--lr", "0.05,0.01", "--layers", "1,1,1", *tiny(cifar_dir), "--out", str(out)]
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err

    # the grid: command-line order, the first flag varies slowest; one readable run directory per combination
    expected = [("sgd", 0.05), ("sgd", 0.01), ("adam", 0.05), ("adam", 0.01)]
    names = [f"optimizer={o},lr={lr:g}" for o, lr in expected]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(names)
    for (opt, lr), name in zip(expected, names):
        cfg = tomllib.loads((out / name / "config.toml").read_text())
        assert (cfg["optimizer"], cfg["lr"], cfg["layers"], cfg["limit_train"], cfg["batch_size"]) == (opt, lr, [1, 1, 1], 64, 32)
        assert summarize(out / name).status == "finished"
        assert len(events(out / name, "batch")) == 2  # 64 images in batches of 32, one epoch

    doc = json.loads((out / "sweep.json").read_text())
    assert doc["status"] == "finished"
    assert doc["axes"] == {"optimizer": ["sgd", "adam"], "lr": [0.05, 0.01]}
    assert [(r["name"], r["run_dir"], r["values"], r["status"]) for r in doc["runs"]] == [
        (n, n, {"optimizer": o, "lr": lr}, "finished") for (o, lr), n in zip(expected, names)
    ]
    accuracy = {n: events(out / n, "eval")[-1]["accuracy"] for n in names}
    assert {r["name"]: r["accuracy"] for r in doc["runs"]} == accuracy

    # the ranked table: every run once, with its own accuracy, best first (ties in grid order)
    rows = table_rows(stdout)
    assert [r[1] for r in rows] == sorted(names, key=lambda n: (-accuracy[n], names.index(n)))
    assert [r[0] for r in rows] == ["1", "2", "3", "4"]
    for r in rows:
        assert r[-1] == f"{accuracy[r[1]]:.2%}"

    # the same command again keeps the finished runs: nothing is trained twice
    before = {n: (out / n / "metrics.jsonl").read_bytes() for n in names}
    code, stdout, err = run_cli(capsys, *argv)
    assert code == 0, err
    assert "kept from an earlier start" in stdout and "run 1/4:" not in stdout
    assert {n: (out / n / "metrics.jsonl").read_bytes() for n in names} == before

    # a different grid into the same folder is refused
    code, _, err = run_cli(capsys, "--no-ui", "sweep", "--lr", "0.2,0.3", *tiny(cifar_dir), "--out", str(out))
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: --out:") and "different sweep" in err


@pytest.mark.parametrize(
    "flags, names, value",
    [
        (["--lr", "0.1,abc"], "--lr", "'abc'"),
        (["--optimizer", "sgd,adom"], "--optimizer", "'adom'"),
        (["--epochs", "1,0"], "--epochs", "'0'"),
        (["--skip", "on,maybe"], "--skip", "'maybe'"),
        (["--layers", "2,2,2,8,8,8"], "--layers", "';'"),
        (["--layers", "2,2,2;8,8"], "--layers", "'8,8'"),
        (["--lr", "0.1,,0.2"], "--lr", "'0.1,,0.2'"),
        (["--device", "cpu,cuda"], "--device", "'cpu,cuda'"),
        (["--data", "sample,/nonexistent/cifar"], "--data", "'/nonexistent/cifar'"),
    ],
)
def test_sweep_bad_value_is_one_line_exit_2_before_anything_runs(
    flags: list[str], names: str, value: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sw"
    code, stdout, err = run_cli(capsys, "--no-ui", "sweep", "--optimizer", "sgd,adam", *flags, "--out", str(out))
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {names}:") and value in err, err
    assert "Traceback" not in err and stdout == ""
    assert not out.exists()


def test_sweep_bad_value_through_the_entry_point(tmp_path: Path) -> None:
    """The real process: exit status 2, one line on stderr, no traceback, no torch imported for it."""
    code = ("import sys; from resnet_tui.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, "--no-ui", "sweep", "--lr", "0.1,-1", "--out", str(tmp_path / "sw")],
                       capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 2, p.stderr
    assert p.stderr == "error: --lr: got '-1', expected a number > 0\n"
    for argv in (["sweep", "--help"], ["runs", "--help"], ["runs", "list", "--help"], ["runs", "export", "--help"]):
        p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert p.returncode == 0, (argv, p.stderr)
        assert "Usage: resnet-tui" in p.stdout


def test_sweep_and_export_are_engine_modules() -> None:
    """No UI library, and no torch until runs are trained: planning a sweep stays fast for the form and --help."""
    code = ("import sys, resnet_tui.core.sweep, resnet_tui.core.export; "
            "bad = [m for m in ('textual', 'rich', 'torch') if m in sys.modules]; assert not bad, bad")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr


def test_sweep_without_no_ui_hands_the_plan_to_the_app(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict] = []
    monkeypatch.setattr(cli, "_open_app", lambda **kw: opened.append(kw))
    out = tmp_path / "sw"
    code, _, err = run_cli(capsys, "sweep", "--optimizer", "sgd,adam", "--lr", "0.1,0.01,0.001", *tiny(cifar_dir), "--out", str(out))
    assert code == 0, err
    (kw,) = opened
    assert kw["mode"] == "sweep" and kw["plan"].out == out
    assert [(p.config.optimizer, p.config.lr) for p in kw["plan"].points] == [(o, lr) for o in ("sgd", "adam") for lr in (0.1, 0.01, 0.001)]
    assert [p.run_dir for p in kw["plan"].points] == [out / f"optimizer={o},lr={lr:g}" for o in ("sgd", "adam") for lr in (0.1, 0.01, 0.001)]
    assert not out.exists()  # nothing ran: the app runs the sweep


def test_plan_slots_one_run_per_gpu() -> None:
    assert sw.plan_slots("auto", 4) == ["cuda:0", "cuda:1", "cuda:2", "cuda:3"]
    assert sw.plan_slots("cuda", 2) == ["cuda:0", "cuda:1"]
    assert sw.plan_slots("auto", 1) == ["auto"]
    assert sw.plan_slots("auto", 0) == ["auto"]
    assert sw.plan_slots("cuda:1", 4) == ["cuda:1"]  # a named GPU: runs one after another on it
    assert sw.plan_slots("cpu", 8) == ["cpu"]


class FakeJob:
    """A job that finishes after `polls` polls, recording which slots are busy when it starts."""

    def __init__(self, name: str, polls: int, log: list, busy: dict):
        self.name, self.polls, self.log, self.busy = name, polls, log, busy
        self.stops = 0

    def start(self, slot: str) -> "FakeJob":
        assert slot not in self.busy, f"{slot} already runs {self.busy.get(slot)}"
        self.busy[slot] = self.name
        self.slot = slot
        self.log.append(("start", self.name, slot, len(self.busy)))
        return self

    def poll(self) -> int | None:
        self.polls -= 1
        if self.polls <= 0:
            del self.busy[self.slot]
            return 0
        return None

    def stop(self) -> None:
        self.stops += 1
        self.polls = 1


def test_scheduler_runs_one_job_per_slot_and_refills_freed_slots() -> None:
    log: list = []
    busy: dict = {}
    jobs = [FakeJob(f"j{i}", polls, log, busy) for i, polls in enumerate([3, 1, 1, 4, 2])]
    done: list = []
    left = sw.run_scheduled(jobs, ["cuda:0", "cuda:1"], lambda j, s: j.start(s), lambda j, s, c: done.append((j.name, s, c)),
                            sleep=lambda s: None)
    assert left == []
    starts = [(name, slot) for kind, name, slot, _ in log]
    assert [n for n, _ in starts] == ["j0", "j1", "j2", "j3", "j4"]  # in grid order
    assert max(n for *_, n in log) == 2  # never more runs than GPUs
    # j0 holds cuda:0 for 3 polls while cuda:1 serves j1, then j2, then j3; j4 takes cuda:0 once j0 is done
    assert starts == [("j0", "cuda:0"), ("j1", "cuda:1"), ("j2", "cuda:1"), ("j3", "cuda:1"), ("j4", "cuda:0")]
    assert sorted(done) == sorted((n, s, 0) for n, s in starts)


def test_scheduler_stop_signals_running_jobs_once_and_starts_no_more() -> None:
    log: list = []
    busy: dict = {}
    jobs = [FakeJob(f"j{i}", 5, log, busy) for i in range(5)]
    polls = {"n": 0}

    def should_stop() -> bool:
        polls["n"] += 1
        return polls["n"] > 2

    left = sw.run_scheduled(jobs, ["cuda:0", "cuda:1"], lambda j, s: j.start(s), lambda j, s, c: None, should_stop, sleep=lambda s: None)
    assert [j.name for j in left] == ["j2", "j3", "j4"]
    assert [j.stops for j in jobs] == [1, 1, 0, 0, 0]
    assert busy == {}


def test_scheduler_abort_kills_running_jobs() -> None:
    """A second Ctrl+C (KeyboardInterrupt) while jobs run: they are killed, not left behind, and the abort goes on."""
    killed: list[str] = []

    class Job:
        def __init__(self, name: str):
            self.name = name

        def poll(self) -> None:
            return None

        def stop(self) -> None:
            raise AssertionError("abort kills; it does not ask to save")

        def kill(self) -> None:
            killed.append(self.name)

    def sleep(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sw.run_scheduled([Job("a"), Job("b"), Job("c")], ["cuda:0", "cuda:1"], lambda j, s: j, lambda j, s, c: None, sleep=sleep)
    assert sorted(killed) == ["a", "b"]


def test_sweep_on_several_gpus_launches_one_subprocess_per_gpu(cifar_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The multi-GPU wiring without GPUs: two visible CUDA devices, a fake process that records its command."""
    launched: list[tuple[list[str], str]] = []

    class FakeProcess:
        def __init__(self, args: list[str], log_path: Path, env=None):
            launched.append((args, (Path(args[args.index("--config") + 1])).read_text()))
            self.left = 2

        def poll(self) -> int | None:
            self.left -= 1
            return 0 if self.left <= 0 else None

        def stop(self) -> None:
            pass

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(sw, "ProcessHandle", FakeProcess)
    plan = sw.plan_sweep(tmp_path / "sw", sw.parse_axes({"lr": "0.1,0.01,0.001", "data": str(cifar_dir)}))
    end = sw.run_sweep(plan, poll_seconds=0)
    devices = [args[args.index("--device") + 1] for args, _ in launched]
    assert devices == ["cuda:0", "cuda:1", "cuda:0"]  # both GPUs busy, then the first one freed takes the third run
    for (args, config_text), point, device in zip(launched, plan.points, devices):
        assert args[:5] == [sys.executable, "-m", "resnet_tui", "--no-ui", "train"]
        assert args[args.index("--run-dir") + 1] == str(point.run_dir)
        cfg = tomllib.loads(config_text)
        assert cfg["lr"] == point.config.lr and cfg["device"] == device
    # the fake processes wrote no metrics: each run is reported as failed, not as finished
    assert [r.status for r in end.results] == ["failed"] * 3


def test_sweep_in_a_real_subprocess(cifar_dir: Path, tmp_path: Path) -> None:
    """The launcher of the multi-GPU path, for real, on the CPU: a `resnet-tui --no-ui train` child per run."""
    axes = sw.parse_axes({"data": str(cifar_dir), "limit_train": "64", "limit_eval": "50", "batch_size": "32", "layers": "1,1,1", "device": "cpu"})
    plan = sw.plan_sweep(tmp_path / "sw", axes)
    seen: list = []
    end = sw.run_sweep(plan, seen.append, slots=["cpu"], processes=True, poll_seconds=0.1)
    (r,) = end.results
    assert r.status == "finished", (tmp_path / "sw" / "run" / "train.log").read_text()
    assert r.accuracy == events(plan.points[0].run_dir, "eval")[-1]["accuracy"]
    assert "[LOG" in (plan.points[0].run_dir / "train.log").read_text()
    assert [type(e).__name__ for e in seen] == ["SweepStarted", "RunStarted", "RunFinished", "SweepFinished"]


# ---------------------------------------------------------------- the residual ablation


def expected_param_count(layers: tuple[int, int, int], skip: bool) -> int:
    """From the lab's layer shapes: 3x3 convs without bias, BatchNorm (weight + bias), Linear(1024, 10)."""
    def conv(cin: int, cout: int) -> int:
        return cin * cout * 9

    def bn(c: int) -> int:
        return 2 * c

    total = conv(3, 16) + bn(16)
    cin = 16
    for cout, blocks in zip((16, 32, 64), layers):
        for b in range(blocks):
            c_in = cin if b == 0 else cout
            total += conv(c_in, cout) + bn(cout) + conv(cout, cout) + bn(cout)
        if skip and cin != cout:
            total += conv(cin, cout) + bn(cout)  # the downsample shortcut
        cin = cout
    return total + 1024 * 10 + 10


def test_no_skip_model_has_no_shortcuts_and_the_expected_parameters() -> None:
    assert expected_param_count((2, 2, 2), skip=False) == 182_106
    assert expected_param_count((2, 2, 2), skip=True) == 205_338
    model = ResNet((2, 2, 2), skip=False)
    assert not [n for n, _ in model.named_modules() if "downsample" in n]
    assert all(getattr(m, "downsample", None) is None for m in model.modules())
    assert not [k for k in model.state_dict() if ".downsample." in k]
    assert sum(p.numel() for p in model.parameters()) == expected_param_count((2, 2, 2), skip=False)
    assert sum(p.numel() for p in ResNet((1, 3, 2), skip=False).parameters()) == expected_param_count((1, 3, 2), skip=False)
    with_skip = ResNet((2, 2, 2), skip=True)
    assert sum(p.numel() for p in with_skip.parameters()) == 205_338
    assert [k for k in with_skip.state_dict() if ".downsample." in k]

    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert out.shape == (4, 10)
    assert torch.allclose(out.exp().sum(1), torch.ones(4), atol=1e-5)
    # without shortcuts the block's output is relu(bn2(conv2(...))) only: adding the input would change it
    block = model.layer1[0]
    with torch.no_grad():
        h = model.bn(model.conv(x))
        plain = block.relu2(block.bn2(block.conv2(block.relu1(block.bn1(block.conv1(h))))))
        assert torch.equal(block(h.clone()), plain)


def test_info_no_skip_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "info", "--no-skip", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["param_count"] == 182_106 and d["skip"] is False and d["layers"] == [2, 2, 2]

    def nodes(n: dict):
        yield n
        for c in n["children"]:
            yield from nodes(c)

    all_nodes = list(nodes(d["tree"]))
    assert not [n for n in all_nodes if n["shortcut"] or n["skip"] or "downsample" in n["name"]]
    assert len([n for n in all_nodes if n["type"] == "ResidualBlock"]) == 6
    code, out, _ = run_cli(capsys, "info", "--json")
    assert json.loads(out)["param_count"] == 205_338


def test_sweep_skip_on_off_by_layers_and_evaluate_the_plain_network(cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "ablation"
    code, stdout, err = run_cli(capsys, "--no-ui", "sweep", "--skip", "on,off", "--layers", "1,1,1;2,2,2", *tiny(cifar_dir), "--out", str(out))
    assert code == 0, err
    grid = [(skip, layers) for skip in (True, False) for layers in ((1, 1, 1), (2, 2, 2))]
    names = [f"skip={'on' if s else 'off'},layers={'-'.join(map(str, l))}" for s, l in grid]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(names)
    for (skip, layers), name in zip(grid, names):
        run = out / name
        cfg = tomllib.loads((run / "config.toml").read_text())
        assert cfg["skip"] is skip and tuple(cfg["layers"]) == layers
        assert events(run, "start")[0]["param_count"] == expected_param_count(layers, skip)
        state = read_state_dict(RunDir(run).list_checkpoints()[-1][1])
        assert any(".downsample." in k for k in state) is skip
        assert sum(v.numel() for k, v in state.items() if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))) == expected_param_count(layers, skip)
    assert len(table_rows(stdout)) == 4

    # evaluate reads skip=False off the keys of a plain network's checkpoint (and the layers)
    plain = out / "skip=off,layers=2-2-2"
    code, o, err = run_cli(capsys, "--no-ui", "evaluate", str(plain), "--data", str(cifar_dir), "--limit-eval", "50", "--device", "cpu", "--json")
    assert code == 0, err
    result = json.loads(o)
    final = events(plain, "eval")[-1]
    assert result["n"] == 50
    assert result["accuracy"] == final["accuracy"] and math.isclose(result["nll"], final["nll"], rel_tol=1e-5)
    assert result["confusion"] == final["confusion"]


# ---------------------------------------------------------------- the best checkpoint


@pytest.fixture()
def known_run(tmp_path: Path) -> Path:
    """Three real checkpoints (different weights) and a metrics.jsonl whose lowest train_loss is epoch 2, not the last."""
    run = RunDir(tmp_path / "known")
    run.checkpoints.mkdir(parents=True)
    for epoch0 in range(3):
        torch.manual_seed(100 + epoch0)
        save_state_dict(ResNet((1, 1, 1)), run.checkpoint_path(epoch0))
    lines: list[ev.Event] = [ev.TrainStart(TrainConfig(layers=(1, 1, 1), epochs=3).to_dict(), str(run.path), "CPU", 0, 32, 0, 1)]
    for epoch, loss in ((1, 2.25), (2, 1.5), (3, 1.75)):
        lines.append(ev.BatchEnd(epoch, 1, loss, 32 * epoch, float(epoch), 0.01))
        lines.append(ev.EpochEnd(epoch, loss, 1.0, 32.0))
        lines.append(ev.CheckpointSaved(epoch, str(run.checkpoint_path(epoch - 1))))
    records.write_records(run.path, lines)
    (run.path / "config.toml").write_text(TrainConfig(layers=(1, 1, 1), epochs=3).to_toml())
    return run.path


def test_best_by_train_loss_picks_the_lowest_epoch_not_the_last(known_run: Path, cifar_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    best = best_checkpoint(known_run, "train_loss")
    assert best is not None
    assert (best.epoch, best.path.name, best.value) == (2, "cifar10_model_epoch_1.pth", 1.5)
    assert best.losses == {1: 2.25, 2: 1.5, 3: 1.75}

    common = ["--data", str(cifar_dir), "--limit-eval", "50", "--device", "cpu"]
    code, out, err = run_cli(capsys, "--no-ui", "evaluate", str(known_run), "--best", *common, "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["best"]["epoch"] == 2 and d["best"]["by"] == "train_loss" and d["best"]["checkpoint"].endswith("cifar10_model_epoch_1.pth")
    assert "epoch 2" in err and "train" in err  # why, on stderr, so stdout stays one JSON object
    # the numbers are those of the chosen checkpoint, not of the last one
    test = load_split(str(cifar_dir), "test", limit=50)
    chosen = evaluate_checkpoint(str(known_run / "checkpoints" / "cifar10_model_epoch_1.pth"), test, CPU)
    last = evaluate_checkpoint(str(known_run / "checkpoints" / "cifar10_model_epoch_2.pth"), test, CPU)
    assert chosen is not None and last is not None and chosen.nll != last.nll
    assert d["n"] == 50 and math.isclose(d["nll"], chosen.nll, rel_tol=1e-6) and d["confusion"] == chosen.confusion

    code, out, err = run_cli(capsys, "--no-ui", "evaluate", str(known_run), "--best", "--by", "train_loss", *common)
    assert code == 0, err
    assert out.splitlines()[0].startswith("best checkpoint: epoch 2 (cifar10_model_epoch_1.pth)")
    assert "lowest mean training loss" in out.splitlines()[0]


def test_best_by_eval_loss_evaluates_every_epoch(known_run: Path, cifar_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test = load_split(str(cifar_dir), "test", limit=50)
    nll = {e: evaluate_checkpoint(str(known_run / "checkpoints" / f"cifar10_model_epoch_{e - 1}.pth"), test, CPU).nll for e in (1, 2, 3)}
    want = min(nll, key=lambda e: nll[e])
    best = best_checkpoint(known_run, "eval_loss", split=test, device=CPU)
    assert best is not None and best.epoch == want and best.losses == pytest.approx(nll, rel=1e-9)
    assert best.result.n == 50

    code, out, err = run_cli(capsys, "--no-ui", "evaluate", str(known_run), "--best", "--by", "eval_loss", "--data", str(cifar_dir),
                             "--limit-eval", "30", "--device", "cpu", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["n"] == 30 and d["best"]["by"] == "eval_loss"  # --limit-eval applies to the choice and the report
    assert math.isclose(d["nll"], min(d["best"]["losses"].values()), rel_tol=1e-12)
    assert d["best"]["losses"][str(d["best"]["epoch"])] == d["nll"]


def test_best_without_no_ui_opens_the_app_on_the_chosen_checkpoint(known_run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[dict] = []
    monkeypatch.setattr(cli, "_open_app", lambda **kw: opened.append(kw))
    code, _, err = run_cli(capsys, "evaluate", str(known_run), "--best")
    assert code == 0, err
    (kw,) = opened
    assert kw["mode"] == "evaluate" and Path(kw["checkpoint"]) == known_run / "checkpoints" / "cifar10_model_epoch_1.pth"
    code, _, err = run_cli(capsys, "evaluate", str(known_run), "--best", "--by", "eval_loss")
    assert code == 0, err
    assert len(opened) == 2  # by eval loss the app evaluates each epoch checkpoint: it gets the run directory
    kw = opened[1]
    assert kw["mode"] == "evaluate" and kw["best_by"] == "eval_loss" and Path(kw["checkpoint"]) == known_run
    assert kw["config"].device == "auto" and kw["config"].data == "auto"


@pytest.mark.parametrize("case", ["pth", "no-epochs", "by", "by-without-best", "missing", "pretrained"])
def test_best_errors_are_one_line(case: str, known_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty-run"
    empty.mkdir()
    records.write_records(empty, [ev.TrainStart(TrainConfig().to_dict(), str(empty), "CPU", 0, 0, 0, 0)])
    argv, expect = {
        "pth": ([str(known_run / "checkpoints" / "cifar10_model_epoch_0.pth"), "--best"], "error: --best:"),
        "no-epochs": ([str(empty), "--best"], "error: --best:"),
        "by": ([str(known_run), "--best", "--by", "val_acc"], "error: --by: got 'val_acc'"),
        "by-without-best": ([str(known_run), "--by", "eval_loss"], "error: --by:"),
        "missing": (["--best"], "error: --best:"),
        "pretrained": (["--pretrained", "--best"], "error: --best:"),
    }[case]
    code, out, err = run_cli(capsys, "--no-ui", "evaluate", *argv, "--device", "cpu")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(expect), err
    if case == "no-epochs":
        assert "no epoch records" in err


# ---------------------------------------------------------------- export and runs list


def test_runs_export_csv_round_trips(trained_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    metrics_csv, confusion_csv = tmp_path / "m.csv", tmp_path / "c.csv"
    code, _, err = run_cli(capsys, "runs", "export", str(trained_run), "--csv", str(metrics_csv), "--confusion-csv", str(confusion_csv))
    assert code == 0, err
    with open(metrics_csv, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames is not None and reader.fieldnames[:8] == ["kind", "epoch", "batch", "loss", "images", "time", "lr", "train_loss"]
        rows = list(reader)
    batches = events(trained_run, "batch")
    batch_rows = [r for r in rows if r["kind"] == "batch"]
    assert len(batches) == 4 and len(batch_rows) == len(batches)
    for r, e in zip(batch_rows, batches):
        assert (int(r["epoch"]), int(r["batch"]), float(r["loss"]), int(r["images"]), float(r["time"]), float(r["lr"])) == (
            e["epoch"], e["batch"], e["loss"], e["images"], e["time"], e["lr"])
        assert r["train_loss"] == ""
    epochs = events(trained_run, "epoch")
    epoch_rows = [r for r in rows if r["kind"] == "epoch"]
    assert [(int(r["epoch"]), float(r["train_loss"]), float(r["seconds"])) for r in epoch_rows] == [
        (e["epoch"], e["train_loss"], e["seconds"]) for e in epochs]
    (eval_row,) = [r for r in rows if r["kind"] == "eval"]
    final = events(trained_run, "eval")[-1]
    assert (float(eval_row["accuracy"]), float(eval_row["nll"])) == (final["accuracy"], final["nll"])

    with open(confusion_csv, newline="") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == final["classes"]
    assert [row[0] for row in table[1:]] == final["classes"]
    assert [[int(v) for v in row[1:]] for row in table[1:]] == final["confusion"]
    assert sum(map(sum, final["confusion"])) == 50

    # no file: an error naming what is missing, and nothing written
    code, _, err = run_cli(capsys, "runs", "export", str(tmp_path / "nope"), "--csv", str(tmp_path / "x.csv"))
    assert code == 2 and err.count("\n") == 1 and "RUN_DIR" in err and not (tmp_path / "x.csv").exists()


def test_evaluate_confusion_csv_matches_the_report(trained_run: Path, cifar_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "conf.csv"
    code, out, err = run_cli(capsys, "--no-ui", "evaluate", str(trained_run), "--data", str(cifar_dir), "--limit-eval", "50",
                             "--device", "cpu", "--json", "--confusion-csv", str(dest))
    assert code == 0, err
    d = json.loads(out)
    with open(dest, newline="") as f:
        table = list(csv.reader(f))
    assert table[0][1:] == d["classes"] and [[int(v) for v in row[1:]] for row in table[1:]] == d["confusion"]


def test_runs_list_shows_runs_and_sweep_runs(trained_run: Path, cifar_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = trained_run.parent
    # a sweep folder inside the runs folder: its runs are listed as sweep/<name>
    plan = sw.plan_sweep(root / "sweep-a", sw.parse_axes({"data": str(cifar_dir), "limit_train": "64", "limit_eval": "50",
                                                         "batch_size": "32", "layers": "1,1,1", "device": "cpu", "seed": "1,2"}))
    sw.run_sweep(plan)
    code, out, err = run_cli(capsys, "runs", "list", "--runs-dir", str(root), "--json")  # no --no-ui: plain output, no app
    assert code == 0, err
    listed = {r["name"]: r for r in json.loads(out)}
    assert set(listed) == {"tiny-run", "sweep-a/seed=1", "sweep-a/seed=2"}
    for name, r in listed.items():
        assert r["status"] == "finished" and r["epochs_done"] == r["epochs"] == (2 if name == "tiny-run" else 1)
        assert r["accuracy"] == events(root / name, "eval")[-1]["accuracy"]

    code, out, err = run_cli(capsys, "runs", "list", "--runs-dir", str(root))
    assert code == 0, err
    rows = {r[0]: r for r in table_rows(out)}
    assert set(rows) == set(listed)
    assert rows["tiny-run"][2] == "finished" and rows["tiny-run"][-1] == f"{listed['tiny-run']['accuracy']:.2%}"

    code, out, _ = run_cli(capsys, "runs", "list", "--runs-dir", str(root / "nothing-here"), "--json")
    assert code == 0 and json.loads(out) == []

"""One run on several processes (torch.distributed, gloo on the CPU): real launchers, real ranks, real signals.

`--gpus 2 --device cpu` starts two CPU processes through torch.distributed's launcher, as `--gpus 2` does on a
two-GPU machine (there with NCCL). Every run here is 2 epochs of 8 global batches of 50 real CIFAR-10 images.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest
import torch

from resnet_tui.core import records
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import _slice
from resnet_tui.core.distributed import failure_outcome
from resnet_tui.core.lock import request_stop
from resnet_tui.core.train import Trainer
from resnet_tui.core.data import load_data
from test_model import LabResNet
from test_ssh_drop import PtyProcess, assert_every_batch_once, wait_for

ROOT = Path(__file__).resolve().parents[1]
EPOCHS, PER_EPOCH = 2, 8


def flags(cifar_dir: Path, run_dir: Path, *extra: str) -> list[str]:
    return ["--no-ui", "train", "--gpus", "2", "--device", "cpu", "--data", str(cifar_dir), "--limit-train", "400",
            "--limit-eval", "100", "--layers", "1,1,1", "--batch-size", "50", "--epochs", str(EPOCHS), "--lr", "0.01",
            "--momentum", "0.9", "--run-dir", str(run_dir), *extra]


def launch(args: list[str], **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "resnet_tui", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def weights(run_dir: Path, epoch0: int = EPOCHS - 1) -> dict[str, torch.Tensor]:
    return torch.load(run_dir / "checkpoints" / f"cifar10_model_epoch_{epoch0}.pth", weights_only=True)


def batches_recorded(run_dir: Path) -> int:
    return len(records.read_run(run_dir).batches) if (run_dir / "metrics.jsonl").exists() else 0


def rank_pid(launcher: subprocess.Popen, rank: int) -> int:
    """The pid of rank `rank`: a child process of the launcher with RANK=rank in its environment."""
    for child in psutil.Process(launcher.pid).children(recursive=True):
        try:
            if child.environ().get("RANK") == str(rank) and "resnet_tui" in " ".join(child.cmdline()):
                return child.pid
        except psutil.Error:
            continue
    raise AssertionError(f"no rank {rank} among the launcher's children")


@pytest.fixture(scope="module")
def two_process_run(cifar_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    proc = launch(flags(cifar_dir, run_dir))
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return run_dir, out, err


def test_two_processes_train_one_run_that_rank_0_alone_writes(two_process_run):
    run_dir, out, err = two_process_run
    assert "Traceback" not in out + err
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    start = next(r for r in lines if r["event"] == "start")
    end = lines[-1]
    assert start["world_size"] == 2 and "× 2 processes (DDP, gloo)" in start["device"]
    assert end["event"] == "end" and end["status"] == "finished" and end["world_size"] == 2
    assert len(end["rank_images_per_sec"]) == 2 and all(r > 0 for r in end["rank_images_per_sec"])
    assert_every_batch_once(run_dir, EPOCHS, PER_EPOCH)  # one series of global batches, not one per rank
    assert sum(1 for r in lines if r["event"] == "start") == 1
    assert out.count("finished:") == 1  # rank 0 speaks for the run
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["cifar10_model_epoch_0.pth", "cifar10_model_epoch_1.pth"]
    for epoch0 in range(EPOCHS):
        LabResNet([1, 1, 1]).load_state_dict(weights(run_dir, epoch0), strict=True)  # the lab's class, keys and shapes


def test_a_hung_up_terminal_stops_nothing_and_the_same_run_again_gives_identical_weights(two_process_run, cifar_dir, tmp_path):
    """The launcher in a pty, as over SSH: the connection drops; both ranks train on to the end, and the run is
    bit for bit the one trained before with the same flags."""
    run_dir = tmp_path / "run"
    p = PtyProcess([sys.executable, "-m", "resnet_tui", *flags(cifar_dir, run_dir)])
    try:
        wait_for(lambda: batches_recorded(run_dir) >= 1 or p.proc.poll() is not None, timeout=120, what="the first batch")
        p.hang_up()
        assert p.proc.wait(180) == 0
    finally:
        p.kill()
    assert records.read_run(run_dir).end.status == "finished"
    assert_every_batch_once(run_dir, EPOCHS, PER_EPOCH)
    a, b = weights(two_process_run[0]), weights(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_two_processes_learn_like_one_with_the_same_global_batch(two_process_run, cifar_dir, tmp_path):
    run_dir, _, _ = two_process_run
    # one process, the same global batch: the same schedule of images; only BatchNorm's per-rank batch statistics differ
    cfg = TrainConfig(data=str(cifar_dir), limit_train=400, limit_eval=100, layers=(1, 1, 1), batch_size=50, epochs=EPOCHS,
                      lr=0.01, momentum=0.9, device="cpu")
    one = Trainer(cfg, tmp_path / "one", lambda e: None).run_training()
    assert one.status == "finished"
    loss_two = records.read_run(run_dir).epochs[-1].train_loss
    loss_one = records.read_run(tmp_path / "one").epochs[-1].train_loss
    assert abs(loss_two - loss_one) / loss_one < 0.03, (loss_one, loss_two)


def test_sigint_to_the_launcher_stops_both_ranks_after_one_batch_and_resume_finishes_the_same_run(two_process_run, cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    proc = launch(flags(cifar_dir, run_dir))
    wait_for(lambda: batches_recorded(run_dir) >= 1 or proc.poll() is not None, timeout=120, what="the first batch")
    ranks = [psutil.Process(rank_pid(proc, r)) for r in (0, 1)]
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-3000:]
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in ranks)
    run = records.read_run(run_dir)
    assert run.end is not None and run.end.status == "interrupted" and "stopped at epoch" in run.end.message
    assert (run_dir / "resume.pt").is_file() and sorted(p.name for p in run_dir.iterdir() if p.suffix == ".pt") == ["resume.pt"]
    assert err.count("SIGINT received") == 1  # rank 0 says it once; rank 1 stops quietly after the same batch
    assert torch.load(run_dir / "resume.pt", weights_only=True)["world_size"] == 2

    # the same stopped run, resumed on one process (a copy): it goes on with the same schedule, and says what changed
    import shutil

    shutil.copytree(run_dir, tmp_path / "one")
    notices: list = []
    cfg = TrainConfig(**{**records.read_run(run_dir).start.config, "gpus": 1, "layers": (1, 1, 1)})
    end = Trainer(cfg, tmp_path / "one", notices.append, resume=True).run_training()
    assert end.status == "finished" and end.world_size == 1
    assert any("resumed on 1 process(es) a run trained so far on 2" in getattr(e, "text", "") for e in notices)
    assert_every_batch_once(tmp_path / "one", EPOCHS, PER_EPOCH)

    proc = launch(["--no-ui", "train", "--resume", str(run_dir)])  # config.toml says gpus = 2
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert records.read_run(run_dir).end.status == "finished"
    assert_every_batch_once(run_dir, EPOCHS, PER_EPOCH)
    a, b = weights(two_process_run[0]), weights(run_dir)
    assert all(torch.equal(a[k], b[k]) for k in a)  # stopped and resumed, it is the run that never stopped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_stopped_runs_followers_exit_0_so_the_launcher_keeps_rank_0s_exit_code(cifar_dir, tmp_path):
    """torchrun's agent takes any rank's non-zero exit for a failure and at once shuts the other ranks down: a follower
    that exited 130 after a stop sent to rank 0 raced rank 0's end, and the launcher then said 130, not rank 0's 143.
    Here the ranks are started by hand, as torchrun starts them, so that each one's exit code is seen."""
    run_dir, port = tmp_path / "run", free_port()
    ranks = [launch(flags(cifar_dir, run_dir), env={**os.environ, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2",
                                                   "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
             for r in (0, 1)]
    try:
        wait_for(lambda: batches_recorded(run_dir) >= 1 or ranks[0].poll() is not None, timeout=120, what="the first batch")
        request_stop(run_dir)  # SIGTERM to rank 0, the lock's holder, as `resnet-tui stop` does
        (_, err0), (_, err1) = (p.communicate(timeout=120) for p in ranks)
    finally:
        for p in ranks:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in ranks] == [128 + signal.SIGTERM, 0], err0[-2000:] + err1[-2000:]
    assert "SIGTERM received" in err0 and err1.strip() == ""  # rank 0 speaks for the run; rank 1 stops quietly
    end = records.read_run(run_dir).end
    assert end is not None and end.status == "interrupted"


def test_a_killed_rank_fails_the_run_naming_it_and_no_process_is_left(cifar_dir, tmp_path):
    run_dir = tmp_path / "run"
    proc = launch(flags(cifar_dir, run_dir))
    wait_for(lambda: batches_recorded(run_dir) >= 1 or proc.poll() is not None, timeout=120, what="the first batch")
    victim = rank_pid(proc, 1)
    rank0 = psutil.Process(rank_pid(proc, 0))
    psutil.Process(victim).kill()
    _, err = proc.communicate(timeout=60)  # gloo sees the closed connection at once; NCCL would wait for the timeout
    assert proc.returncode == 1, err[-3000:]
    assert f"rank 1 (pid {victim}) was killed by SIGKILL" in err and "Traceback" not in err
    end = records.read_run(run_dir).end
    assert end is not None and end.status == "failed" and f"rank 1 (pid {victim}) failed" in end.message
    assert not (rank0.is_running() and rank0.status() != psutil.STATUS_ZOMBIE)


def test_uneven_slices_weigh_each_rank_by_its_images_so_the_step_is_the_global_batchs(cifar_dir, tmp_path):
    """A global batch of 45 on 2 ranks: slices of 23 and 22 images. The 2-process run's weights and logged losses are a
    one-process computation of the same step: each slice's forward on its own (BatchNorm statistics per slice), the
    slices' mean losses weighted by their images. Weighting the ranks equally instead differs by ~1e-4 here."""
    run_dir = tmp_path / "run"
    args = flags(cifar_dir, run_dir)
    args[args.index("--limit-train") + 1], args[args.index("--batch-size") + 1], args[args.index("--epochs") + 1] = "90", "45", "1"
    proc = launch([*args, "--precision", "fp32"])  # as the reference below (auto is bf16 on some CPUs, AMD Zen 4)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]

    from resnet_tui.core.train import setup

    s = setup(TrainConfig(data=str(cifar_dir), limit_train=90, limit_eval=100, layers=(1, 1, 1), batch_size=45, epochs=1,
                          lr=0.01, momentum=0.9, device="cpu", precision="fp32"))
    slices = [list(s.train.train_epoch(0, 45, 1234, False, part=(r, 2))) for r in range(2)]
    losses = []
    for b in range(2):
        s.optimizer.zero_grad()
        loss = sum(torch.nn.functional.nll_loss(s.model(x), y) * len(y) / 45 for x, y in (slices[0][b], slices[1][b]))
        loss.backward()
        s.optimizer.step()
        losses.append(loss.item())
    assert [len(y) for _, y in (slices[0][0], slices[1][0])] == [23, 22]
    ref, got = s.model.state_dict(), weights(run_dir, 0)
    assert max((ref[k] - got[k]).abs().max().item() for k in got if "running" not in k and got[k].is_floating_point()) < 3e-5
    logged = [b.loss for b in records.read_run(run_dir).batches]
    assert logged == pytest.approx(losses, abs=1e-4)


# ---------------------------------------------------------------- the pieces, without processes


@pytest.mark.parametrize("length,world", [(50, 2), (7, 3), (3, 3), (128, 8), (5, 1)])
def test_each_rank_slice_is_a_contiguous_part_and_together_they_are_the_batch(length, world):
    parts = [_slice(100, length, r, world) for r in range(world)]
    assert parts[0][0] == 100 and parts[-1][1] == 100 + length
    assert all(parts[r][1] == parts[r + 1][0] for r in range(world - 1))
    sizes = [hi - lo for lo, hi in parts]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1
    assert sizes == [len(t) for t in torch.arange(length).tensor_split(world)]


def test_the_global_batch_and_its_augmentation_do_not_depend_on_the_world_size(cifar_dir):
    from resnet_tui.core.data import DeviceBatches

    train, _ = load_data(str(cifar_dir), None, 60, 10)
    batches = DeviceBatches(train, torch.device("cpu"))
    whole = list(batches.train_epoch(1, 25, seed=3, augment=True))
    for world in (2, 3):
        parts = [list(batches.train_epoch(1, 25, seed=3, augment=True, part=(r, world))) for r in range(world)]
        for b, (x, y) in enumerate(whole):
            assert torch.equal(torch.cat([p[b][0] for p in parts]), x) and torch.equal(torch.cat([p[b][1] for p in parts]), y)


def failure(rank: int, exitcode: int, pid: int = 100):
    return SimpleNamespace(rank=rank, exitcode=exitcode, pid=pid + rank)


def test_the_launchers_exit_code_names_a_killed_rank_else_is_rank_0s():
    assert failure_outcome({1: failure(1, -9), 0: failure(0, 1)}) == (1, "rank 1 (pid 101) was killed by SIGKILL")
    # the launcher's own SIGTERM (it shuts the other ranks down after a failure) is not the cause
    assert failure_outcome({1: failure(1, -9), 0: failure(0, -15)}) == (1, "rank 1 (pid 101) was killed by SIGKILL")
    assert failure_outcome({0: failure(0, 130), 1: failure(1, 130)}) == (130, "")
    assert failure_outcome({0: failure(0, 2), 1: failure(1, 2)}) == (2, "")
    assert failure_outcome({1: failure(1, 1)}) == (1, "")
    # rank 1 refused to start and ended first; the launcher then shut rank 0 down (it had said why): rank 1's code
    assert failure_outcome({0: failure(0, -15), 1: failure(1, 2)}) == (2, "")
    assert failure_outcome({0: failure(0, -15), 1: failure(1, -15)}) == (143, "")


@pytest.mark.parametrize("extra,needles", [
    (["--gpus", "all"], ["--gpus", "'all'", "no CUDA GPU"]),
    (["--gpus", "2", "--sync-bn"], ["--sync-bn", "CUDA"]),
])
def test_what_several_processes_cannot_do_is_one_line_before_anything_starts(cli, cifar_dir, tmp_path, extra, needles):
    from cli_helpers import assert_one_line_error

    proc = cli("--no-ui", "train", "--device", "cpu", "--data", str(cifar_dir), "--run-dir", str(tmp_path / "r"), *extra)
    assert_one_line_error(proc, *needles)
    assert not (tmp_path / "r").exists()


def test_a_bad_input_the_ranks_find_is_still_one_line(cli, tmp_path):
    """A data folder that is not there fails in the ranks, not before the launch: rank 0 says why, once; rank 1 stops
    without a word (PeerRefused), and the launcher exits with rank 0's code."""
    from cli_helpers import assert_one_line_error

    proc = cli("--no-ui", "train", "--gpus", "2", "--device", "cpu", "--data", str(tmp_path / "nowhere"),
               "--run-dir", str(tmp_path / "r"))
    assert_one_line_error(proc, "--data", "nowhere", "does not exist")


def test_the_world_size_checks_name_the_flag():
    from resnet_tui.core.distributed import check_world
    from resnet_tui.core.errors import UserError

    check_world(TrainConfig(batch_size=4), 4, "cpu")
    with pytest.raises(UserError, match="--batch-size: got 3 with 4 processes"):
        check_world(TrainConfig(batch_size=3), 4, "cpu")
    with pytest.raises(UserError, match="--device: got 'cuda:1' with 2 processes"):
        check_world(TrainConfig(device="cuda:1"), 2, "cuda")
    check_world(TrainConfig(batch_size=1, sync_bn=True, device="cuda:1"), 1, "cpu")  # one process: nothing to check


@pytest.mark.parametrize("on_hangup,handled,ignored", [("continue", "SIGTERM,SIGINT,SIGQUIT", True),
                                                       ("stop", "SIGTERM,SIGINT,SIGQUIT,SIGHUP", False)])
def test_the_launcher_passes_a_hangup_to_the_ranks_only_when_asked_to_stop_on_it(monkeypatch, on_hangup, handled, ignored):
    """What `--gpus N` hands torch's launcher: the ranks' command, one machine, no restarts, and which signals it
    forwards to the ranks; with --on-hangup continue, a hang-up is ignored (the ranks, in their own session, never see it)."""
    import torch.distributed.launcher.api as api

    from resnet_tui.core import distributed

    seen = {}

    def fake_launch(config, entrypoint):
        seen["config"], seen["entrypoint"] = config, entrypoint
        return lambda *args: seen.setdefault("args", args)

    monkeypatch.setattr(api, "elastic_launch", fake_launch)
    previous = signal.getsignal(signal.SIGHUP)
    try:
        assert distributed.launch(2, ["--no-ui", "train", "--gpus", "2"], on_hangup) == (0, "")
        assert (signal.getsignal(signal.SIGHUP) == signal.SIG_IGN) == ignored
    finally:
        signal.signal(signal.SIGHUP, previous)
    config = seen["config"]
    assert config.signals_to_handle == handled
    assert (config.nproc_per_node, config.min_nodes, config.max_nodes, config.max_restarts) == (2, 1, 1, 0)
    assert seen["entrypoint"] == sys.executable and seen["args"] == ("-m", "resnet_tui", "--no-ui", "train", "--gpus", "2")


def test_a_sweep_of_several_process_runs_is_refused_naming_the_way_to_train_one(tmp_path):
    from resnet_tui.core.errors import UserError
    from resnet_tui.core.sweep import plan_sweep

    with pytest.raises(UserError, match=r"--gpus: got 2, expected 1 in a sweep .* resnet-tui --no-ui train --gpus N"):
        plan_sweep(tmp_path / "sw", {"lr": [0.1, 0.2], "gpus": [2]})
    with pytest.raises(UserError, match="--gpus: got 'all', expected 1 in a sweep"):
        plan_sweep(tmp_path / "sw", {"lr": [0.1, 0.2]}, file_values={"gpus": "all"})
    assert len(plan_sweep(tmp_path / "sw", {"lr": [0.1, 0.2], "gpus": [1]}).points) == 2
    assert not (tmp_path / "sw").exists()

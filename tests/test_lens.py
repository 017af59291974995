"""The residual lens (resnet_tui.core.lens): its values on networks with known weights, gradient norms against a hand
computation with torch.autograd, and measurement only: the weights are bit-identical with the lens off, on at its
default rate, or on at every step."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from resnet_tui.core import events as ev
from resnet_tui.core import records
from resnet_tui.core.config import ConfigError, TrainConfig, parse_field
from resnet_tui.core.data import load_data
from resnet_tui.core.lens import Lens, every_steps, row_names
from resnet_tui.core.model import ResNet
from resnet_tui.core.train import train


def measured(model: ResNet, x: torch.Tensor, y: torch.Tensor) -> tuple[ev.LensMeasure, torch.optim.Optimizer]:
    """One training step of `model` on (x, y) with a lens at every step; its one measurement."""
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    lens = Lens(model, opt, sched, every=1, steps_per_epoch=4)
    model.train()
    loss = F.nll_loss(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    sched.step()
    (m,) = lens.read()
    lens.close()
    return m, opt


def batch(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_a_residual_branch_that_outputs_zero_has_ratio_zero_and_the_identity_has_ratio_one() -> None:
    torch.manual_seed(0)
    model = ResNet((2, 1, 1))
    with torch.no_grad():  # layer1.1's branch ends in a BN with weight and bias 0: F(x) = 0
        model.layer1[1].bn2.weight.zero_()
        model.layer1[1].bn2.bias.zero_()
    m, _ = measured(model, *batch())
    assert m.blocks == ["stem", "layer1.0", "layer1.1", "layer2.0", "layer3.0", "fc"] == row_names(model)
    ratio = dict(zip(m.blocks, m.values["ratio"]))
    assert ratio["layer1.1"] == 0.0
    # the other branches end in a freshly initialised BN, like the identity they are added to: about 1
    assert all(0.8 < ratio[b] < 1.2 for b in ("layer1.0", "layer2.0", "layer3.0")), ratio
    assert math.isnan(ratio["stem"]) and math.isnan(ratio["fc"])  # no identity path there
    assert (m.epoch, m.batch, m.step) == (1, 1, 1)


def test_plain_network_gradient_norms_ratios_and_activations_match_a_hand_computation() -> None:
    torch.manual_seed(0)
    model = ResNet((1, 2, 1), skip=False)
    reference = copy.deepcopy(model)
    x, y = batch()
    m, _ = measured(model, x, y)

    reference.train()
    acts: dict[str, torch.Tensor] = {}
    for name in ("bn", "layer1.0", "layer2.0", "layer2.1", "layer3.0", "fc"):
        reference.get_submodule(name).register_forward_hook(lambda mod, a, out, name=name: acts.__setitem__(name, out.detach().clone()))
    loss = F.nll_loss(reference(x), y)
    params = dict(reference.named_parameters())
    grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))

    def grad_norm(*prefixes: str) -> float:
        return math.sqrt(sum(float(g.pow(2).sum()) for k, g in grads.items() if k.startswith(prefixes)))

    assert m.values["grad"][0] == pytest.approx(grad_norm("conv.", "bn."), rel=1e-5)
    for i, block in enumerate(("layer1.0", "layer2.0", "layer2.1", "layer3.0"), start=1):
        assert m.values["grad"][i] == pytest.approx(grad_norm(block + "."), rel=1e-5)
    assert m.values["grad"][-1] == pytest.approx(grad_norm("fc."), rel=1e-5)
    # a plain block: ||output|| / ||input||
    inputs = {"layer1.0": acts["bn"], "layer2.0": acts["layer1.0"], "layer2.1": acts["layer2.0"], "layer3.0": acts["layer2.1"]}
    for i, block in enumerate(inputs, start=1):
        assert m.values["ratio"][i] == pytest.approx(float(acts[block].norm() / inputs[block].norm()), rel=1e-5)
        assert m.values["mean"][i] == pytest.approx(float(acts[block].mean()), rel=1e-5)
        assert m.values["std"][i] == pytest.approx(float(acts[block].std()), rel=1e-5)
    assert m.values["std"][-1] == pytest.approx(float(acts["fc"].std()), rel=1e-5)


def test_the_lens_measures_only_at_its_steps_and_never_during_evaluation() -> None:
    torch.manual_seed(0)
    model = ResNet((1, 1, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    lens = Lens(model, opt, sched, every=3, steps_per_epoch=4)
    x, y = batch(4)
    for _ in range(7):
        model.train()
        loss = F.nll_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        model.eval()
        with torch.no_grad():
            model(x)
    assert [(m.epoch, m.batch, m.step) for m in lens.read()] == [(1, 1, 1), (1, 4, 4), (2, 3, 7)]
    assert lens.read() == []


def test_lens_every_auto_is_about_50_an_epoch_and_bad_values_are_one_line() -> None:
    assert every_steps("auto", 391) == 8 and every_steps("auto", 6) == 1 and every_steps(0, 391) == 0
    assert parse_field("lens_every", "AUTO") == "auto" and parse_field("lens_every", "0") == 0
    for bad in ("-1", "often", 1.5, True):
        with pytest.raises(ConfigError, match="auto .* 0 .off. or an integer >= 1"):
            parse_field("lens_every", bad)


@pytest.fixture(scope="module")
def splits(cifar_dir: Path):
    return load_data(str(cifar_dir), None, 64, 16)


def trained_weights(splits, tmp_path: Path, lens_every, skip: bool = True) -> tuple[dict, list[ev.Event]]:
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=1, lr=0.05, momentum=0.9, device="cpu", precision="fp32",
                      seed=3, lens_every=lens_every, skip=skip, augment=True)  # 1 epoch: 4 steps
    events: list[ev.Event] = []
    run = tmp_path / f"run-{lens_every}-{skip}"
    assert train(cfg, run, events.append, splits=splits).status == "finished"
    return torch.load(run / "checkpoints" / "cifar10_model_epoch_0.pth", weights_only=True), events


@pytest.mark.parametrize("skip", [True, False])
def test_the_lens_changes_no_weight_and_its_records_are_read_back(splits, tmp_path: Path, skip: bool) -> None:
    off, off_events = trained_weights(splits, tmp_path, 0, skip)
    every, every_events = trained_weights(splits, tmp_path, 1, skip)
    assert not [e for e in off_events if isinstance(e, ev.LensMeasure)]
    assert off.keys() == every.keys() and all(torch.equal(off[k], every[k]) for k in off)  # bit-identical
    lenses = [e for e in every_events if isinstance(e, ev.LensMeasure)]
    assert [m.step for m in lenses] == [1, 2, 3, 4]  # each step measured once
    read = records.read_run(tmp_path / f"run-1-{skip}").lenses  # 6 significant digits, NaN as null
    assert [(m.epoch, m.batch, m.step, m.blocks) for m in read] == [(m.epoch, m.batch, m.step, m.blocks) for m in lenses]
    for m, r in zip(lenses, read):
        for q, vs in m.values.items():
            assert r.values[q] == pytest.approx(vs, rel=1e-5, nan_ok=True)
    assert all(math.isfinite(v) for m in lenses for v in m.values["grad"])


def test_runs_lens_prints_the_first_middle_and_last_steps_and_exports_every_measurement(tiny_run, capsys, tmp_path: Path) -> None:
    from cli_helpers import run_in_process  # what runs lens prints, from cli.main in this process

    run_dir, proc, _ = tiny_run  # 2 epochs of 6 steps, the lens at its default rate (auto: every step here)
    assert proc.returncode == 0, proc.stderr
    out = run_in_process(capsys, "runs", "lens", str(run_dir), "--csv", str(tmp_path / "lens.csv"))
    assert out.returncode == 0, out.stderr
    titles = [line.strip() for line in out.stdout.splitlines() if ": lens at step" in line]
    assert [t.split(": ", 1)[1] for t in titles] == [
        "lens at step 1 (epoch 1, batch 1)", "lens at step 7 (epoch 2, batch 1)", "lens at step 12 (epoch 2, batch 6)"]
    assert "layer2.0" in out.stdout and "12 measurements of 5 rows" in out.stdout
    rows = (tmp_path / "lens.csv").read_text().splitlines()
    assert rows[0] == "step,epoch,batch,block,ratio,grad,mean,std" and len(rows) == 1 + 12 * 5
    assert rows[1].startswith("1,1,1,stem,,") and rows[-1].startswith("12,2,6,fc,,")
    assert all(float(r.split(",")[5]) > 0 for r in rows[1:])  # every row has a gradient norm


def test_runs_lens_of_a_run_without_lens_records_is_one_line(tmp_path: Path, cli) -> None:
    run = tmp_path / "old-run"
    records.write_records(run, [ev.TrainStart(TrainConfig().to_dict(), str(run), "CPU", 1, 1, 1, 1),
                                ev.BatchEnd(1, 1, 2.3, 128, 0.5, 0.001)])
    with open(run / records.METRICS_NAME, "a") as f:
        f.write('{"event": "lens", "epoch": 1, "batch": 1, "step": 1, "blocks": ["stem"], "grad": ["x"]}\n')  # skipped
    out = cli("runs", "lens", str(run))
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "no lens records" in out.stderr and "Traceback" not in out.stderr


def test_a_run_stopped_mid_epoch_and_resumed_measures_every_step_once_numbered_on(splits, tmp_path: Path) -> None:
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=2, lr=0.05, device="cpu", precision="fp32", lens_every=1)
    run = tmp_path / "run"
    steps = {"n": 0}

    def stop_after_3() -> bool:  # asked once after each step
        steps["n"] += 1
        return steps["n"] >= 3

    assert train(cfg, run, lambda e: None, should_stop=stop_after_3, splits=splits).status == "interrupted"
    assert train(cfg, run, lambda e: None, resume=True, splits=splits).status == "finished"
    lenses = records.read_run(run).lenses
    assert [(m.epoch, m.batch, m.step) for m in lenses] == [(1, b, b) for b in range(1, 5)] + [(2, b, 4 + b) for b in range(1, 5)]

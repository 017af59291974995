"""The network is the lab's: parameter counts, state_dict key names, and checkpoints that load both ways.

LabResidualBlock and LabResNet below are the lab notebook's classes (shared/seed, section 4.2), kept verbatim in
behaviour: the stem's ReLU is defined and never called, stride 1 everywhere, a 3x3 conv + BN shortcut where the
channel count changes, AvgPool2d(8), Linear(1024, 10), LogSoftmax, `x.view` flattening and `out += residual`.
"""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tui.core import checkpoint, evaluate
from resnet_tui.core.data import load_image_folder, normalize
from resnet_tui.core.errors import UserError
from resnet_tui.core.model import ResNet, describe, param_count


# ---------------------------------------------------------------- the lab's classes, as in the notebook


class LabResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, stride=1, downsample=None):
        super(LabResidualBlock, self).__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        if self.downsample:
            residual = self.downsample(residual)
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu1(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out += residual
        out = self.relu2(out)
        return out


class LabResNet(nn.Module):
    def __init__(self, layers):
        super(LabResNet, self).__init__()
        self.conv = nn.Conv2d(in_channels=3, out_channels=16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self.make_residual_layer(in_channels=16, out_channels=16, blocks=layers[0], stride=1)
        self.layer2 = self.make_residual_layer(in_channels=16, out_channels=32, blocks=layers[1], stride=1)
        self.layer3 = self.make_residual_layer(in_channels=32, out_channels=64, blocks=layers[2], stride=1)
        self.avg_pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(1024, 10)
        self.logsoftmax = nn.LogSoftmax(dim=1)

    def make_residual_layer(self, in_channels, out_channels, blocks, stride=1):
        downsample = None
        layers = []
        if in_channels != out_channels:
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        layers.append(LabResidualBlock(in_channels, out_channels, stride, downsample))
        self.in_channels = out_channels
        for i in range(1, blocks):
            layers.append(LabResidualBlock(out_channels, out_channels))
        residual_layer = nn.Sequential(*layers)
        return residual_layer

    def forward(self, x):
        x = self.conv(x)
        x = self.bn(x)
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.avg_pool(x)
        x = x.view(x.size(0), -1)
        x = self.fc(x)
        x = self.logsoftmax(x)
        return x


# ---------------------------------------------------------------- helpers


def randomize(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and random BatchNorm running statistics, so that every tensor matters in eval mode."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.2)
            elif name.endswith("num_batches_tracked"):
                t.fill_(int(torch.randint(1, 1000, (), generator=g)))
    return model.eval()


def real_batch(cifar_dir, n: int = 40) -> tuple[torch.Tensor, torch.Tensor, object]:
    test = load_image_folder(cifar_dir, "test", limit=n)
    return normalize(test.images), test.labels, test


# ---------------------------------------------------------------- parameter counts and key names


@pytest.mark.parametrize("layers, expected", [((2, 2, 2), 205_338), ((1, 1, 1), 108_122), ((3, 3, 3), 302_554)])
def test_parameter_count_matches_the_lab(layers, expected):
    assert param_count(ResNet(layers)) == expected
    assert param_count(LabResNet(list(layers))) == expected  # the lab's class agrees: the reference is right too
    assert describe(layers).params == expected


def test_state_dict_keys_are_the_labs():
    ours = ResNet((2, 2, 2)).state_dict()
    lab = LabResNet([2, 2, 2]).state_dict()
    assert list(ours) == list(lab)  # same names, same order
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in lab.items()}
    for key in [
        "conv.weight", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked",
        "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias", "layer1.0.bn1.running_mean",
        "layer1.0.bn1.running_var", "layer1.0.conv2.weight", "layer1.0.bn2.weight", "layer1.1.conv1.weight",
        "layer2.0.downsample.0.weight", "layer2.0.downsample.1.weight", "layer2.0.downsample.1.bias",
        "layer2.0.downsample.1.running_mean", "layer2.0.downsample.1.running_var",
        "layer3.0.downsample.0.weight", "layer3.1.bn2.running_var", "fc.weight", "fc.bias",
    ]:
        assert key in ours, key
    # no shortcut where the channel count stays 16 -> 16
    assert not any(k.startswith("layer1.0.downsample") for k in ours)
    assert tuple(ours["fc.weight"].shape) == (10, 1024)
    assert tuple(ours["layer2.0.downsample.0.weight"].shape) == (32, 16, 3, 3)


def test_stem_relu_is_never_called_and_output_is_log_probabilities():
    model = randomize(ResNet((1, 1, 1)), seed=3)
    called = []
    model.relu.register_forward_hook(lambda *a: called.append(1))
    out = model(torch.randn(4, 3, 32, 32))
    assert called == []  # the lab defines the stem's ReLU and never calls it
    assert out.shape == (4, 10)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(4))


# ---------------------------------------------------------------- round trips through real .pth files


@pytest.mark.parametrize("layers", [(2, 2, 2), (1, 1, 1)])
def test_our_checkpoint_loads_into_the_labs_class_and_gives_the_same_outputs(layers, tmp_path, cifar_dir):
    ours = randomize(ResNet(layers), seed=1)
    path = tmp_path / "ours.pth"
    checkpoint.save_state_dict(ours, path)  # how runs save their epoch checkpoints

    lab = LabResNet(list(layers)).eval()
    lab.load_state_dict(torch.load(path), strict=True)  # the lab's own loading code
    x, _, _ = real_batch(cifar_dir)
    with torch.no_grad():
        torch.testing.assert_close(lab(x), ours(x), rtol=0, atol=1e-5)
    for k, v in ours.state_dict().items():
        assert torch.equal(lab.state_dict()[k], v), k


@pytest.mark.parametrize("layers", [(2, 2, 2), (1, 1, 1)])
def test_labs_checkpoint_loads_into_ours_via_the_checkpoint_loader(layers, tmp_path, cifar_dir):
    lab = randomize(LabResNet(list(layers)), seed=2)
    path = tmp_path / "cifar10_model_epoch_199.pth"
    torch.save(lab.state_dict(), path)  # as the notebook saves

    state = checkpoint.read_state_dict(path)
    assert checkpoint.infer_layers(state) == layers
    ours = ResNet(layers)
    checkpoint.load_into(ours, state, str(path), layers)
    ours.eval()
    x, y, split = real_batch(cifar_dir)
    with torch.no_grad():
        lab_out = lab(x)
        torch.testing.assert_close(ours(x), lab_out, rtol=0, atol=1e-5)
        # also in the channels_last layout the trainer uses
        torch.testing.assert_close(ours.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last)),
                                   lab_out, rtol=0, atol=1e-4)

    # evaluate_checkpoint reads the layers off the file and agrees with the lab's model on real test images
    result = evaluate.evaluate_checkpoint(str(path), split, torch.device("cpu"))
    assert result.n == len(y)
    assert result.predictions == lab_out.argmax(1).tolist()
    assert result.accuracy == pytest.approx(float((lab_out.argmax(1) == y).float().mean()))
    assert result.nll == pytest.approx(float(F.nll_loss(lab_out, y)), rel=1e-5)
    assert np.asarray(result.confusion).sum() == len(y)


def test_a_run_checkpoint_is_a_plain_state_dict_the_lab_loads(tiny_run, cifar_dir):
    run_dir, proc, _ = tiny_run
    assert proc.returncode == 0, proc.stderr
    path = run_dir / "checkpoints" / "cifar10_model_epoch_0.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)  # no pickled classes: weights only
    assert type(state) in (dict, collections.OrderedDict)
    assert all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items())
    assert not any(k.startswith("_orig_mod.") for k in state)
    assert all(v.is_contiguous() for v in state.values())  # not channels_last: plain tensors
    lab = LabResNet([1, 1, 1]).eval()
    lab.load_state_dict(state, strict=True)
    ours = ResNet((1, 1, 1))
    checkpoint.load_into(ours, checkpoint.read_state_dict(path), str(path), (1, 1, 1))
    x, _, _ = real_batch(cifar_dir, n=20)
    with torch.no_grad():
        out = lab(x)
        torch.testing.assert_close(ours.eval()(x), out, rtol=0, atol=1e-5)
    assert torch.isfinite(out).all()


def test_checkpoint_for_other_layers_names_the_layers_and_shapes(tmp_path):
    path = tmp_path / "small.pth"
    torch.save(LabResNet([1, 1, 1]).state_dict(), path)
    state = checkpoint.read_state_dict(path)
    with pytest.raises(UserError) as e:
        checkpoint.load_into(ResNet((2, 2, 2)), state, str(path), (2, 2, 2))
    msg = str(e.value)
    assert "saved for layers 1,1,1, not 2,2,2" in msg and "\n" not in msg

    # same keys, other shapes: a 100-class head
    other = LabResNet([1, 1, 1]).state_dict()
    other["fc.weight"] = torch.zeros(100, 1024)
    other["fc.bias"] = torch.zeros(100)
    with pytest.raises(UserError) as e:
        checkpoint.load_into(ResNet((1, 1, 1)), other, "x.pth", (1, 1, 1))
    assert "fc.weight (100, 1024) vs (10, 1024)" in str(e.value)


def test_info_json_reports_the_labs_parameter_count(capsys):
    from cli_helpers import run_in_process  # what info prints, from cli.main in this process

    proc = run_in_process(capsys, "--no-ui", "info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["param_count"] == 205_338
    assert info["layers"] == [2, 2, 2]
    names = []

    def walk(node):
        names.append(node["name"])
        for c in node["children"]:
            walk(c)

    walk(info["tree"])
    assert "layer2.0.downsample" in names and "fc" in names and "relu" not in names
    proc = run_in_process(capsys, "--no-ui", "info", "--json", "--layers", "3,3,3")
    assert json.loads(proc.stdout)["param_count"] == 302_554

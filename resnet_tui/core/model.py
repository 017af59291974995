"""The lab's ResNet, module for module, so that state_dicts load both ways with strict=True.

Kept from the notebook on purpose, because they define the model and its 205,338 parameters
for layers=[2,2,2]: stride 1 everywhere; a 3x3 conv + BatchNorm shortcut where the channel
count changes; no ReLU after the stem's BatchNorm (the notebook defines `relu` and never calls
it); AvgPool2d(8) on 32x32 maps, so Linear(1024, 10); LogSoftmax output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


class ResidualBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, downsample: nn.Module | None = None, skip: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.skip = skip  # False: the plain (non-residual) block of the ablation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.skip:
            residual = self.downsample(x) if self.downsample is not None else x
            out = out + residual  # the skip connection
        return self.relu2(out)


class ResNet(nn.Module):
    def __init__(self, layers: list[int] | tuple[int, ...] = (2, 2, 2), skip: bool = True, num_classes: int = 10):
        super().__init__()
        self.skip = skip
        self.conv = nn.Conv2d(in_channels=3, out_channels=16, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)  # defined but never called, as in the lab
        self.layer1 = self.make_residual_layer(16, 16, layers[0])
        self.layer2 = self.make_residual_layer(16, 32, layers[1])
        self.layer3 = self.make_residual_layer(32, 64, layers[2])
        self.avg_pool = nn.AvgPool2d(8)
        self.fc = nn.Linear(1024, num_classes)
        self.logsoftmax = nn.LogSoftmax(dim=1)

    def make_residual_layer(self, in_channels: int, out_channels: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if in_channels != out_channels and self.skip:
            downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        blocks_ = [ResidualBlock(in_channels, out_channels, stride, downsample, skip=self.skip)]
        self.in_channels = out_channels
        blocks_ += [ResidualBlock(out_channels, out_channels, skip=self.skip) for _ in range(1, blocks)]
        return nn.Sequential(*blocks_)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = self.avg_pool(x)
        x = torch.flatten(x, 1)  # the lab's .view fails on channels_last tensors
        return self.logsoftmax(self.fc(x))


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@dataclass
class ModuleInfo:
    """One node of the architecture tree: what `info` prints and the Model screen shows."""

    name: str  # dotted state_dict prefix, "" for the root
    kind: str  # class name
    detail: str  # e.g. "3→16, 3x3"
    output_shape: tuple[int, ...]
    params: int  # including children
    children: list["ModuleInfo"]
    is_shortcut: bool = False  # a downsample shortcut (3x3 conv + BN)
    has_skip: bool = False  # a residual block whose output adds its input


def _detail(m: nn.Module) -> str:
    if isinstance(m, nn.Conv2d):
        return f"{m.in_channels}→{m.out_channels}, {m.kernel_size[0]}x{m.kernel_size[1]}, stride {m.stride[0]}"
    if isinstance(m, nn.BatchNorm2d):
        return str(m.num_features)
    if isinstance(m, nn.Linear):
        return f"{m.in_features}→{m.out_features}"
    if isinstance(m, nn.AvgPool2d):
        return f"{m.kernel_size}x{m.kernel_size}"
    return ""


def describe(layers: tuple[int, ...] = (2, 2, 2), skip: bool = True) -> ModuleInfo:
    """The architecture tree with each module's output shape (for one 3x32x32 image) and parameter count."""
    model = ResNet(layers, skip=skip)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = []
    for name, module in model.named_modules():
        hooks.append(module.register_forward_hook(lambda m, i, o, name=name: shapes.__setitem__(name, tuple(o.shape[1:]))))
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, 32, 32))
    for h in hooks:
        h.remove()

    def build(name: str, module: nn.Module) -> ModuleInfo:
        children = [build(f"{name}.{n}" if name else n, c) for n, c in module.named_children()]
        if isinstance(module, ResNet):
            # `relu` is never called in forward; leave it out of the tree rather than show a shape it never has
            children = [c for c in children if c.name != "relu"]
        return ModuleInfo(
            name=name,
            kind=type(module).__name__,
            detail=_detail(module),
            output_shape=shapes.get(name, ()),
            params=param_count(module),
            children=children,
            is_shortcut=name.endswith("downsample"),
            has_skip=isinstance(module, ResidualBlock) and module.skip,
        )

    return build("", model)

"""The residual lens: per-block diagnostics measured on the device every `lens_every` optimizer steps.

For each row (the stem, every residual or plain block, the fc head):
    ratio  ||F(x)|| / ||x||: a residual block's branch (bn2's output, before the add) over its identity path
           (x, or the downsample shortcut's output); a plain block's output over its input; the stem and fc have none
    grad   the L2 norm of the row's parameters' gradients (the stem: conv + bn; a block: its convs, BNs and shortcut)
    mean   the mean of the row's output activation (the fc row: the logits)
    std    its standard deviation

Measurement only: hooks read detached tensors under no_grad, use no RNG and change nothing, so the weights are
bit-identical with the lens on or off. Nothing is read back per step: each sampled step's values are written into
a device buffer that the trainer reads back with the losses (`read`, in its 0.25 s flush).
The lens does not attach to a torch.compile'd step model (its hooks would be traced and recompiled); the trainer
says so with a notice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from resnet_tui.core import events as ev
from resnet_tui.core.model import ResidualBlock, ResNet

QUANTITIES = ("ratio", "grad", "mean", "std")
PER_EPOCH = 50  # "auto": about this many measurements an epoch
MAX_SLOTS = 4096  # sampled steps held on the device between two read-backs (more are not measured)


def every_steps(lens_every: int | str, steps_per_epoch: int) -> int:
    """The sampling period in optimizer steps; 0 when the lens is off."""
    if lens_every == "auto":
        return max(1, round(steps_per_epoch / PER_EPOCH))
    return int(lens_every)


def row_names(model: ResNet) -> list[str]:
    """Stem, the blocks in order (their state_dict prefixes, e.g. layer2.0), fc."""
    blocks = [name for name, m in model.named_modules() if isinstance(m, ResidualBlock)]
    return ["stem", *blocks, "fc"]


@dataclass
class _Row:
    params: list[nn.Parameter]
    in_norm: Any = None  # 0-d device tensors of the current sampled step
    branch_norm: Any = None
    identity_norm: Any = None
    ratio: Any = None
    mean: Any = None
    std: Any = None


def _norm(t: torch.Tensor) -> torch.Tensor:
    return torch.linalg.vector_norm(t.detach(), dtype=torch.float32)


class Lens:
    """Hooks on a ResNet (the eager module) and its optimizer; call read() where the losses are read back."""

    def __init__(self, model: ResNet, optimizer: torch.optim.Optimizer, scheduler: Any, every: int, steps_per_epoch: int):
        self.every, self.nb, self.scheduler = every, steps_per_epoch, scheduler
        self.names = row_names(model)
        self.device = next(model.parameters()).device
        self.rows = [_Row(list(model.conv.parameters()) + list(model.bn.parameters()))]
        self.blocks = [m for m in model.modules() if isinstance(m, ResidualBlock)]
        self.rows += [_Row(list(b.parameters())) for b in self.blocks]
        self.rows.append(_Row(list(model.fc.parameters())))
        self.slots = min(steps_per_epoch // every + 2, MAX_SLOTS)
        self.buf = torch.zeros(self.slots, len(self.rows), len(QUANTITIES), device=self.device)
        self.steps: list[int] = []  # the global step (from 0) of each filled slot
        self.active = False
        self.handles = self._hook(model, optimizer)

    def _hook(self, model: ResNet, optimizer: torch.optim.Optimizer) -> list[Any]:
        h = [model.register_forward_pre_hook(self._begin), model.bn.register_forward_hook(self._stem_out),
             model.fc.register_forward_hook(self._fc_out), optimizer.register_step_pre_hook(self._end)]
        for i, block in enumerate(self.blocks, start=1):
            h.append(block.register_forward_pre_hook(lambda m, args, i=i: self._block_in(i, args[0])))
            h.append(block.bn2.register_forward_hook(lambda m, a, out, i=i: self._branch(i, out)))
            if block.downsample is not None:
                h.append(block.downsample.register_forward_hook(lambda m, a, out, i=i: self._identity(i, out)))
            h.append(block.register_forward_hook(lambda m, a, out, i=i: self._block_out(i, out)))
        return h

    def close(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []

    # -- forward: only a training forward with gradients, at a sampled step, with a free slot
    def _begin(self, module: nn.Module, args: Any) -> None:
        step = self.scheduler.last_epoch  # optimizer steps taken so far (resumed ones included)
        self.active = (module.training and torch.is_grad_enabled() and step % self.every == 0
                       and len(self.steps) < self.slots)

    def _act(self, row: _Row, out: torch.Tensor) -> None:
        with torch.no_grad():
            row.std, row.mean = torch.std_mean(out.detach().float())

    def _stem_out(self, m: nn.Module, a: Any, out: torch.Tensor) -> None:
        if self.active:
            self._act(self.rows[0], out)

    def _fc_out(self, m: nn.Module, a: Any, out: torch.Tensor) -> None:
        if self.active:
            self._act(self.rows[-1], out)

    def _block_in(self, i: int, x: torch.Tensor) -> None:
        if self.active:
            row = self.rows[i]
            row.in_norm = _norm(x)
            row.identity_norm = row.in_norm  # replaced by the downsample shortcut's output when there is one

    def _branch(self, i: int, out: torch.Tensor) -> None:
        if self.active:  # read now: a plain block's relu2 overwrites this tensor in place
            self.rows[i].branch_norm = _norm(out)

    def _identity(self, i: int, out: torch.Tensor) -> None:
        if self.active:
            self.rows[i].identity_norm = _norm(out)

    def _block_out(self, i: int, out: torch.Tensor) -> None:
        if not self.active:
            return
        row = self.rows[i]
        if self.blocks[i - 1].skip:
            row.ratio = row.branch_norm / row.identity_norm
        else:
            row.ratio = _norm(out) / row.in_norm
        self._act(row, out)

    # -- after backward, before the optimizer step: gradients, then the step's values into the device buffer
    def _end(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if not self.active:
            return
        self.active = False
        nan = torch.tensor(math.nan, device=self.device)
        values = []
        with torch.no_grad():
            for row in self.rows:
                grads = [p.grad for p in row.params if p.grad is not None]
                grad = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else nan
                values.append(torch.stack([_f(row.ratio, nan), grad.float(), _f(row.mean, nan), _f(row.std, nan)]))
            self.buf[len(self.steps)].copy_(torch.stack(values))
        self.steps.append(self.scheduler.last_epoch)
        for row in self.rows:
            row.ratio = row.mean = row.std = None

    def read(self) -> list[ev.LensMeasure]:
        """The measurements since the last read, as events (one transfer); empties the buffer."""
        if not self.steps:
            return []
        vals = self.buf[: len(self.steps)].tolist()
        out = []
        for step, rows in zip(self.steps, vals):
            columns = list(zip(*rows))
            out.append(ev.LensMeasure(step // self.nb + 1, step % self.nb + 1, step + 1, list(self.names),
                                      {q: list(columns[k]) for k, q in enumerate(QUANTITIES)}))
        self.steps = []
        return out


def _f(t: Any, nan: torch.Tensor) -> torch.Tensor:
    return nan if t is None else t.float()


def attach(lens_every: int | str, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
           steps_per_epoch: int, compiled: bool) -> tuple[Lens | None, str]:
    """A Lens on the model, or None and why not ("" when it is simply off)."""
    every = every_steps(lens_every, steps_per_epoch)
    if every <= 0 or not isinstance(model, ResNet):
        return None, ""
    if compiled:
        return None, "the lens is off with --compile (its hooks would be compiled into the graph); train without --compile to measure it"
    return Lens(model, optimizer, scheduler, every, steps_per_epoch), ""

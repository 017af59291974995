"""The on-device data pipeline and the training loop's hot path: augmentation, exactness against a plain loop,
no per-step host syncs, and the compile fallback."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_tui.core import events as ev
from resnet_tui.core import train as train_mod
from resnet_tui.core.config import TrainConfig
from resnet_tui.core.data import DeviceBatches, Split, epoch_generator, load_data, normalize, translate_and_flip
from resnet_tui.core.model import ResNet


@pytest.fixture(scope="module")
def tiny_splits(cifar_dir):
    return load_data(str(cifar_dir), None, limit_train=96, limit_eval=40)


def test_translate_and_flip_moves_pixels_as_asked():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1  # no zeros: padding is visible
    shifts = torch.tensor([[0, 0], [1, -2]])
    flips = torch.tensor([True, False])
    out = translate_and_flip(x, shifts, flips, pad=2)
    assert torch.equal(out[0, 0], x[0, 0].flip(-1))  # no shift, flipped
    # shift (dy=1, dx=-2): output[i, j] = input[i + 1, j - 2], zero where that falls outside
    expected = torch.zeros(6, 6)
    expected[:5, 2:] = x[1, 0, 1:, :4]
    assert torch.equal(out[1, 0], expected)


def test_augmented_batches_keep_labels_aligned_and_values_in_range(tiny_splits):
    train_split = tiny_splits[0]
    data = DeviceBatches(train_split, torch.device("cpu"))
    seen = []
    g = epoch_generator(7, 0)
    perm = torch.randperm(len(train_split), generator=g)
    for b, (x, y) in enumerate(data.train_epoch(0, 32, seed=7, augment=True)):
        assert x.shape[1:] == (3, 32, 32) and x.dtype == torch.float32
        assert x.min() >= -1.0 and x.max() <= 1.0
        idx = perm[b * 32 : (b + 1) * 32]
        assert torch.equal(y, train_split.labels[idx])  # labels follow their images
        # each augmented image is a shifted/flipped copy of its source: the centre 24x24 of the source,
        # in some flip, appears in the output (shifts are at most 4 pixels)
        src = normalize(train_split.images[idx])
        for i in range(len(y)):
            centre = src[i, :, 4:28, 4:28]
            found = any(
                torch.equal(cand[:, 4 + dy : 28 + dy, 4 + dx : 28 + dx], centre)
                for cand in (x[i], x[i].flip(-1))
                for dy in range(-4, 5)
                for dx in range(-4, 5)
            )
            assert found, f"batch {b} image {i} is not a translate/flip of its source"
        seen.append(y)
    assert sum(len(s) for s in seen) == len(train_split)


def test_data_order_depends_only_on_seed_and_epoch(tiny_splits):
    data = DeviceBatches(tiny_splits[0], torch.device("cpu"))
    a = [y for _, y in data.train_epoch(3, 32, seed=1, augment=True)]
    b = [y for _, y in data.train_epoch(3, 32, seed=1, augment=True)]
    c = [y for _, y in data.train_epoch(4, 32, seed=1, augment=True)]
    assert all(torch.equal(p, q) for p, q in zip(a, b))
    assert not all(torch.equal(p, q) for p, q in zip(a, c))
    # starting mid-epoch replays exactly the remaining batches
    tail = [y for _, y in data.train_epoch(3, 32, seed=1, augment=True, start_batch=1)]
    assert all(torch.equal(p, q) for p, q in zip(a[1:], tail)) and len(tail) == len(a) - 1


def test_lab_preset_matches_a_plain_reference_loop(tiny_splits, tmp_path):
    """Augmentation off, CPU, fp32: the trainer's per-batch losses equal a plain NCHW fp32 loop's, to a tight tolerance.
    (fp32 named: on a CPU where bf16 measured faster, AMD Zen 4, the lab preset's `auto` trains in bf16.)"""
    train_split, test_split = tiny_splits
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=32, epochs=2, lr=0.01, device="cpu", precision="fp32")
    got: list[float] = []
    train_mod.train(cfg, tmp_path / "run", lambda e: got.append(e.loss) if isinstance(e, ev.BatchEnd) else None,
                    splits=(train_split, test_split))

    # the reference: the lab's loop over the same batches
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    model = ResNet(cfg.layers)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr)
    expected = []
    for epoch in range(cfg.epochs):
        perm = torch.randperm(len(train_split), generator=epoch_generator(cfg.seed, epoch))
        for start in range(0, len(train_split), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            images = (train_split.images[idx].float() / 255 - 0.5) / 0.5
            loss = F.nll_loss(model(images), train_split.labels[idx])
            model.zero_grad()
            loss.backward()
            opt.step()
            expected.append(loss.item())
    assert len(got) == len(expected) == 2 * 3
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("lens_every, transfers", [(0, 2), (1, 4)])
def test_per_batch_series_is_complete_without_per_step_syncs(lens_every, transfers, tiny_splits, tmp_path, monkeypatch):
    """Losses are read back in one transfer per flush, never per batch; every batch still gets its event and line.
    The residual lens, measuring at every step here, adds one transfer per flush, not one per batch."""
    monkeypatch.setattr(train_mod, "FLUSH_SECONDS", 1e9)  # only the end-of-epoch flush
    calls = {"item": 0, "tolist": 0}
    real_item, real_tolist = torch.Tensor.item, torch.Tensor.tolist

    def counting(name, real):
        def wrapper(self, *a, **k):
            calls[name] += 1
            return real(self, *a, **k)
        return wrapper

    batch_events = []
    in_loop = {"on": False}

    def emit(e):
        if isinstance(e, ev.TrainStart):
            in_loop["on"] = True
            monkeypatch.setattr(torch.Tensor, "item", counting("item", real_item))
            monkeypatch.setattr(torch.Tensor, "tolist", counting("tolist", real_tolist))
        elif isinstance(e, ev.BatchEnd):
            batch_events.append(e)
        elif isinstance(e, ev.EpochEnd) and e.epoch == 2:
            monkeypatch.setattr(torch.Tensor, "item", real_item)
            monkeypatch.setattr(torch.Tensor, "tolist", real_tolist)

    cfg = TrainConfig(layers=(1, 1, 1), batch_size=16, epochs=2, device="cpu", lens_every=lens_every)  # 6 batches an epoch
    train_mod.train(cfg, tmp_path / "run", emit, splits=tiny_splits)
    assert [(e.epoch, e.batch) for e in batch_events] == [(ep, b) for ep in (1, 2) for b in range(1, 7)]
    assert calls["item"] == 0
    assert calls["tolist"] == transfers  # one read-back per epoch for 12 batches (and one of the lens's buffer)
    lines = [json.loads(s) for s in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(o["epoch"], o["batch"]) for o in lines if o["event"] == "batch"] == [(ep, b) for ep in (1, 2) for b in range(1, 7)]


def test_compile_unavailable_falls_back_with_a_notice(tiny_splits, tmp_path, monkeypatch):
    def broken_compile(*a, **k):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(torch, "compile", broken_compile)
    seen = []
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=32, epochs=1, device="cpu", compile=True)
    end = train_mod.train(cfg, tmp_path / "run", seen.append, splits=tiny_splits)
    assert end.status == "finished"
    notices = [e.text for e in seen if isinstance(e, ev.Notice)]
    assert any("torch.compile unavailable" in n and "no compiler here" in n for n in notices)


def test_compile_failing_at_first_call_falls_back(tiny_splits, tmp_path, monkeypatch):
    class FailsOnCall(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            raise RuntimeError("inductor failed")

    monkeypatch.setattr(torch, "compile", lambda model, **k: FailsOnCall(model))
    seen = []
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=32, epochs=1, device="cpu", compile=True)
    end = train_mod.train(cfg, tmp_path / "run", seen.append, splits=tiny_splits)
    assert end.status == "finished"
    assert sum(isinstance(e, ev.BatchEnd) for e in seen) == 3
    assert any(isinstance(e, ev.Notice) and "torch.compile failed" in e.text for e in seen)


def test_fast_preset_trains_with_its_recipe(tiny_splits, tmp_path):
    from resnet_tui.core.config import build_config

    cfg = build_config({}, {"preset": "fast", "epochs": 2, "layers": (1, 1, 1), "device": "cpu"}, "cpu")
    assert cfg.augment and cfg.nesterov and cfg.momentum == 0.9 and cfg.label_smoothing == 0.1
    assert cfg.batch_size == 64 and cfg.lr == pytest.approx(0.2 * 64 / 512)
    lrs = []
    end = train_mod.train(cfg, tmp_path / "run", lambda e: lrs.append(e.lr) if isinstance(e, ev.BatchEnd) else None, splits=tiny_splits)
    assert end.status == "finished"
    # warm-up then linear decay: rises to the peak, then falls
    peak = lrs.index(max(lrs))
    assert 0 < peak < len(lrs) - 1
    assert all(a <= b for a, b in zip(lrs[:peak], lrs[1 : peak + 1]))
    assert all(a >= b for a, b in zip(lrs[peak:], lrs[peak + 1 :]))


def test_evaluation_uses_large_batches_under_inference_mode(tiny_splits, monkeypatch):
    from resnet_tui.core import evaluate as evaluate_mod

    sizes = []
    model = ResNet((1, 1, 1))
    real_forward = model.forward

    def spy(x):
        sizes.append((x.shape[0], torch.is_inference_mode_enabled()))
        return real_forward(x)

    monkeypatch.setattr(model, "forward", spy)
    split = Split(tiny_splits[1].images.repeat(15, 1, 1, 1), tiny_splits[1].labels.repeat(15), tiny_splits[1].classes, "x")
    r = evaluate_mod.evaluate_model(model, DeviceBatches(split, torch.device("cpu")), split.classes)
    assert r is not None and r.n == 600
    assert sizes == [(600, True)]  # one batch: the eval batch is >= 500
    assert evaluate_mod.EVAL_BATCH >= 500


def test_the_objects_that_exist_when_training_starts_are_out_of_the_collectors_reach_until_it_ends(tiny_splits, tmp_path):
    """A full collection walks every object in the process (400,000 after importing torch), holding the GIL: during a
    run the objects that existed at its start are frozen (gc.freeze), and unfrozen at its end, also after a failure."""
    import gc

    from resnet_tui.core.gc_freeze import objects_frozen

    before = gc.get_freeze_count()
    frozen_at: list[int] = []
    cfg = TrainConfig(layers=(1, 1, 1), batch_size=32, epochs=1, lr=0.01, device="cpu", precision="fp32")
    end = train_mod.train(cfg, tmp_path / "run", lambda e: frozen_at.append(gc.get_freeze_count()) if isinstance(e, ev.BatchEnd) else None,
                          splits=tiny_splits)
    assert end.status == "finished" and len(frozen_at) == 3
    assert min(frozen_at) > 100_000  # torch's objects, the data set's, the model's: all frozen while it trains
    assert gc.get_freeze_count() == before == 0  # and back in the collector's reach afterwards

    with objects_frozen():  # two runs in one process (the app's and a sweep's): frozen until the last one ends
        with pytest.raises(RuntimeError):
            with objects_frozen():
                raise RuntimeError("a run that fails")
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0

"""Evaluation: mean NLL, accuracy, confusion matrix and per-class precision, recall and F1."""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from resnet_tui.core.data import DeviceBatches, Split
from resnet_tui.core.events import EvalResult  # defined with the events; imported from here too

EVAL_BATCH = 1000


def metrics_from_predictions(labels: np.ndarray, predictions: np.ndarray, nll: float, classes: list[str]) -> EvalResult:
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    k = list(range(len(classes)))
    conf = confusion_matrix(labels, predictions, labels=k)
    p, r, f1, _ = precision_recall_fscore_support(labels, predictions, labels=k, zero_division=0)
    return EvalResult(
        nll=float(nll),
        accuracy=float((labels == predictions).mean()) if len(labels) else 0.0,
        n=int(len(labels)),
        classes=list(classes),
        confusion=conf.tolist(),
        precision=[float(x) for x in p],
        recall=[float(x) for x in r],
        f1=[float(x) for x in f1],
        predictions=predictions.tolist(),
        labels=labels.tolist(),
    )


def evaluate_model(
    model: nn.Module,
    data: DeviceBatches,
    classes: list[str] | tuple[str, ...],
    batch_size: int = EVAL_BATCH,
    autocast: torch.dtype | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tta: bool = False,
) -> EvalResult | None:
    """Evaluate on all of `data`. Sums stay on the device; one host sync at the end. None if stopped.
    tta: test-time augmentation, the mean of the class probabilities of each image and its mirror image.
    The result keeps each image's class probabilities (result.probabilities, (n, classes) float32) for the app's views."""
    was_training = model.training
    model.eval()
    # MPS has no float64; a float32 sum of 10,000 losses is exact to about 1e-6 of itself
    nll_sum = torch.zeros((), dtype=torch.float32 if data.device.type == "mps" else torch.float64, device=data.device)
    preds, probs = [], []
    done = 0
    try:
        with torch.inference_mode(), torch.autocast(data.device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            for x, y in data.eval_batches(batch_size):
                if should_stop is not None and should_stop():
                    return None
                out = model(x).float()
                if tta:  # the model outputs log-probabilities: log((p + p_flipped) / 2)
                    out = torch.logaddexp(out, model(torch.flip(x, dims=[3])).float()) - math.log(2)
                nll_sum += F.nll_loss(out, y, reduction="sum").to(nll_sum.dtype)
                preds.append(out.argmax(1))
                probs.append(out.exp())  # kept on the device with the rest; read back once at the end
                done += len(y)
                if on_progress is not None:
                    on_progress(done, data.n)
    finally:
        model.train(was_training)
    predictions = torch.cat(preds).cpu().numpy() if preds else np.zeros(0, dtype=np.int64)
    labels = data.labels.cpu().numpy()
    result = metrics_from_predictions(labels, predictions, nll_sum.item() / max(data.n, 1), list(classes))
    result.tta = tta
    result.probabilities = (torch.cat(probs).cpu().numpy() if probs else np.zeros((0, len(classes)))).astype(np.float32, copy=False)
    return result


def evaluate_checkpoint(
    checkpoint: str,
    split: Split,
    device: torch.device,
    layers: tuple[int, int, int] | None = None,
    skip: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    tta: bool = False,
) -> EvalResult | None:
    """Load a checkpoint (path or URL, weights only) and evaluate it. Layers are read off the checkpoint when not given;
    its head must have one output per class of `split` (a one-line error otherwise)."""
    from resnet_tui.core.checkpoint import model_from_state, read_state_dict

    state = read_state_dict(checkpoint)
    model = model_from_state(state, checkpoint, layers, skip, num_classes=len(split.classes))
    model = model.to(device).to(memory_format=torch.channels_last)
    return evaluate_model(model, DeviceBatches(split, device), split.classes, on_progress=on_progress, should_stop=should_stop,
                          tta=tta)

"""RunProgress: the rate of the last few seconds and the ETA from it (the run's average stays for the end), each
epoch's evaluation, and the learning rate of each batch, folded from the events as the trainer emits them."""

from __future__ import annotations

import math

import pytest

from resnet_tui.core import events as ev
from resnet_tui.core.evaluate import EvalResult
from resnet_tui.core.progress import RATE_WINDOW_SECONDS, RunProgress

BATCH = 10  # images a batch


def start(epochs: int = 2, batches_per_epoch: int = 100, **kwargs) -> ev.TrainStart:
    return ev.TrainStart({"epochs": epochs, "batch_size": BATCH}, "run", "CPU", 1, BATCH * batches_per_epoch, 50,
                         batches_per_epoch, **kwargs)


def timed_batches(first: int, count: int, seconds_each: float, t0: float, batches_per_epoch: int = 100,
                  flush_every: int = 1, lr: float = 0.1) -> list[ev.BatchEnd]:
    """Batches `first`..`first + count - 1` of the run (counted from 1), each taking `seconds_each`; the trainer
    reads losses back in groups, and every batch of a group carries the group's time."""
    out = []
    for i in range(count):
        n = first + i
        group_end = min(first + count - 1, first + (i // flush_every + 1) * flush_every - 1)
        t = t0 + (group_end - first + 1) * seconds_each
        epoch, b = (n - 1) // batches_per_epoch + 1, (n - 1) % batches_per_epoch + 1
        out.append(ev.BatchEnd(epoch, b, 2.0 - n / 1000, n * BATCH, t, lr))
    return out


def eval_result(nll: float, accuracy: float) -> EvalResult:
    return EvalResult(nll, accuracy, 50, ["a", "b"], [[25, 0], [0, 25]], [1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [], [])


def test_the_rate_follows_the_last_seconds_while_the_average_lags():
    p = RunProgress()
    p.apply(start())
    fast = timed_batches(1, 100, 0.1, 0.0)  # 100 images/s for 10 s
    p.apply_all(fast)
    assert p.recent_images_per_sec == pytest.approx(100.0)
    slow = timed_batches(101, 40, 0.4, fast[-1].time)  # then 25 images/s for 16 s: another job took the GPU
    p.apply_all(slow)
    assert p.recent_images_per_sec == pytest.approx(25.0)
    assert p.images_per_sec == pytest.approx(1400 / 26.0)  # the average since the start: 53.8
    # 60 batches left at 0.4 s each, not at the average's 0.19 s
    assert p.eta_seconds == pytest.approx(60 * 0.4)


def test_the_rate_spans_whole_read_backs_of_batches_that_share_a_time():
    p = RunProgress()
    p.apply(start())
    p.apply_all(timed_batches(1, 120, 0.1, 0.0, flush_every=3))  # losses read back every 3 batches
    assert p.recent_images_per_sec == pytest.approx(100.0)
    assert p.eta_seconds == pytest.approx(80 * 0.1)
    t0, _, _ = p._recent[0]
    assert p._recent[-1][0] - t0 >= RATE_WINDOW_SECONDS  # the window reaches back a full window, no further
    assert p._recent[1][0] > p._recent[-1][0] - RATE_WINDOW_SECONDS


def test_a_fresh_run_has_a_rate_from_its_first_read_back():
    p = RunProgress()
    p.apply(start())
    assert math.isnan(p.eta_seconds)
    p.apply_all(timed_batches(1, 4, 0.5, 0.0, flush_every=4))  # one read-back: 4 batches at 2 s
    assert p.recent_images_per_sec == pytest.approx(20.0)
    assert p.eta_seconds == pytest.approx(196 * 0.5)


def test_a_resumed_run_measures_from_where_it_resumed_and_forgets_the_earlier_process():
    p = RunProgress()
    p.apply(start())
    p.apply_all(timed_batches(1, 50, 0.1, 0.0))
    p.apply(start(start_epoch=1, start_batch=51, resumed=True))  # a new process: its times go on from 5 s
    later = timed_batches(51, 2, 1.0, 5.0, flush_every=2)
    p.apply_all(later)
    assert p.recent_images_per_sec == p.images_per_sec  # one read-back, no time measured yet here: the average stands in
    p.apply_all(timed_batches(53, 10, 1.0, later[-1].time))
    assert p.recent_images_per_sec == pytest.approx(10.0)  # 1 s a batch, not the first process's 0.1 s


def test_each_epochs_evaluation_is_kept_for_the_chart():
    p = RunProgress()
    p.apply(start(epochs=3, batches_per_epoch=2))
    p.apply_all(timed_batches(1, 2, 0.1, 0.0, batches_per_epoch=2))
    p.apply(ev.EvalProgress(10, 50))
    assert p.evaluating
    p.apply(ev.EvalEnd(1, eval_result(1.5, 0.4)))
    assert not p.evaluating and p.eval_epoch == 1
    p.apply_all(timed_batches(3, 2, 0.1, 0.2, batches_per_epoch=2, lr=0.05))
    p.apply(ev.EvalEnd(2, eval_result(1.2, 0.55)))
    p.apply(ev.EvalEnd(None, eval_result(1.1, 0.6)))  # no epoch stated: the one trained last
    assert p.evals == {1: (1.5, 0.4), 2: (1.1, 0.6)}
    assert p.eval_result.accuracy == 0.6  # the latest, for the progress line
    assert p.lrs == [0.1, 0.1, 0.05, 0.05] and len(p.lrs) == len(p.xs) == len(p.losses)

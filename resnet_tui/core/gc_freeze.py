"""Keep Python's cyclic garbage collector off the objects that exist when training starts.

A full (generation 2) collection walks every tracked object in the process, holding the GIL: about 400,000 after
importing torch, 490,000 with the app's widgets. On the development machine one came in the middle of a short run
and took 144 ms headless and 196 ms in the app (1.7% and 2.3% of an 8.5 s epoch of 1,024 images), while the
training thread and its OpenMP threads waited. Training makes few long-lived objects, so the ones that exist when
it starts are frozen (gc.freeze: left out of every collection) and unfrozen when it ends; garbage among them is
collected by the first full collection after that, as it would have been. Reference counting, which frees the
tensors of each step, is not affected.
"""

from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_runs = 0  # trainings of this process inside objects_frozen: when runs overlap, the last one to end unfreezes


@contextmanager
def objects_frozen() -> Iterator[None]:
    """While the block runs, the objects that existed at its start are out of the collector's reach."""
    global _runs
    with _lock:
        if _runs == 0:
            gc.freeze()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0:
                gc.unfreeze()

"""Linear-time checks in CPU time, not wall time.

A wall-clock budget ("under a second") fails on a loaded box and says nothing on a fast one. What
these tests guard is the shape: no quadratic (or worse) path on hostile input. So the function
runs on an input of size n and of size ``scale`` * n, each timed with ``time.process_time`` (this
process's CPU, whatever else the machine is doing), and the large run may cost at most
``GROWTH`` times ``scale`` what the small one did. Linear code grows ``scale``-fold; quadratic
code ``scale``-squared-fold, well past the bound. ``SLACK_S`` absorbs timer granularity on runs
too short to measure.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

SCALE = 8
GROWTH = 3.0
SLACK_S = 0.01


def cpu_seconds(fn: Callable[[T], object], arg: T, repeat: int = 3) -> float:
    """The least CPU time of ``repeat`` runs of ``fn(arg)`` (garbage collection held off)."""
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            fn(arg)
            best = min(best, time.process_time() - start)
        finally:
            gc.enable()
    return best


def assert_linear(
    fn: Callable[[T], object], make: Callable[[int], T], n: int, *, what: str = ""
) -> None:
    """``fn`` on ``make(SCALE * n)`` costs at most ``GROWTH * SCALE`` times ``make(n)``."""
    small_arg, big_arg = make(n), make(SCALE * n)
    small = cpu_seconds(fn, small_arg)
    big = cpu_seconds(fn, big_arg, repeat=1)
    limit = GROWTH * SCALE * small + SLACK_S
    assert big <= limit, (
        f"{what or fn.__name__}: {SCALE}x the input took {big:.3f} s CPU against {small:.4f} s "
        f"(limit {limit:.3f} s): worse than linear"
    )

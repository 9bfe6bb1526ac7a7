"""Timing two things fairly in one run: adjacent pairs, alternating order, same heap.

Two biases made earlier figures say more about the order of the runs than about
kernelflow, and these helpers remove both:

- kernelflow keeps the records of the last 100 flow runs (``kernelflow.runs()``); a
  100,000-task map leaves ~600,000 objects alive, and every full garbage collection
  walks all of them, so each run is slower than the one before and whatever is timed
  later loses. Every timed run here starts from the same heap: no kept records, and a
  collected heap (``fresh_heap``).
- the machine drifts (other work, where the OS puts threads and processes) over
  seconds, so the two sides are timed in adjacent pairs whose order alternates
  (A-B, B-A, ...), and the figure is the median of the pairs' ratios, which a few
  disturbed pairs cannot move; the lowest and highest pair ratios are printed with it.
"""

from __future__ import annotations

import gc
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import kernelflow

T = TypeVar("T")


def fresh_heap() -> None:
    """Forget kernelflow's kept flow runs and collect, so a timed run starts like the others."""
    kernelflow.runs.clear()
    gc.collect()


@dataclass
class Pairs(Generic[T]):
    """What each side's runs returned, pair by pair (``first[i]`` and ``second[i]`` ran
    next to each other)."""

    first: list[T]
    second: list[T]


def alternating_pairs(
    first: Callable[[], T],
    second: Callable[[], T],
    pairs: int,
    warmup: int = 1,
    before_each: Callable[[], None] = fresh_heap,
) -> Pairs[T]:
    """Run ``first`` and ``second`` in ``pairs`` adjacent pairs, first-second then
    second-first and so on, ``before_each`` before every run; ``warmup`` pairs before
    those are run the same way and dropped (imports, thread and process start)."""
    kept: Pairs[T] = Pairs([], [])
    for index in range(warmup + pairs):
        results = {}
        order = ((0, first), (1, second)) if index % 2 == 0 else ((1, second), (0, first))
        for side, run in order:
            before_each()
            results[side] = run()
        if index >= warmup:
            kept.first.append(results[0])
            kept.second.append(results[1])
    return kept


@dataclass(frozen=True)
class Ratio:
    """The median of the pairs' ratios, with the lowest and highest."""

    median: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.median:.2f}x (pairs {self.low:.2f}x-{self.high:.2f}x)"


def pair_ratio(numerators: list[float], denominators: list[float]) -> Ratio:
    ratios = [top / bottom for top, bottom in zip(numerators, denominators, strict=True)]
    return Ratio(statistics.median(ratios), min(ratios), max(ratios))

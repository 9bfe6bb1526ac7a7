"""Timing kernelflow against the raw library it wraps, in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_task(run: Callable[[], object], n: int) -> float:
    """Seconds per task of one call of ``run`` (which runs ``n`` tasks)."""
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / n


def compare(
    raw: tuple[str, Callable[[], object]],
    ours: tuple[str, Callable[[], object]],
    n: int,
    budget: float,
    rounds: int = 5,
    note: str = "",
) -> float:
    """Time both, interleaved, best of ``rounds`` each (the machine is shared and noisy);
    print the figures and the ratio against ``budget``. Returns the ratio."""
    raw_times, our_times = [], []
    for _ in range(rounds):
        raw_times.append(per_task(raw[1], n))
        our_times.append(per_task(ours[1], n))
    raw_time, our_time = min(raw_times), min(our_times)
    ratio = our_time / raw_time
    print(f"{raw[0]:<26}{raw_time * 1e6:9.1f} us/task ({n} tasks{note})")
    print(f"{ours[0]:<26}{our_time * 1e6:9.1f} us/task")
    print(f"ratio: {ratio:.2f}x (budget <= {budget}x) -> {'OK' if ratio <= budget else 'OVER'}")
    return ratio


def report(rows: list[tuple[str, str, str, str, str, bool]]) -> int:
    """Print (name, figure, baseline, relative, budget, within budget) rows as a table;
    the exit status: 0 when every row is within its budget."""
    for name, figure, baseline, relative, budget, ok in rows:
        print(
            f"{name:<42} {figure:>22}  {baseline:<40} {relative:>9}  budget {budget:<9} "
            f"{'ok' if ok else 'OVER BUDGET'}"
        )
    return 0 if all(row[-1] for row in rows) else 1

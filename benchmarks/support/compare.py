"""Timing kernelflow against the raw library it wraps, in the same run."""

from __future__ import annotations

import time
from collections.abc import Callable


def per_task(run: Callable[[], object], n: int) -> float:
    """Seconds per task of one call of ``run`` (which runs ``n`` tasks)."""
    start = time.perf_counter()
    run()
    return (time.perf_counter() - start) / n


def report(rows: list[tuple[str, str, str, str, str, bool]]) -> int:
    """Print (name, figure, baseline, relative, budget, within budget) rows as a table;
    the exit status: 0 when every row is within its budget."""
    for name, figure, baseline, relative, budget, ok in rows:
        print(
            f"{name:<42} {figure:>22}  {baseline:<40} {relative:>9}  budget {budget:<9} "
            f"{'ok' if ok else 'OVER BUDGET'}"
        )
    return 0 if all(row[-1] for row in rows) else 1

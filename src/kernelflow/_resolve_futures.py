"""``resolve_futures_to_states`` and ``resolve_futures_to_results`` (``prefect.futures``).

Both take any value, find the futures in it (in lists, tuples, sets, dicts and their
keys, dataclass instances and pydantic models) and give the same structure back with
each future swapped for its final state, or its result. Both wait for the futures.
"""

from __future__ import annotations

from typing import Any


def resolve_futures_to_states(expr: Any) -> Any:
    """``expr`` with each future replaced by its final State (waits for them)."""
    from kernelflow._engine.inputs import map_futures

    def final_state(future: Any) -> Any:
        future.wait()
        return future.state

    return map_futures(expr, final_state)


def resolve_futures_to_results(expr: Any) -> Any:
    """``expr`` with each future replaced by its result (waits for them).

    Raises:
        The exception of a future whose run did not complete (Prefect raises a plain
        ``Exception`` saying one did not; kernelflow raises the run's own).
    """
    from kernelflow._engine.inputs import map_futures

    return map_futures(expr, lambda future: future.result())

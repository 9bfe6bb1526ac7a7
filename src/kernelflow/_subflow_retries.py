"""A flow's retry reuses the subflow runs that completed in an earlier attempt (Prefect 3).

When a flow with ``retries`` fails after one of its subflows completed, Prefect's retry
does not run that subflow again: the call gives the completed run's result. kernelflow
does the same. A subflow call is known by its flow's name and its place among the calls
of that flow in the attempt (the first ``child()``, the second...), as Prefect's dynamic
key counts them; it is reused when the call in the earlier attempt completed with the
same parameters. Only flows with ``retries`` keep this book, so other subflow calls pay
nothing.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from typing import Any

from kernelflow._context import flow_run_context

_books: weakref.WeakKeyDictionary[Any, _Book] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


# Plain classes, not dataclasses: this module loads with kernelflow, and making a
# dataclass costs a new process about half a millisecond (see _engine/effects.py).
class _Book:
    """The subflow calls of one flow run, across its attempts."""

    __slots__ = ("attempt", "calls", "completed")

    def __init__(self) -> None:
        self.attempt = 0
        self.calls: Counter[str] = Counter()
        self.completed: dict[tuple[str, int], Any] = {}  # -> FlowRun


class Call:
    """One subflow call in a flow run that may retry: where to book its outcome."""

    __slots__ = ("parent", "key", "reused")

    def __init__(self, parent: Any, key: tuple[str, int], reused: Any = None) -> None:
        self.parent = parent
        self.key = key
        self.reused = reused  # the earlier attempt's final state, when it can stand for this call


def subflow_call(flow: Any, args: tuple, kwargs: dict) -> Call | None:
    """Book a subflow call of ``flow``; None outside a flow run that may retry."""
    ctx = flow_run_context.get()
    if ctx is None or not getattr(ctx.flow, "retries", 0):
        return None
    parent = ctx.flow_run
    attempt = 1 + sum(state.name == "Retrying" for state in parent.history)
    with _lock:
        book = _books.setdefault(parent, _Book())
        if book.attempt != attempt:  # a new attempt counts its calls from the start
            book.attempt, book.calls = attempt, Counter()
        key = (flow.name, book.calls[flow.name])
        book.calls[flow.name] += 1
        earlier = book.completed.get(key)
    if earlier is None or attempt == 1:
        return Call(parent, key)
    try:
        same = earlier.parameters == flow.bind_parameters(args, kwargs)
    except Exception:  # parameters that do not compare (arrays): run it again
        same = False
    return Call(parent, key, earlier.state if same is True else None)


def record(call: Call, state: Any) -> None:
    """Book the subflow run that ended in ``state``, if it completed."""
    if not state.is_completed():
        return
    run = next((r for r in reversed(call.parent.subflow_runs) if r.state is state), None)
    if run is not None:
        with _lock:
            _books[call.parent].completed[call.key] = run

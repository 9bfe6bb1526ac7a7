"""Observer fan-out for state changes: how presentation watches runs without steering them.

The engine calls ``notify`` after every accepted state change; widgets, graphs and
progress displays ``subscribe``. An observer that raises is logged and dropped from that
one notification; it never fails or slows a run beyond its own cost.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelflow.states import State

Observer = Callable[[Any, "State | None", "State"], None]
"""Called as ``observer(run, old_state, new_state)``; ``run`` is a TaskRun or FlowRun."""

_logger = logging.getLogger("kernelflow.events")
_lock = threading.Lock()
# Tuples, replaced whole on (un)subscribe, so runs can read them without a lock.
_observers: tuple[Observer, ...] = ()
_flow_run_observers: tuple[Observer, ...] = ()


def subscribe(observer: Observer) -> Callable[[], None]:
    """Call ``observer(run, old, new)`` on every state change of every run.

    Returns:
        A function that unsubscribes the observer.
    """
    return _subscribe("_observers", observer)


def subscribe_flow_runs(observer: Observer) -> Callable[[], None]:
    """Call ``observer(flow_run, old, new)`` on every state change of the flow runs
    created from now on.

    For watchers that care about flow runs only (the notebook's flow display): task
    runs' state changes, thousands a second in a map, never reach them.

    Returns:
        A function that unsubscribes the observer (from flow runs created afterwards).
    """
    return _subscribe("_flow_run_observers", observer)


def _subscribe(registry: str, observer: Observer) -> Callable[[], None]:
    def update(change: Callable[[tuple[Observer, ...]], tuple[Observer, ...]]) -> None:
        with _lock:
            globals()[registry] = change(globals()[registry])

    update(lambda observers: (*observers, observer))
    return lambda: update(lambda observers: tuple(o for o in observers if o is not observer))


def has_observers() -> bool:
    return bool(_observers)


def flow_run_observers() -> tuple[Observer, ...]:
    """The observers a new flow run starts with as its own."""
    return _flow_run_observers


def notify(run: Any, old: State | None, new: State, observers: tuple[Observer, ...] = ()) -> None:
    """Tell the global observers, then the run's own ones, that ``run`` moved to ``new``."""
    for observer in (*_observers, *observers) if observers else _observers:
        try:
            observer(run, old, new)
        except Exception:
            _logger.exception("A state observer (%r) raised; the run goes on.", observer)

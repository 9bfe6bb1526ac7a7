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


class _Registry:
    """Observers held in a tuple, replaced whole on (un)subscribe, so that runs read it
    without taking a lock."""

    def __init__(self) -> None:
        self.observers: tuple[Observer, ...] = ()
        self._lock = threading.Lock()

    def subscribe(self, observer: Observer) -> Callable[[], None]:
        with self._lock:
            self.observers = (*self.observers, observer)

        def unsubscribe() -> None:
            with self._lock:
                self.observers = tuple(o for o in self.observers if o is not observer)

        return unsubscribe


# Every run's observers; the engine reads ``every_run.observers`` (a tuple) without a
# call, so a state change costs nothing for observers while none is subscribed.
every_run = _Registry()
_new_flow_runs = _Registry()


def subscribe(observer: Observer) -> Callable[[], None]:
    """Call ``observer(run, old, new)`` on every state change of every run.

    Returns:
        A function that unsubscribes the observer.
    """
    return every_run.subscribe(observer)


def subscribe_flow_runs(observer: Observer) -> Callable[[], None]:
    """Call ``observer(flow_run, old, new)`` on every state change of the flow runs
    created from now on.

    For watchers that care about flow runs only (the notebook's flow display): task
    runs' state changes, thousands a second in a map, never reach them.

    Returns:
        A function that unsubscribes the observer (from flow runs created afterwards).
    """
    return _new_flow_runs.subscribe(observer)


def has_observers() -> bool:
    return bool(every_run.observers)


def flow_run_observers() -> tuple[Observer, ...]:
    """The observers a new flow run starts with as its own."""
    return _new_flow_runs.observers


def notify(run: Any, old: State | None, new: State, observers: tuple[Observer, ...] = ()) -> None:
    """Tell the global observers, then the run's own ones, that ``run`` moved to ``new``."""
    everyone = every_run.observers
    for observer in (*everyone, *observers) if observers else everyone:
        try:
            observer(run, old, new)
        except Exception:
            _logger.exception("A state observer (%r) raised; the run goes on.", observer)

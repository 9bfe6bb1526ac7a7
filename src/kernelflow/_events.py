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
# A tuple, replaced whole on (un)subscribe, so notify can read it without a lock.
_observers: tuple[Observer, ...] = ()


def subscribe(observer: Observer) -> Callable[[], None]:
    """Call ``observer(run, old, new)`` on every state change of every run.

    Returns:
        A function that unsubscribes the observer.
    """
    global _observers
    with _lock:
        _observers = (*_observers, observer)

    def unsubscribe() -> None:
        global _observers
        with _lock:
            _observers = tuple(o for o in _observers if o is not observer)

    return unsubscribe


def has_observers() -> bool:
    return bool(_observers)


def notify(run: Any, old: State | None, new: State, observers: tuple[Observer, ...] = ()) -> None:
    """Tell the global observers, then the run's own ones, that ``run`` moved to ``new``."""
    for observer in (*_observers, *observers) if observers else _observers:
        try:
            observer(run, old, new)
        except Exception:
            _logger.exception("A state observer (%r) raised; the run goes on.", observer)

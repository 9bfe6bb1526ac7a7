"""Taking slots of named limits, written once for the sync and the asyncio API.

``acquisition(...)`` is a generator: it yields the seconds to wait before the next try
and returns the ``Lease`` once the slots are taken. ``sync`` drives it with
``time.sleep``, ``asyncio`` with ``asyncio.sleep``, so neither blocks the other's way
of waiting. On a Dask worker the slots are the cluster's instead (``_dask``).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from kernelflow.concurrency import _store
from kernelflow.exceptions import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    InvalidOptionError,
)

# Waiting for held slots: first poll soon (most holds are short), then back off so that
# many waiters do not keep the SQLite file busy.
_FIRST_POLL_SECONDS = 0.005
_MAX_POLL_SECONDS = 0.1

# Notified when this process gives slots back, so its own waiters retry at once rather
# than at their next poll (waiters in other processes poll).
released = threading.Condition()

_warned: set[str] = set()
_warned_lock = threading.Lock()


@dataclass
class Lease:
    """Slots taken by one ``concurrency()`` block, given back by ``release()``."""

    give_back: Callable[[], None] = field(default=lambda: None)

    def release(self) -> None:
        give_back, self.give_back = self.give_back, lambda: None
        give_back()


def normalize(names: str | list[str] | tuple[str, ...] | None, occupy: int) -> list[str]:
    """The limit names as a list (deduplicated, in order); checks ``occupy``."""
    if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
        raise InvalidOptionError(
            f"occupy={occupy!r}: give the number of slots to take, a whole number >= 1."
        )
    if names is None:
        return []
    listed = [names] if isinstance(names, str) else list(names)
    for name in listed:
        if not isinstance(name, str) or not name:
            raise InvalidOptionError(
                f"Concurrency limit names must be non-empty strings, got {name!r}."
            )
    return list(dict.fromkeys(listed))


def acquisition(
    names: list[str], occupy: int, mode: str, timeout_seconds: float | None, strict: bool
) -> Generator[float, None, Lease]:
    """Take ``occupy`` slots of each limit in ``names``; yields waits, returns the Lease."""
    if not names:
        return Lease()
    started = time.monotonic()
    poll = _FIRST_POLL_SECONDS
    while True:
        attempt = _store.try_acquire(names, occupy, mode)
        refuse_impossible(attempt, occupy)
        if attempt.missing:
            handle_missing(attempt.missing, strict)
        if attempt.taken:
            return Lease(functools.partial(_release, attempt.holder_ids))
        wait = attempt.retry_after
        if wait is None:
            wait, poll = poll, min(poll * 2, _MAX_POLL_SECONDS)
        if timeout_seconds is not None:
            left = timeout_seconds - (time.monotonic() - started)
            if left <= 0:
                raise timeout_error(timeout_seconds)
            wait = min(wait, left)
        yield wait


def _release(holder_ids: tuple[int, ...]) -> None:
    _store.release(holder_ids)
    with released:
        released.notify_all()


def timeout_error(timeout_seconds: float | None) -> AcquireConcurrencySlotTimeoutError:
    return AcquireConcurrencySlotTimeoutError(
        f"Attempt to acquire concurrency slots timed out after {timeout_seconds} second(s)"
    )


def refuse_impossible(attempt: _store.Attempt, occupy: int) -> None:
    if attempt.no_decay is not None:
        raise ConcurrencySlotAcquisitionError(
            f"rate_limit({attempt.no_decay!r}): that limit has no slot decay, so its slots "
            f"would never free up. Give it one: kernelflow.concurrency.set_limit("
            f"{attempt.no_decay!r}, limit=..., slot_decay_per_second=...)."
        )
    if attempt.too_many is not None:
        limit = attempt.too_many
        raise ConcurrencySlotAcquisitionError(
            f"Cannot take {occupy} slots of concurrency limit {limit.name!r}: it has only "
            f"{limit.limit}. Occupy fewer, or raise the limit with set_limit()."
        )


def on_dask_worker() -> bool:
    """Whether this code runs in a task on a Dask worker (Dask already imported)."""
    if "distributed" not in sys.modules:  # never import Dask just to find out
        return False
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def handle_missing(names: tuple[str, ...], strict: bool) -> None:
    """Raise for limits that do not exist (``strict``), else warn once per name."""
    if strict:
        raise ConcurrencySlotAcquisitionError(
            f"Concurrency limits {list(names)!r} must be created before acquiring slots: "
            f"kernelflow.concurrency.set_limit({names[0]!r}, limit=...)."
        )
    with _warned_lock:
        new = [name for name in names if name not in _warned]
        _warned.update(new)
    if new:  # once per name and process: a mapped task would otherwise flood the log
        _logger().warning(
            "Concurrency limits %r do not exist - skipping acquisition. Create them with "
            "kernelflow.concurrency.set_limit(name, limit=...).",
            new,
        )


def _logger() -> logging.LoggerAdapter:
    # The run's logger in a run (its display shows the line); kernelflow's outside one.
    from kernelflow._logging import get_run_logger

    return get_run_logger()

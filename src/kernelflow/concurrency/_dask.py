"""Limits held across a Dask cluster, for code running in a task on a Dask worker.

Workers may be on other machines, so a machine's SQLite file cannot bound them. The
limit's settings are still read from the worker's ``KERNELFLOW_HOME`` (set the limit
where the workers run, or share that folder); the slots are the scheduler's:

- ``concurrency()``: a ``distributed.Semaphore`` per limit, with the limit's slot
  count as its leases. Dask gives back the leases of a worker that died. Taking more
  than one lease goes through a ``distributed.Lock`` per limit, so two holders that
  each need several leases cannot each take part and wait for the other for ever.
- ``rate_limit()``: the decaying slot count kept in the scheduler's metadata, read and
  updated under that limit's ``distributed.Lock``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from kernelflow.concurrency import _store
from kernelflow.concurrency._acquire import (
    Lease,
    handle_missing,
    refuse_impossible,
    timeout_error,
)

_semaphores: dict[tuple[str, int], Any] = {}
_semaphores_lock = threading.Lock()


def acquire(
    names: list[str], occupy: int, mode: str, timeout_seconds: float | None, strict: bool
) -> Lease:
    """Take the slots on the cluster (blocking); the Lease gives them back."""
    if not names:
        return Lease()
    limits = {limit.name: limit for limit in _store.read_limits(names)}
    missing = tuple(name for name in names if name not in limits)
    if missing:
        handle_missing(missing, strict)
    deadline = None if timeout_seconds is None else time.monotonic() + timeout_seconds
    taken: list[tuple[Any, int]] = []
    try:
        for name in sorted(limits):  # one order everywhere: no two waiters cross
            limit = limits[name]
            refuse_impossible(_check(limit, occupy, mode), occupy)
            if not limit.active:
                continue
            if mode == "rate_limit":
                _take_rate(limit, occupy, deadline, timeout_seconds)
            else:
                semaphore = _semaphore(limit)
                _take_leases(semaphore, name, occupy, deadline, timeout_seconds)
                taken.append((semaphore, occupy))
    except BaseException:
        _give_back(taken)
        raise
    return Lease(lambda: _give_back(taken))


def _check(limit: _store.ConcurrencyLimit, occupy: int, mode: str) -> _store.Attempt:
    if mode == "rate_limit" and limit.slot_decay_per_second <= 0:
        return _store.Attempt(taken=False, no_decay=limit.name)
    if limit.active and occupy > limit.limit:
        return _store.Attempt(taken=False, too_many=limit)
    return _store.Attempt(taken=True)


def _left(deadline: float | None, timeout_seconds: float | None) -> float | None:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise timeout_error(timeout_seconds)
    return left


def _semaphore(limit: _store.ConcurrencyLimit) -> Any:
    from distributed import Semaphore

    key = (limit.name, limit.limit)
    with _semaphores_lock:
        if key not in _semaphores:
            _semaphores[key] = Semaphore(
                max_leases=limit.limit, name=f"kernelflow-concurrency-{limit.name}"
            )
        return _semaphores[key]


def _take_leases(
    semaphore: Any, name: str, occupy: int, deadline: float | None, timeout: float | None
) -> None:
    from distributed import Lock

    if occupy == 1:
        if not semaphore.acquire(timeout=_left(deadline, timeout)):
            raise timeout_error(timeout)
        return
    lock = Lock(f"kernelflow-concurrency-{name}-taking")
    if not lock.acquire(timeout=_left(deadline, timeout)):
        raise timeout_error(timeout)
    got = 0
    try:
        for _ in range(occupy):
            if not semaphore.acquire(timeout=_left(deadline, timeout)):
                raise timeout_error(timeout)
            got += 1
    except BaseException:
        _give_back([(semaphore, got)])
        raise
    finally:
        lock.release()


def _give_back(taken: list[tuple[Any, int]]) -> None:
    for semaphore, count in taken:
        for _ in range(count):
            semaphore.release()
    taken.clear()


def _take_rate(
    limit: _store.ConcurrencyLimit, occupy: int, deadline: float | None, timeout: float | None
) -> None:
    from distributed import Lock, get_client

    client = get_client()
    key = ["kernelflow-rate-limit", limit.name]
    lock = Lock(f"kernelflow-rate-limit-{limit.name}")
    while True:
        if not lock.acquire(timeout=_left(deadline, timeout)):
            raise timeout_error(timeout)
        try:
            decaying, decayed_at = client.get_metadata(key, default=(0.0, 0.0))
            now = time.time()
            used = max(0.0, decaying - limit.slot_decay_per_second * (now - decayed_at))
            short = used + occupy - limit.limit
            if short <= 1e-9:
                client.set_metadata(key, (used + occupy, now))
                return
        finally:
            lock.release()
        wait = short / limit.slot_decay_per_second
        left = _left(deadline, timeout)
        time.sleep(wait if left is None else min(wait, left))

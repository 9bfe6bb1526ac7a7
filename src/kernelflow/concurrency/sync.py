"""``concurrency()`` and ``rate_limit()`` for synchronous code (``prefect.concurrency.sync``).

See ``kernelflow.concurrency`` for how limits are created and where they are kept.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kernelflow.concurrency._acquire import (
    Lease,
    acquisition,
    normalize,
    on_dask_worker,
    released,
)
from kernelflow.exceptions import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
)

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "rate_limit",
]


@contextmanager
def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
    holder: Any = None,
    raise_on_lease_renewal_failure: bool | None = None,
) -> Iterator[None]:
    """Hold ``occupy`` slots of each named limit for the ``with`` block.

    Waits until every limit has the slots free (all at once, or none are taken), then
    runs the block and gives them back, even when the block raises. A name with no
    limit is skipped with a warning (once per name and process); ``strict=True`` raises
    instead. ``max_retries``, ``lease_duration``, ``holder`` and
    ``raise_on_lease_renewal_failure`` are accepted for Prefect's signature and do
    nothing: kernelflow's slots need no lease renewal (a dead holder's are freed).

    Raises:
        AcquireConcurrencySlotTimeoutError: (a ``TimeoutError``) the slots were not free
            within ``timeout_seconds``.
        ConcurrencySlotAcquisitionError: ``strict=True`` and a limit does not exist, or
            ``occupy`` is more than a limit has.
    """
    lease = _acquire(names, occupy, "concurrency", timeout_seconds, strict)
    try:
        yield
    finally:
        lease.release()


def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """Wait until ``occupy`` slots of each named limit are free, and take them.

    The slots are not given back: they free up at the limit's ``slot_decay_per_second``,
    so calls pass at most ``limit`` at once and then at that pace. Needs limits with a
    slot decay. Unknown names and ``strict`` as for ``concurrency()``.
    """
    _acquire(names, occupy, "rate_limit", timeout_seconds, strict)


def _acquire(
    names: Any, occupy: int, mode: str, timeout_seconds: float | None, strict: bool
) -> Lease:
    listed = normalize(names, occupy)
    if on_dask_worker():
        from kernelflow.concurrency import _dask

        return _dask.acquire(listed, occupy, mode, timeout_seconds, strict)
    steps = acquisition(listed, occupy, mode, timeout_seconds, strict)
    while True:
        try:
            delay = next(steps)
        except StopIteration as done:
            return done.value
        with released:
            released.wait(delay)

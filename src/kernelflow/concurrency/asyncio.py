"""``concurrency()`` and ``rate_limit()`` for async code (``prefect.concurrency.asyncio``).

The same limits as ``kernelflow.concurrency.sync``; waiting for slots awaits, so the
event loop runs other work meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from kernelflow.concurrency._acquire import Lease, acquisition, normalize, on_dask_worker
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


@asynccontextmanager
async def concurrency(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    max_retries: int | None = None,
    lease_duration: float = 300,
    strict: bool = False,
    holder: Any = None,
    suppress_warnings: bool = False,
    raise_on_lease_renewal_failure: bool | None = None,
) -> AsyncIterator[None]:
    """``async with concurrency(...)``: as ``kernelflow.concurrency.sync.concurrency``."""
    lease = await _acquire(names, occupy, "concurrency", timeout_seconds, strict)
    try:
        yield
    finally:
        # Giving back is one short SQLite write (or a Dask call): off the loop all the same.
        await asyncio.to_thread(lease.release)


async def rate_limit(
    names: str | list[str],
    occupy: int = 1,
    timeout_seconds: float | None = None,
    strict: bool = False,
) -> None:
    """``await rate_limit(...)``: as ``kernelflow.concurrency.sync.rate_limit``."""
    await _acquire(names, occupy, "rate_limit", timeout_seconds, strict)


async def _acquire(
    names: Any, occupy: int, mode: str, timeout_seconds: float | None, strict: bool
) -> Lease:
    listed = normalize(names, occupy)
    if on_dask_worker():
        from kernelflow.concurrency import _dask

        return await asyncio.to_thread(_dask.acquire, listed, occupy, mode, timeout_seconds, strict)
    steps = acquisition(listed, occupy, mode, timeout_seconds, strict)
    while True:
        # Each try is one short SQLite transaction, run off the event loop.
        delay, lease = await asyncio.to_thread(_step, steps)
        if lease is not None:
            return lease
        await asyncio.sleep(delay)


def _step(steps: Any) -> tuple[float, Lease | None]:
    # StopIteration cannot cross into an asyncio future: hand its value over instead.
    try:
        return next(steps), None
    except StopIteration as done:
        return 0.0, done.value

"""Global concurrency and rate limits, local to a machine (``prefect.concurrency``).

Prefect keeps these limits on its server; kernelflow keeps them in
``$KERNELFLOW_HOME/concurrency.sqlite``, so every thread and process on the machine
that names a limit shares it, and on a Dask worker in the cluster's own semaphores.

Create or change a limit (Prefect: ``prefect gcl create NAME --limit N
--slot-decay-per-second X``), then use it::

    from kernelflow.concurrency import set_limit
    from kernelflow.concurrency.sync import concurrency, rate_limit

    set_limit("database", limit=3)
    with concurrency("database", occupy=1):  # at most 3 holders at once
        ...

    set_limit("api", limit=5, slot_decay_per_second=2)
    rate_limit("api")  # 5 at once, then 2 calls a second

From a shell, ``python -m kernelflow.concurrency create api --limit 5`` (and ``update``,
``enable``, ``disable``, ``inspect``, ``ls``, ``delete``), as ``prefect gcl``.

``kernelflow.concurrency.concurrency``/``rate_limit`` are the sync ones;
``kernelflow.concurrency.asyncio`` has the async ones. A name with no limit is skipped
with a warning, once per name and process (Prefect warns too); ``strict=True`` raises.
"""

from __future__ import annotations

from kernelflow.concurrency import _store
from kernelflow.concurrency._store import ConcurrencyLimit
from kernelflow.concurrency.sync import concurrency, rate_limit
from kernelflow.exceptions import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    InvalidOptionError,
    ObjectNotFound,
)

__all__ = [
    "AcquireConcurrencySlotTimeoutError",
    "ConcurrencyLimit",
    "ConcurrencySlotAcquisitionError",
    "concurrency",
    "delete_limit",
    "rate_limit",
    "read_limit",
    "read_limits",
    "set_limit",
]


def set_limit(
    name: str, limit: int, *, slot_decay_per_second: float = 0.0, active: bool = True
) -> ConcurrencyLimit:
    """Create the limit ``name`` with ``limit`` slots, or change it; returns it.

    Args:
        name: What ``concurrency(name)`` and ``rate_limit(name)`` call it.
        limit: How many slots may be occupied at once (>= 1).
        slot_decay_per_second: How many occupied slots free up each second by
            themselves; ``rate_limit()`` needs it above 0 (e.g. 2: two calls a second).
        active: False switches the limit off (acquisitions pass at once) but keeps it.
    """
    if not isinstance(name, str) or not name:
        raise InvalidOptionError(f"A limit's name must be a non-empty string, got {name!r}.")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise InvalidOptionError(f"limit={limit!r}: give the number of slots, a whole number >= 1.")
    if not isinstance(slot_decay_per_second, (int, float)) or slot_decay_per_second < 0:
        raise InvalidOptionError(
            f"slot_decay_per_second={slot_decay_per_second!r}: give a number >= 0 "
            f"(0: slots free up only when released)."
        )
    _store.set_limit(name, limit, float(slot_decay_per_second), bool(active))
    return read_limit(name)


def read_limit(name: str) -> ConcurrencyLimit:
    """The limit ``name`` with its occupied slots now.

    Raises:
        ObjectNotFound: there is no limit of that name.
    """
    found = _store.read_limits([name])
    if not found:
        raise ObjectNotFound(
            f"No concurrency limit named {name!r}; create it with set_limit({name!r}, limit=...)."
        )
    return found[0]


def read_limits() -> list[ConcurrencyLimit]:
    """Every limit of this machine (of this ``KERNELFLOW_HOME``), by name."""
    return _store.read_limits()


def delete_limit(name: str) -> None:
    """Delete the limit ``name`` (its holders keep running; later calls skip it).

    Raises:
        ObjectNotFound: there is no limit of that name.
    """
    if not _store.delete_limit(name):
        raise ObjectNotFound(f"No concurrency limit named {name!r} to delete.")

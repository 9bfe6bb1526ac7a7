"""The identity of run records: their random ids, and the locks shared by stripes of them.

A run's id is 128 random bits, kept as an int and made a ``uuid.UUID`` only when read:
building UUIDs is a measurable share of a trivial mapped task, and most ids are never
read. (``random``, not ``os.urandom``: a syscall here would hand the GIL to busy workers
at every submit.)
"""

from __future__ import annotations

import random
import threading

# Locks shared by stripes of runs rather than one per run: a run record lives as long as
# the session keeps it, and thousands of per-run locks are memory and garbage-collector
# work for critical sections a few instructions long.
STRIPES = tuple(threading.Lock() for _ in range(64))


def stripe_lock(bits: int) -> threading.Lock:
    """The lock guarding the run (or future) whose id has these random bits."""
    return STRIPES[bits & 63]


# The bits RFC 4122 fixes in a version-4 UUID, fixed at birth so that a run's id bits
# are its UUID's ``int``: code comparing runs may compare ints, never building UUIDs.
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_id_bits() -> int:
    """Random bits that are a version-4 UUID's ``int``."""
    return random.getrandbits(128) & _V4_CLEAR | _V4_SET


__all__ = ["new_id_bits", "stripe_lock"]

"""Cache claims: two identical runs in flight in one process run once.

The first run to look a key up claims it; an identical run arriving meanwhile waits for
the claim to be released, then finds the first one's result. A claim is released when
its run's lifecycle ends, however it ends: finished, failed, or cancelled (a cancel
closes the lifecycle, so a Stop never leaves a claim behind for the next cell to wait
on forever). A claim released by a cancelled run leaves a note, so the run that then
has to compute explains why.

Every driver waits on a claim the same way (``semantics.meaning`` of ``AwaitClaim``:
a wait on ``released``), and none of them can change the claim by waiting: a waiter that times
out or is cancelled drops its own wait, never the shared ``released`` future (an
``asyncio.wrap_future`` would pass a cancel into it, and every other waiter would then
see a cancelled claim). No wait raises a timeout class either: ``concurrent.futures``
has its own ``TimeoutError`` on Python 3.10.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any


class Claim:
    """The right to run (and store) one key, or a view of whoever holds that right.

    ``holder`` is the thread that took it and, for an async driver, the asyncio task: an
    async run may wait for another asyncio task on its own loop, but nothing may wait
    for its own thread's sync code, which cannot go on until it returns.
    """

    __slots__ = ("key", "released", "owned", "holder")
    _held: dict[str, Claim] = {}
    _cancelled: dict[str, str] = {}  # key -> why its last claim went without a result
    _lock = threading.Lock()

    def __init__(self, key: str, released: concurrent.futures.Future, owned: bool, holder: Any):
        self.key = key
        self.released = released  # set (to None) once the holder lets go
        self.owned = owned
        self.holder = holder

    @classmethod
    def take(cls, key: str, holder: tuple[int, Any]) -> Claim:
        """Claim ``key`` for ``holder`` (thread id, asyncio task or None), or see its holder."""
        with cls._lock:
            held = cls._held.get(key)
            if held is not None:
                return cls(key, held.released, False, held.holder)
            claim = cls._held[key] = cls(key, concurrent.futures.Future(), True, holder)
            return claim

    def release(self, cancelled: str | None = None) -> None:
        """Let waiting runs go on; ``cancelled`` says why no result was stored, if so."""
        if not self.owned:
            return
        with self._lock:
            if self._held.get(self.key) is self:
                del self._held[self.key]
            if cancelled:
                self._cancelled[self.key] = cancelled
            else:
                self._cancelled.pop(self.key, None)
        try:
            self.released.set_result(None)
        except concurrent.futures.InvalidStateError:  # released already
            pass

    @classmethod
    def why_missing(cls, key: str) -> str | None:
        """If the last claim on ``key`` ended cancelled, why (for the miss message)."""
        with cls._lock:
            return cls._cancelled.pop(key, None)

    def held_by(self, waiter: tuple[Any, Any]) -> bool:
        """Whether ``waiter`` (thread id, asyncio task) would wait on itself: the claim is
        its own thread's sync code, or its own task's. Nothing can wait for that."""
        thread, task = self.holder
        return thread == waiter[0] and task in (None, waiter[1])

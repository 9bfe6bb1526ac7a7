"""Cache claims: two identical runs in flight in one process run once.

The first run to look a key up claims it; an identical run arriving meanwhile waits for
the claim to be released, then finds the first one's result. A claim is released when
its run's lifecycle ends, however it ends: finished, failed, or cancelled (a cancel
closes the lifecycle, so a Stop never leaves a claim behind for the next cell to wait
on forever). A claim released by a cancelled run leaves a note, so the run that then
has to compute explains why.

Every driver waits on a claim through this module (``wait_sync``, ``wait_async``,
``on_release``), and none of them can change the claim by waiting: a waiter that times
out or is cancelled drops its own wait, never the shared ``released`` future (an
``asyncio.wrap_future`` would pass a cancel into it, and every other waiter would then
see a cancelled claim). No wait raises a timeout class either: ``concurrent.futures``
has its own ``TimeoutError`` on Python 3.10.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable
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

    def same_thread(self, async_task: Any = None) -> bool:
        """Whether the holder is this thread's own sync code (or this asyncio task)."""
        thread, task = self.holder
        return thread == threading.get_ident() and task in (None, async_task)


def wait_sync(claim: Claim, timeout: float | None) -> bool:
    """Block until ``claim`` is released (True) or ``timeout`` passes (False)."""
    done, _ = concurrent.futures.wait((claim.released,), timeout)
    return bool(done)


async def wait_async(claim: Claim, timeout: float | None) -> bool:
    """Await the release of ``claim`` (True) or ``timeout`` (False), on a future of this
    waiter's own: a cancel of the waiter ends its wait and nothing else."""
    loop = asyncio.get_running_loop()
    mine = loop.create_future()

    def wake(_: Any) -> None:
        try:
            loop.call_soon_threadsafe(_settle, mine)
        except RuntimeError:  # the waiter's loop closed: nobody is waiting any more
            pass

    claim.released.add_done_callback(wake)
    done, _ = await asyncio.wait((mine,), timeout=timeout)
    return bool(done)


def on_release(claim: Claim, callback: Callable[[], Any]) -> None:
    """Call ``callback()`` once ``claim`` is released (at once if it is already)."""
    claim.released.add_done_callback(lambda _: callback())


def _settle(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)

"""``kernelflow.locking.memory.MemoryLockManager``: locks held by a holder, not a thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from kernelflow.locking.memory import MemoryLockManager


def test_every_memory_lock_manager_is_the_same_one():
    assert MemoryLockManager() is MemoryLockManager()


def test_a_lock_excludes_other_holders_until_released():
    locks = MemoryLockManager()
    assert locks.acquire_lock("k1", holder="a")
    assert locks.acquire_lock("k1", holder="a")  # held already: at once
    assert locks.is_locked("k1") and locks.is_lock_holder("k1", "a")
    assert not locks.acquire_lock("k1", holder="b", acquire_timeout=0.05)
    with pytest.raises(ValueError, match="only be released by the holder"):
        locks.release_lock("k1", holder="b")
    locks.release_lock("k1", holder="a")
    assert not locks.is_locked("k1") and locks.acquire_lock("k1", holder="b")
    locks.release_lock("k1", holder="b")


def test_a_waiting_holder_gets_the_lock_when_it_is_released_from_another_thread():
    locks = MemoryLockManager()
    locks.acquire_lock("k2", holder="a")
    threading.Timer(0.1, locks.release_lock, ("k2", "a")).start()
    started = time.monotonic()
    assert locks.acquire_lock("k2", holder="b", acquire_timeout=5)
    assert time.monotonic() - started >= 0.05
    assert locks.wait_for_lock("k3", timeout=0)  # nobody holds k3
    locks.release_lock("k2", holder="b")


def test_async_acquire_does_not_block_the_loop():
    locks = MemoryLockManager()
    locks.acquire_lock("k4", holder="a")

    async def main():
        ticks = 0

        async def tick():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.create_task(tick())
        asyncio.get_running_loop().call_later(0.1, locks.release_lock, "k4", "a")
        got = await locks.aacquire_lock("k4", holder="b", acquire_timeout=5)
        ticker.cancel()
        return got, ticks

    got, ticks = asyncio.run(main())
    assert got and ticks >= 3
    locks.release_lock("k4", holder="b")


def test_hold_timeout_is_refused():
    with pytest.raises(ValueError, match="hold_timeout"):
        MemoryLockManager().acquire_lock("k5", holder="a", hold_timeout=1)

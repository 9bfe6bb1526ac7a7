"""``MemoryLockManager``: named locks held by a holder, in this process (Prefect's
``prefect.locking.memory``)."""

from __future__ import annotations

import asyncio
import threading
import time


class MemoryLockManager:
    """Locks by key, each held by one holder at a time, in this process.

    One instance is shared by every ``MemoryLockManager()`` of the process, as in
    Prefect: two stores made separately still exclude each other.
    """

    _instance: MemoryLockManager | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> MemoryLockManager:
        with cls._instance_lock:
            if cls._instance is None:
                instance = super().__new__(cls)
                instance._holders: dict[str, str] = {}  # type: ignore[misc]
                instance._changed = threading.Condition()  # type: ignore[misc]
                cls._instance = instance
            return cls._instance

    def acquire_lock(
        self,
        key: str,
        holder: str,
        acquire_timeout: float | None = None,
        hold_timeout: float | None = None,
    ) -> bool:
        """Take the lock on ``key`` for ``holder``, waiting while another holds it.

        Returns:
            True once held (at once if ``holder`` holds it already); False if
            ``acquire_timeout`` seconds passed first. ``hold_timeout`` is Prefect's
            automatic release; kernelflow releases only when asked, and refuses it.
        """
        if hold_timeout is not None:
            raise ValueError(
                "hold_timeout is not supported by kernelflow's MemoryLockManager: locks are "
                "held until release_lock(); pass hold_timeout=None."
            )
        deadline = None if acquire_timeout is None else time.monotonic() + acquire_timeout
        with self._changed:
            while self._holders.get(key, holder) != holder:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._changed.wait(remaining)
            self._holders[key] = holder
            return True

    async def aacquire_lock(self, key: str, holder: str, **options: float | None) -> bool:
        """``acquire_lock`` (same options) without blocking the event loop while waiting."""
        if self.acquire_lock(key, holder, **{**options, "acquire_timeout": 0}):
            return True
        return await asyncio.to_thread(self.acquire_lock, key, holder, **options)

    def release_lock(self, key: str, holder: str) -> None:
        """Let go of ``key``.

        Raises:
            ValueError: ``holder`` does not hold it.
        """
        with self._changed:
            if self._holders.get(key) != holder:
                raise ValueError(
                    f"No lock held by {holder!r} on {key!r}: it can only be released by "
                    "the holder that acquired it."
                )
            del self._holders[key]
            self._changed.notify_all()

    def is_locked(self, key: str) -> bool:
        with self._changed:
            return key in self._holders

    def is_lock_holder(self, key: str, holder: str) -> bool:
        with self._changed:
            return self._holders.get(key) == holder

    def wait_for_lock(self, key: str, timeout: float | None = None) -> bool:
        """Wait until nobody holds ``key``; False if ``timeout`` seconds passed first."""
        with self._changed:
            return self._changed.wait_for(lambda: key not in self._holders, timeout)

    async def await_for_lock(self, key: str, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self.wait_for_lock, key, timeout)

"""The two kinds of thread the callback driver' callbacks may hand work to.

``call_later`` runs a function after a delay (call timeouts, wait deadlines, retry
sleeps) from one shared timer thread, not a thread per timer: a 10,000-run map with
``timeout_seconds`` must not start 10,000 threads. ``run_blocking`` runs work that may
block (hooks are user code) in a small shared pool, so it never holds up the threads
that deliver replies.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kernelflow._scopes.scope import ends_at, left

logger = logging.getLogger("kernelflow.task_runner")

_lock = threading.Condition()
_heap: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
_order = itertools.count()
_thread: threading.Thread | None = None
_pool: ThreadPoolExecutor | None = None


def call_later(seconds: float, fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)`` in the timer thread once ``seconds`` have passed."""
    global _thread
    with _lock:
        heapq.heappush(_heap, (ends_at(max(0.0, seconds)), next(_order), fn, args))
        if _thread is None:
            _thread = threading.Thread(target=_run_timers, name="kernelflow-timers", daemon=True)
            _thread.start()
        _lock.notify()


def run_blocking(fn: Callable[..., Any], *args: Any) -> None:
    """Call ``fn(*args)`` in the shared pool for work that may block."""
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(4, thread_name_prefix="kernelflow-remote-hooks")
    _pool.submit(fn, *args)


def _run_timers() -> None:
    while True:
        with _lock:
            while not _heap or left(_heap[0][0]):
                _lock.wait(left(_heap[0][0]) if _heap else None)
            _, _, fn, args = heapq.heappop(_heap)
        try:
            fn(*args)
        except Exception:  # one failing callback must not stop every later timer
            logger.exception("A kernelflow timer callback failed")

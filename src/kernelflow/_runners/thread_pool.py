"""The thread runner's pool: daemon threads, at most ``max_workers`` of them.

``ThreadPoolExecutor`` is close, but gives the runner a future per job it never uses
(each run reports through its own TaskFuture) and lacks one thing the runner needs:
daemon threads. After a kernel interrupt, a run that cannot be stopped is abandoned and
may sleep on for an hour; its thread must not hold up the kernel's or the interpreter's
exit, and ThreadPoolExecutor's threads are joined at exit.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

_logger = logging.getLogger("kernelflow.thread_pool")
_STOP = None  # the sentinel a worker passes on to the next one, then exits


class DaemonThreadPool:
    """Runs submitted callables on up to ``max_workers`` daemon threads, made on demand."""

    def __init__(
        self,
        max_workers: int,
        thread_name_prefix: str,
        initializer: Callable[[], None] | None = None,
    ) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._initializer = initializer
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        # One token per thread that finished a job and may be waiting for the next (as
        # ThreadPoolExecutor's idle semaphore counts them). A deque's append and pop are
        # atomic in C, where a threading.Semaphore is Python code with a Condition: on
        # a loop of submits that was a fair share of each run.
        self._idle: deque[None] = deque()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._shut_down:
            raise RuntimeError("cannot schedule new work after shutdown")
        self._jobs.put((fn, args))
        try:
            self._idle.pop()
            return  # a waiting thread will take it
        except IndexError:
            pass
        with self._lock:
            if len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._work, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def shutdown(self, wait: bool = False, cancel_futures: bool = False) -> None:
        """Stop taking work; drop queued jobs if asked; join the threads only if ``wait``."""
        self._shut_down = True
        if cancel_futures:
            while True:
                try:
                    self._jobs.get_nowait()
                except queue.Empty:
                    break
        self._jobs.put(_STOP)
        if wait:
            for thread in list(self._threads):
                thread.join()

    def _work(self) -> None:
        if self._initializer is not None:
            self._initializer()
        while True:
            job = self._jobs.get()
            if job is _STOP:
                self._jobs.put(_STOP)  # wake the next thread so it exits too
                return
            fn, args = job
            try:
                fn(*args)
            except BaseException:  # a job's failure must not take the thread down
                _logger.exception("A job on the kernelflow worker pool raised")
            del job, fn, args  # do not keep the last job's arguments alive while idle
            self._idle.append(None)

"""``ProcessPoolTaskRunner``: task bodies run in a pool of worker processes.

The pool (``pool.py``) is started on first use and kept warm for the rest of the
session, shared by every runner with the same ``max_workers``; it is shut down when
the interpreter exits. See ``remote.py`` for what runs where.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from kernelflow._runners.pool import PREFETCH, Job, ProcessPool
from kernelflow._runners.remote import Backend, RemoteTaskRunner, forget_backend, warm_backend


class ProcessPoolTaskRunner(RemoteTaskRunner):
    """Runs task bodies in worker processes, for CPU-bound Python code.

    Functions, arguments and results travel with cloudpickle, so tasks and closures
    defined in notebook cells work. What a task prints or logs shows up in the cell
    when it finishes. A worker that dies mid-task (``os._exit``, a segfault, SIGKILL,
    out of memory) crashes only the run it was running; the other runs carry on and a
    new worker takes its place. A timed-out or cancelled run's worker is killed and
    replaced, so the run really stops. Hooks, retries and caching run in the notebook
    process.

    Args:
        max_workers: How many worker processes; None means ``os.cpu_count()``.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}.")
        self._max_workers = max_workers or os.cpu_count() or 1

    def duplicate(self) -> ProcessPoolTaskRunner:
        return type(self)(max_workers=self._max_workers)

    def _open_backend(self) -> Backend:
        return warm_backend(("process", self._max_workers), self._start_pool)

    def _start_pool(self) -> Backend:
        return _PoolBackend(ProcessPool(self._max_workers))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return self._max_workers == other._max_workers  # type: ignore[attr-defined]

    __hash__ = RemoteTaskRunner.__hash__

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self._max_workers})"


class _PoolBackend(Backend):
    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool

    def submit(self, fn_blob: bytes, arguments: bytes, key: str) -> Job:
        try:
            return self.pool.submit(fn_blob, arguments)
        except RuntimeError:  # shut down (at exit, or by a test): start afresh next time
            forget_backend(self)
            raise

    def on_done(self, handle: Job, callback: Callable[[], None]) -> None:
        handle.on_done(callback)

    def reply(self, handle: Job) -> bytes:
        return handle.result()  # CrashedRun if its worker died

    def capacity(self) -> int:
        return PREFETCH * self.pool.max_workers  # what the pool sends to workers at once

    def cancel(self, handle: Job) -> None:
        self.pool.cancel(handle)

    def close(self) -> None:
        self.pool.close()

    def __repr__(self) -> str:
        return f"<process pool of {self.pool.max_workers} workers: pids {self.pool.pids}>"

"""``ProcessPoolTaskRunner``: task bodies run in a pool of worker processes.

The pool (``pool.py``) is started on first use and kept warm for the rest of the
session, shared by every runner with the same ``max_workers``; it is shut down when
the interpreter exits. See ``remote.py`` for what runs where.

Warm is safe only while the workers' imported code is current. Functions defined in
cells travel by value, but functions from ``.py`` files travel by reference and the
workers import those files once; so at each flow run, if a ``.py`` file outside the
Python installation (the user's own modules) changed on disk since the pool last
looked, the pool is replaced before the run starts: editing a module and re-running
the cell runs the new code.
"""

from __future__ import annotations

import functools
import os
import site
import sys
from collections.abc import Callable

from kernelflow._runners.pool import PREFETCH, Job, ProcessPool
from kernelflow._runners.remote import (
    Backend,
    Outbound,
    RemoteTaskRunner,
    forget_backend,
    warm_backend,
)


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
        initializer: Called as ``initializer(*initargs)`` in each worker process when it
            starts, before any task (as ``concurrent.futures.ProcessPoolExecutor``'s).
            It travels with cloudpickle, so a function defined in a cell works.
        initargs: The initializer's arguments.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple = (),
    ) -> None:
        super().__init__()
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}.")
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable or None, not {initializer!r}.")
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, not {type(initargs).__name__}.")
        self._max_workers = max_workers or os.cpu_count() or 1
        self._initializer = initializer
        self._initargs = initargs
        self._packed_init: bytes | None = None
        if initializer is not None:
            import cloudpickle

            self._packed_init = cloudpickle.dumps((initializer, initargs))

    def duplicate(self) -> ProcessPoolTaskRunner:
        return type(self)(self._max_workers, self._initializer, self._initargs)

    def _open_backend(self) -> Backend:
        # Pools are shared by runners that start their workers the same way.
        key = ("process", self._max_workers, self._packed_init)
        backend = warm_backend(key, self._start_pool)
        # A pool given up on, or running code older than the files: start a new one.
        if not backend.pool.usable or backend.code_changed():  # type: ignore[attr-defined]
            forget_backend(backend)
            backend.close()
            backend = warm_backend(key, self._start_pool)
            backend.code_changed()  # type: ignore[attr-defined]  # note the new times
        return backend

    def _start_pool(self) -> Backend:
        return _PoolBackend(ProcessPool(self._max_workers, self._packed_init))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return (self._max_workers, self._packed_init) == (
            other._max_workers,  # type: ignore[attr-defined]
            other._packed_init,  # type: ignore[attr-defined]
        )

    __hash__ = RemoteTaskRunner.__hash__

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self._max_workers})"


class _PoolBackend(Backend):
    def __init__(self, pool: ProcessPool) -> None:
        self.pool = pool
        self._mtimes: dict[str, float] = {}

    def code_changed(self) -> bool:
        """Whether a user module changed on disk since the last look (and note them)."""
        changed = False
        for path, mtime in _user_module_mtimes().items():
            if self._mtimes.setdefault(path, mtime) != mtime:
                changed = True
        return changed

    stop_note = "its worker process was killed (a new one took its place)"

    def submit(self, outbound: Outbound) -> Job:
        # The timeout is enforced from here, by killing the worker (RemoteTaskRunner).
        try:
            return self.pool.submit(outbound.fn_blob, outbound.arguments, outbound.started)
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


_user_paths: dict[str, str | None] = {}  # module __file__ -> real path if the user's


def _user_path(path: str) -> str | None:
    """The real path of a user's ``.py`` module file; None for installed code."""
    real = _user_paths.get(path, "")
    if real == "":
        real = os.path.realpath(path)
        if not path.endswith(".py") or real.startswith(_installation_dirs()):
            real = None
        _user_paths[path] = real
    return real


@functools.cache
def _installation_dirs() -> tuple[str, ...]:
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    try:
        dirs.update(site.getsitepackages())
        dirs.add(site.getusersitepackages())
    except AttributeError:  # some embedded interpreters have a reduced site module
        pass
    return tuple(os.path.join(os.path.realpath(d), "") for d in dirs if d)


def _user_module_mtimes() -> dict[str, float]:
    """``{path: mtime}`` of the imported modules that are ``.py`` files of the user's."""
    mtimes = {}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        real = _user_path(path) if isinstance(path, str) else None
        if real is not None:
            try:
                mtimes[real] = os.stat(real).st_mtime
            except OSError:
                pass
    return mtimes

"""Futures: handles to task runs that are running or will run.

A ``TaskFuture`` reads its run's live state from the run record and is resolved, with
the run's final State, through a ``concurrent.futures.Future``. That makes ``wait`` and
``as_completed`` thin layers over the standard library's, and lets runners of any kind
(threads, processes, Dask) hand back the same future class.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from kernelflow._context import flow_run_context
from kernelflow._runs import set_state, stripe_lock
from kernelflow.states import Cancelled

if TYPE_CHECKING:
    import uuid

    from kernelflow._runs import TaskRun
    from kernelflow.states import State

R = TypeVar("R")
_logger = logging.getLogger("kernelflow.futures")

__all__ = [
    "TaskFuture",
    "TaskFutureList",
    "DoneAndNotDoneFutures",
    "wait",
    "as_completed",
    "PrefectFuture",
    "PrefectConcurrentFuture",
    "PrefectFutureList",
]


class _Worker(threading.local):
    """Marks the threads of a runner's pool, which may run queued work inline."""

    active = False


worker_thread = _Worker()


class Work:
    """A queued task run that exactly one thread gets to carry out.

    A pool worker that must wait for a run nobody has started yet runs it itself rather
    than block: that is what keeps nested submission on a bounded pool from deadlocking.
    """

    __slots__ = ("_unclaimed", "_call", "_args", "_future", "_registry")

    def __init__(
        self, future: TaskFuture, registry: dict[Any, Work], call: Callable[..., Any], *args: Any
    ) -> None:
        # One token: whoever pops it runs (or cancels) the work. list.pop() is atomic,
        # so claiming needs no lock, which every worker would otherwise contend for.
        self._unclaimed = [True]
        self._call = call
        self._args = args
        self._future = future
        self._registry = registry  # the runner's unfinished work, left once finished

    def claim(self) -> bool:
        """True for exactly one caller: the one that gets to run (or cancel) this work."""
        try:
            return self._unclaimed.pop()
        except IndexError:
            return False

    def cancel(self) -> str:
        """Keep the run from starting if it has not; say what cancelling it meant."""
        if self.claim():
            self._args = ()
            return "Cancelled before it started."
        return "Cancelled while running; its thread was abandoned."

    def runs_on_this_loop(self) -> bool:
        return False

    def __call__(self) -> None:
        """The executor's entry point: run unless another thread already claimed it."""
        if self.claim():
            self.run_claimed()

    def run_claimed(self) -> None:
        try:
            self._call(*self._args)
        except BaseException:
            # The engine has already given the run its final state (Crashed, or
            # Cancelled for an interrupt raised inside the task); the thread carrying
            # it out must live on to run the next one.
            _logger.debug("Run %r ended abnormally", self._future.task_run.name, exc_info=True)
        finally:
            self._registry.pop(self._future, None)
            self._future._resolve()
            self._future._work = None  # done: nothing left to claim or cancel
            self._args = ()


class LoopWork:
    """A run of an async task scheduled as an asyncio task on its async flow's loop."""

    __slots__ = ("_scheduled", "_loop")

    def __init__(self, scheduled: cf.Future[Any], loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled = scheduled  # from asyncio.run_coroutine_threadsafe
        self._loop = loop

    def cancel(self) -> str:
        self._scheduled.cancel()  # thread-safe: cancels the asyncio task on its loop
        return "Cancelled."

    def runs_on_this_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False


class TaskFuture(Generic[R]):
    """A handle to one task run.

    Attributes:
        task_run: The run record (live: its ``state`` moves as the run goes on).
    """

    __slots__ = ("task_run", "_final", "_waiter", "_work", "_observed", "__weakref__")
    _work: Work | LoopWork | None

    def __init__(self, task_run: TaskRun) -> None:
        self.task_run = task_run
        self._final = False
        self._waiter: cf.Future[State] | None = None
        self._work = None
        # Whether user code looked at the outcome (result, state, or passed it on); a
        # flow warns about failed runs nobody looked at.
        self._observed = False

    @property
    def _done(self) -> cf.Future[State]:
        """A ``concurrent.futures.Future`` resolved with the final State, made on first need.

        Most futures are only read after their run ended; a cf.Future per run would cost
        a Condition and a handful of objects for the garbage collector to track, which
        is a large share of a trivial mapped task.
        """
        waiter = self._waiter
        if waiter is None:
            with stripe_lock(self.task_run._id_bits):
                waiter = self._waiter
                if waiter is None:
                    waiter = self._waiter = cf.Future()
                    if self._final:
                        waiter.set_result(self.task_run.state)
        return waiter

    @property
    def task_run_id(self) -> uuid.UUID:
        return self.task_run.id

    @property
    def state(self) -> State:
        """The run's current state (Pending, Running, ... then final)."""
        self._observed = True
        return self.task_run.state

    def done(self) -> bool:
        return self._final

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run reaches a final state, or ``timeout`` seconds pass.

        Returns:
            True if the run finished in time. Inside a flow run with a timeout, the wait
            ends at the flow's deadline with ``TimeoutError``.
        """
        if self._final:
            return True
        self._help()
        self._refuse_to_block_own_loop()
        deadline_wait = _bounded_by_flow_deadline(timeout)
        try:
            self._done.result(deadline_wait.timeout)
            return True
        except cf.TimeoutError:
            deadline_wait.raise_if_flow_timed_out()
            return False
        except KeyboardInterrupt:
            _cancel_after_interrupt([self])
            raise

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Wait for the run, then give its return value.

        Raises:
            The task's own exception if the run failed and ``raise_on_failure`` is True
            (with False, the exception is returned instead); ``TimeoutError`` if the run
            is not finished after ``timeout`` seconds.
        """
        self._observed = True
        if not self.wait(timeout):
            raise TimeoutError(
                f"Task run {self.task_run.name!r} did not finish within {timeout} seconds."
            )
        return self.task_run.state.result(raise_on_failure=raise_on_failure)

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], Any]) -> None:
        """Call ``fn(future)`` once the run is final (at once if it already is)."""
        self._done.add_done_callback(lambda _: fn(self))

    def __await__(self):  # type: ignore[no-untyped-def]
        yield from asyncio.wrap_future(self._done).__await__()
        return self.result()

    def cancel(self) -> bool:
        """Cancel the run: a queued run never starts; a running one is marked Cancelled
        (an async one is cancelled; a thread running sync code is abandoned).

        Returns:
            False if the run had already finished.
        """
        if self._final:
            return False
        work = self._work
        message = work.cancel() if work is not None else "Cancelled."
        set_state(self.task_run, Cancelled(message))
        self._resolve()
        return True

    def _help(self) -> None:
        work = self._work
        if type(work) is Work and worker_thread.active and work.claim():
            work.run_claimed()

    def _refuse_to_block_own_loop(self) -> None:
        work = self._work
        if work is not None and work.runs_on_this_loop():
            raise RuntimeError(
                f"Waiting synchronously for {self.task_run.name!r} would block the event loop "
                "that has to run it. In an async flow, use `await future` (or "
                "`await asyncio.gather(*futures)`) instead of .result() or .wait()."
            )

    def _resolve(self) -> None:
        """Called once the run is final (or abandoned): wake everyone waiting."""
        with stripe_lock(self.task_run._id_bits):
            if self._final:
                return
            self._final = True
            waiter = self._waiter
        if waiter is not None:
            try:
                waiter.set_result(self.task_run.state)
            except cf.InvalidStateError:  # resolved by another thread just now
                pass

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task_run.name!r}, state={self.state!r})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # A live widget in a kernel; the display code loads only when something is shown.
        from kernelflow.notebook import _display

        return _display.future_bundle(self)


class TaskFutureList(list, Generic[R]):  # type: ignore[type-arg]
    """The futures of a ``.map()`` call: a list, plus ``wait()`` and ``result()`` for all."""

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """The results in order; raises the first failure's own exception by default."""
        done, not_done = wait(self, timeout)
        if not_done:
            raise TimeoutError(
                f"{len(not_done)} of {len(self)} task runs did not finish within {timeout} s."
            )
        return [future.result(raise_on_failure=raise_on_failure) for future in self]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # A live progress bar in a kernel; the display code loads only when shown.
        from kernelflow.notebook import _display

        return _display.list_bundle(self)


class DoneAndNotDoneFutures(NamedTuple):
    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait until all ``futures`` are final or ``timeout`` seconds pass; never raises for
    failed runs.

    Returns:
        ``(done, not_done)``, two sets of futures.
    """
    futures = list(futures)
    for future in futures:
        future._help()
        if not future._final:
            future._refuse_to_block_own_loop()
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        # One future at a time, in order: runs finish roughly in the order they were
        # submitted, so most are final by the time their turn comes and need no waiter
        # (a waiter per unfinished future up front costs more than a trivial run).
        for future in futures:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not future._final and not future.wait(remaining):
                break  # out of time (a flow's deadline raises TimeoutError instead)
    except KeyboardInterrupt:
        _cancel_after_interrupt(futures)
        raise
    done = {future for future in futures if future._final}
    return DoneAndNotDoneFutures(done, {future for future in futures if future not in done})


def as_completed(
    futures: Iterable[TaskFuture[R]], timeout: float | None = None
) -> Iterator[TaskFuture[R]]:
    """Yield ``futures`` as their runs finish, in the order they finish.

    Raises:
        TimeoutError: if some are still running after ``timeout`` seconds.
    """
    futures = list(futures)
    for future in futures:
        future._help()
    pending = {}
    for future in futures:
        if future._final:
            yield future
        else:
            pending[future._done] = future
    for done in cf.as_completed(pending, timeout=timeout):
        yield pending[done]


def _cancel_after_interrupt(futures: Iterable[TaskFuture[Any]]) -> None:
    # The notebook's Stop button while waiting at top level: stop what was waited for.
    # (Inside a flow run, the flow engine cancels all of the flow's runs instead.)
    if flow_run_context.get() is None:
        for future in futures:
            future.cancel()


class _DeadlineWait:
    """A wait's timeout, shortened to the current flow run's deadline if that comes first."""

    __slots__ = ("timeout", "_cut_by_flow")

    def __init__(self, timeout: float | None, cut_by_flow: bool) -> None:
        self.timeout = timeout
        self._cut_by_flow = cut_by_flow

    def raise_if_flow_timed_out(self) -> None:
        if self._cut_by_flow:
            raise TimeoutError("The flow run timed out while waiting for task runs.")


def _bounded_by_flow_deadline(timeout: float | None) -> _DeadlineWait:
    ctx = flow_run_context.get()
    if ctx is None or ctx.deadline is None:
        return _DeadlineWait(timeout, False)
    remaining = max(0.0, ctx.deadline - time.monotonic())
    if timeout is None or remaining < timeout:
        return _DeadlineWait(remaining, True)
    return _DeadlineWait(timeout, False)


# Prefect's names, so a ported notebook's imports keep working.
PrefectFuture = TaskFuture
PrefectConcurrentFuture = TaskFuture
PrefectFutureList = TaskFutureList

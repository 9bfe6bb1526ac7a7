"""Futures: what user code holds for a task run that is running or will run.

A ``TaskFuture`` reads its run's live state from the run record and is resolved, with
the run's final State, through a ``concurrent.futures.Future`` (``settled``). Every
runner hands back the same future class; what differs lives in the run's handle
(``kernelflow._engine.handle``), which the future asks to cancel the run, or to help it
along before a blocking wait. Waits inside a flow run end at its deadline.

Blocking waits (``result``, ``wait``, ``as_completed``) are carried out by
``_waiting.block_on``. ``resolve_futures_to_states`` and ``resolve_futures_to_results``
give any value back with each future in it (found as ``_nested_values`` says) swapped
for its final state, or its result; both wait for the futures.
"""

from __future__ import annotations

import concurrent.futures as cf
import operator
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from kernelflow import _layer_hooks
from kernelflow._lazy_imports import asyncio
from kernelflow._nested_values import CONTAINERS, MAX_SEARCH_DEPTH, fields_of, with_fields
from kernelflow._run_ids import stripe_lock
from kernelflow._runs import result_of
from kernelflow._scopes.scope import ends_at, left
from kernelflow._waiting import block_on
from kernelflow._wrapped_futures import (
    PrefectConcurrentFuture,
    PrefectFuture,
    PrefectTaskRunFuture,
    PrefectWrappedFuture,
)

if TYPE_CHECKING:
    import uuid

    from kernelflow._engine.handle import RunHandle
    from kernelflow._runs import TaskRun
    from kernelflow.states import State

R = TypeVar("R")

__all__ = [
    "TaskFuture",
    "TaskFutureList",
    "DoneAndNotDoneFutures",
    "wait",
    "as_completed",
    "PrefectFuture",
    "PrefectTaskRunFuture",
    "PrefectWrappedFuture",
    "PrefectConcurrentFuture",
    "PrefectFutureList",
    "resolve_futures_to_results",
    "resolve_futures_to_states",
]


class TaskFuture(PrefectFuture[R]):
    """A handle to one task run.

    Attributes:
        task_run: The run record (live: its ``state`` moves as the run goes on).
    """

    # __dict__ last: code may put its own attributes on a future, as on Prefect's
    __slots__ = ("task_run", "_final", "_waiter", "_handle", "_observed", "__weakref__", "__dict__")

    def __init__(self, task_run: TaskRun) -> None:
        self.task_run = task_run
        self._final = False
        self._waiter: cf.Future[State] | None = None
        self._handle: RunHandle | None = None  # set by the runner that carries the run out
        # Whether user code looked at the outcome (result, state, or passed it on); a
        # flow warns about failed runs nobody looked at.
        self._observed = False

    @property
    def settled(self) -> cf.Future[State]:
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
    def wrapped_future(self) -> cf.Future[State]:
        """Prefect's name for ``settled``: resolved with the run's final State."""
        return self.settled

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
        __tracebackhide__ = True
        if self._final:
            return True
        return not block_on([self], timeout, cf.ALL_COMPLETED)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Wait for the run, then give its return value.

        Raises:
            The task's own exception if the run failed and ``raise_on_failure`` is True
            (with False, the exception is returned instead); ``TimeoutError`` if the run
            is not finished after ``timeout`` seconds.
        """
        __tracebackhide__ = True
        self._observed = True
        if not self.wait(timeout):
            raise TimeoutError(
                f"Task run {self.task_run.name!r} did not finish within {timeout} seconds."
            )
        return result_of(self.task_run.state, raise_on_failure)

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], Any]) -> None:
        """Call ``fn(future)`` once the run is final (at once if it already is)."""
        self.settled.add_done_callback(lambda _: fn(self))

    def __await__(self):  # type: ignore[no-untyped-def]
        __tracebackhide__ = True
        yield from asyncio.wrap_future(self.settled).__await__()
        return self.result()

    def cancel(self) -> bool:
        """Cancel the run: a queued run never starts; a running one is marked Cancelled
        (an async one is cancelled and awaited; a process run's worker is replaced; a
        thread running sync code gets CancelledRun raised at its next Python line, or,
        blocked in one long C call, when that call returns). Either way a cache claim
        it held is released.

        Returns:
            False if the run had already finished.
        """
        handle = self._handle  # read once: an ending run lets go of it
        if self._final or handle is None:
            return False
        return handle.cancel()

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
        # A live widget in a kernel, served by the notebook layer (kernelflow._layer_hooks).
        return _layer_hooks.rich_display("future", self)


class TaskFutureList(list, Generic[R]):  # type: ignore[type-arg]
    """The futures of a ``.map()`` call: a list, plus ``wait()`` and ``result()`` for all."""

    def wait(self, timeout: float | None = None) -> None:
        __tracebackhide__ = True
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """The results in the list's order. ``timeout`` bounds the whole.

        For kernelflow's own futures (``.map()``'s) it waits for all, then raises the
        first failure in list order: one wait, however many runs. A list holding other
        futures (``PrefectConcurrentFuture``...) takes results as they finish, as
        Prefect's does, so the first to fail raises at once.

        Raises:
            TimeoutError: not all finished (and gave their results) within ``timeout``.
        """
        __tracebackhide__ = True
        _check_timeout(timeout)
        message = f"Timed out waiting for all futures to complete within {timeout} seconds"
        if all(type(future) is TaskFuture for future in self):
            # as_completed would set up a waiter per pending run and watch all of them
            # on each wake-up: quadratic in a 10k-run map
            if wait(self, timeout).not_done:
                raise TimeoutError(message)
            # map, not a comprehension: no frame of kernelflow's in the user's traceback
            return list(map(operator.methodcaller("result", None, raise_on_failure), self))
        places: dict[PrefectFuture[R], list[int]] = {}
        for index, future in enumerate(self):
            places.setdefault(future, []).append(index)
        results: list[Any] = [None] * len(self)
        deadline = ends_at(timeout)
        try:
            for future in as_completed(places, timeout):
                value = future.result(raise_on_failure=raise_on_failure)
                for index in places[future]:
                    results[index] = value
                if deadline is not None and left(deadline) == 0:
                    raise TimeoutError(message)
        except _WaitTimeout as error:
            raise TimeoutError(message) from error
        return results

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        # A live progress bar in a kernel, served by the notebook layer (kernelflow._layer_hooks).
        return _layer_hooks.rich_display("list", self)


class DoneAndNotDoneFutures(NamedTuple):
    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(
    futures: Iterable[PrefectFuture[Any]], timeout: float | None = None
) -> DoneAndNotDoneFutures:
    """Wait until all ``futures`` are final or ``timeout`` seconds pass; never raises for
    failed runs.

    Returns:
        ``(done, not_done)``, two sets of futures.
    """
    __tracebackhide__ = True
    _check_timeout(timeout)
    futures = list(dict.fromkeys(futures))
    block_on(futures, timeout, cf.ALL_COMPLETED)
    done = {future for future in futures if future._final}
    return DoneAndNotDoneFutures(done, {future for future in futures if future not in done})


def as_completed(
    futures: Iterable[PrefectFuture[R]], timeout: float | None = None
) -> _AsCompleted[R]:
    """Yield ``futures`` as their runs finish, in the order they finish (each once).

    Iterate it with ``for`` or, in async code, ``async for``.

    Raises:
        TimeoutError: if some are still running after ``timeout`` seconds.
    """
    _check_timeout(timeout)
    return _AsCompleted(list(dict.fromkeys(futures)), timeout)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and timeout < 0:
        raise ValueError(f"'timeout' must be a non-negative number, got {timeout}")


class _WaitTimeout(TimeoutError):
    """as_completed's own timeout, told apart from a TimeoutError a task raised."""


class _AsCompleted(Generic[R]):
    __slots__ = ("_pending", "_ready", "_deadline", "_total")

    def __init__(self, futures: list[TaskFuture[R]], timeout: float | None) -> None:
        for future in futures:
            handle = future._handle  # read once: an ending run lets go of it
            if handle is not None:
                handle.run_inline_if_queued()
        self._ready = [f for f in futures if f._final]
        self._pending = {f.settled: f for f in futures if not f._final}
        self._total = len(futures)
        self._deadline = ends_at(timeout)

    def __iter__(self) -> Iterator[TaskFuture[R]]:
        return self

    def __next__(self) -> TaskFuture[R]:
        if not self._ready and self._pending:
            block_on(list(self._pending.values()), left(self._deadline), cf.FIRST_COMPLETED)
            self._collect()
        return self._pop()

    def __aiter__(self) -> AsyncIterator[TaskFuture[R]]:
        return self

    async def __anext__(self) -> TaskFuture[R]:
        if not self._ready and self._pending:
            waiting = [asyncio.wrap_future(done) for done in self._pending]
            timeout = left(self._deadline)
            await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
            self._collect()
        try:
            return self._pop()
        except StopIteration:
            raise StopAsyncIteration from None

    def _collect(self) -> None:
        for done in [d for d in self._pending if d.done()]:
            self._ready.append(self._pending.pop(done))
        if not self._ready and self._pending:
            raise _WaitTimeout(f"{len(self._pending)} (of {self._total}) futures unfinished")

    def _pop(self) -> TaskFuture[R]:
        if not self._ready:
            raise StopIteration
        return self._ready.pop(0)


# Prefect's name, so a ported notebook's imports keep working.
PrefectFutureList = TaskFutureList


def map_futures(expr: Any, swap: Callable[[PrefectFuture], Any]) -> Any:
    """``expr`` with every future in it (in containers, dict keys, dataclasses and
    pydantic models) replaced by ``swap(future)``; ``expr`` itself when it holds none.

    A list of futures (``TaskFutureList``) comes back as a plain list.
    """

    def walk(value: Any, depth: int) -> Any:
        if isinstance(value, PrefectFuture):  # any kind: resolve_futures_to_* take them all
            return swap(value)
        if depth >= MAX_SEARCH_DEPTH:
            return value
        depth += 1
        if isinstance(value, dict):
            items = [(walk(k, depth), walk(v, depth)) for k, v in value.items()]
            if all(a is k and b is v for (a, b), (k, v) in zip(items, value.items(), strict=True)):
                return value
            return type(value)(items)
        if isinstance(value, CONTAINERS):
            new = [walk(item, depth) for item in value]
            if all(a is b for a, b in zip(new, value, strict=True)):
                return value
            if isinstance(value, list):
                return list(new) if isinstance(value, TaskFutureList) else type(value)(new)
            if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
                return type(value)(*new)
            return type(value)(new)
        fields = fields_of(value)
        if not fields:
            return value
        changed = {
            name: new for name, item in fields.items() if (new := walk(item, depth)) is not item
        }
        return with_fields(value, changed) if changed else value

    result = walk(expr, 0)
    return list(result) if isinstance(result, TaskFutureList) else result


def resolve_futures_to_states(expr: Any) -> Any:
    """``expr`` with each future replaced by its final State (waits for them)."""

    def final_state(future: Any) -> Any:
        future.wait()
        return future.state

    return map_futures(expr, final_state)


def resolve_futures_to_results(expr: Any) -> Any:
    """``expr`` with each future replaced by its result (waits for them).

    Raises:
        The exception of a future whose run did not complete (Prefect raises a plain
        ``Exception`` saying one did not; kernelflow raises the run's own).
    """
    return map_futures(expr, lambda future: future.result())

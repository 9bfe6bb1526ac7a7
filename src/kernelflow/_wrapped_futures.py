"""Prefect's future classes: the ``PrefectFuture`` base and the futures that wrap another.

kernelflow's own ``TaskFuture`` (``futures.py``) is a ``PrefectFuture``. The others are
for code that builds futures itself, as a custom task runner or a test does:
``PrefectConcurrentFuture(task_run_id, concurrent_future)`` wraps a
``concurrent.futures.Future`` that resolves to the run's final State (or to a plain
value). ``wait``, ``as_completed`` and ``PrefectFutureList`` take any of them.

What ``_waiting.block_on`` reads of a future: ``_final`` (is it known to be done),
``settled`` (a ``concurrent.futures.Future`` done when it is), ``_handle`` (a run
handle that can help it along; None here) and ``cancel()``.
"""

from __future__ import annotations

import abc
import concurrent.futures as cf
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    import uuid

    from kernelflow.states import State

R = TypeVar("R")
F = TypeVar("F")


class PrefectFuture(abc.ABC, Generic[R]):
    """A handle to a run that will end: ``wait()``, ``result()``, ``state``,
    ``add_done_callback()``. Subclass it (or ``PrefectTaskRunFuture``) for a future of
    your own; kernelflow's ``TaskFuture`` is one."""

    __slots__ = ()
    _handle: Any = None  # no run handle to help it along

    @property
    @abc.abstractmethod
    def task_run_id(self) -> uuid.UUID: ...

    @property
    @abc.abstractmethod
    def state(self) -> State: ...

    @abc.abstractmethod
    def wait(self, timeout: float | None = None) -> Any: ...

    @abc.abstractmethod
    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R: ...

    @abc.abstractmethod
    def add_done_callback(self, fn: Callable[[PrefectFuture[R]], Any]) -> None: ...

    @property
    def _final(self) -> bool:
        return getattr(self, "_final_state", None) is not None

    @property
    def settled(self) -> cf.Future[Any]:
        """Done once this future is (through ``add_done_callback``), made on first need."""
        waiter = self.__dict__.get("_settled")
        if waiter is None:
            waiter = self.__dict__["_settled"] = cf.Future()
            self.add_done_callback(lambda _: waiter.done() or waiter.set_result(None))
        return waiter

    def cancel(self) -> bool:
        return False


class PrefectTaskRunFuture(PrefectFuture[R]):
    """A future for the task run ``task_run_id``; its ``state`` is Pending until a
    subclass sets the final one (``_final_state``)."""

    def __init__(self, task_run_id: uuid.UUID) -> None:
        self._task_run_id = task_run_id
        self._final_state: State | None = None

    @property
    def task_run_id(self) -> uuid.UUID:
        return self._task_run_id

    @property
    def state(self) -> State:
        if self._final_state is not None:
            return self._final_state
        from kernelflow.states import Pending

        return Pending()  # kernelflow has no server to ask: not final yet


class PrefectWrappedFuture(PrefectTaskRunFuture[R], Generic[R, F]):
    """A task-run future that wraps another future object (``wrapped_future``)."""

    def __init__(self, task_run_id: uuid.UUID, wrapped_future: F) -> None:
        self._wrapped_future: F = wrapped_future
        super().__init__(task_run_id)

    @property
    def wrapped_future(self) -> F:
        return self._wrapped_future

    def add_done_callback(self, fn: Callable[[PrefectFuture[R]], Any]) -> None:
        """Call ``fn(self)`` when the wrapped future is done (at once if this one is)."""
        if self._final_state is None:
            self._wrapped_future.add_done_callback(lambda _: fn(self))  # type: ignore[attr-defined]
            return
        fn(self)

    @property
    def settled(self) -> cf.Future[Any]:
        if isinstance(self._wrapped_future, cf.Future):
            return self._wrapped_future
        return super().settled


class PrefectConcurrentFuture(PrefectWrappedFuture[R, "cf.Future[Any]"]):
    """Wraps a ``concurrent.futures.Future`` that resolves to the run's final State, or
    to a plain value (then that is the result)."""

    @property
    def _final(self) -> bool:
        return self._final_state is not None or self._wrapped_future.done()

    @property
    def state(self) -> State:
        self._take_final_state()
        return super().state

    def _take_final_state(self) -> Any:
        wrapped = self._wrapped_future
        if self._final_state is None and wrapped.done() and not wrapped.cancelled():
            if wrapped.exception() is None:
                value = wrapped.result()
                if _is_state(value):
                    self._final_state = value

    def wait(self, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` seconds; never raises a timeout (the wrapped future's
        own exception, if it has one, is raised)."""
        try:
            value = self._wrapped_future.result(timeout=timeout)
        except cf.TimeoutError:
            return
        if _is_state(value):
            self._final_state = value

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The run's result: its final State's data (raised for a failed run, unless
        ``raise_on_failure`` is False), or the plain value the wrapped future gave.

        Raises:
            TimeoutError: not done after ``timeout`` seconds.
        """
        if self._final_state is None:
            try:
                value = self._wrapped_future.result(timeout=timeout)
            except cf.TimeoutError as error:
                raise TimeoutError(
                    f"Task run {self.task_run_id} did not complete within {timeout} seconds"
                ) from error
            if not _is_state(value):
                return value
            self._final_state = value
        from kernelflow._runs import result_of

        return result_of(self._final_state, raise_on_failure)

    def cancel(self) -> bool:
        return self._wrapped_future.cancel()


def _is_state(value: Any) -> bool:
    from kernelflow.states import State

    return isinstance(value, State)

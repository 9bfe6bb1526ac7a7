"""The one boundary between the engine and sync or async execution.

A run's lifecycle is written once, as a generator that yields *effects* (call the user
function, wait for upstream futures, sleep before a retry) and receives their outcomes.
A driver carries the effects out: ``drive_sync`` by blocking, ``drive_async`` by
awaiting. So sync and async runs share every line of lifecycle code, and no "is a loop
running?" guess decides which path is taken: the caller picks the driver.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from kernelflow.futures import TaskFuture

R = TypeVar("R")


@dataclass(slots=True)
class Outcome:
    """What a user function did: returned ``value``, or raised ``error``."""

    value: Any = None
    error: BaseException | None = None


class Effect:
    """Something the lifecycle needs done; each driver knows how to do it."""

    __slots__ = ()

    def run_sync(self) -> Any:
        raise NotImplementedError

    async def run_async(self) -> Any:
        raise NotImplementedError


Bindings = tuple[tuple[contextvars.ContextVar[Any], Any], ...]


@dataclass(slots=True)
class Invoke(Effect):
    """Call ``fn(*args, **kwargs)`` with ``bindings`` set; an Outcome back, never a raise.

    ``bindings`` are context variables set for the call only (the run context the body
    sees). ``is_async``: ``fn`` returns a coroutine to drive to completion. ``timeout``
    (seconds) bounds the call: a sync function that overruns is left running in its own
    daemon thread (Python cannot kill a thread) and the outcome is a ``TimeoutError``; a
    coroutine that overruns is cancelled.
    """

    fn: Callable[..., Any]
    args: Sequence[Any]
    kwargs: dict[str, Any]
    bindings: Bindings = ()
    timeout: float | None = None
    is_async: bool = False

    def run_sync(self) -> Outcome:
        try:
            if self.is_async:
                # Driven on this thread's loop (the notebook's, in a cell), where a timeout
                # can cancel the coroutine: no thread needed.
                return Outcome(run_coroutine_sync(_within(self._bound_coroutine(), self.timeout)))
            if self.timeout is not None:
                return _call_in_thread_with_timeout(self._bound_call, self.timeout)
            return Outcome(self._bound_call())
        except BaseException as error:  # the lifecycle decides what each kind means
            return Outcome(error=error)

    async def run_async(self) -> Outcome:
        try:
            if self.is_async:
                return Outcome(await _within(self._bound_coroutine(), self.timeout))
            # A sync function (or hook) called from async code runs in a thread, so the
            # event loop stays free; past its timeout the thread is abandoned.
            return Outcome(await _within(asyncio.to_thread(self._bound_call), self.timeout))
        except BaseException as error:
            return Outcome(error=error)

    def _bound_call(self) -> Any:
        tokens = [(var, var.set(value)) for var, value in self.bindings]
        try:
            return self.fn(*self.args, **self.kwargs)
        finally:
            for var, token in reversed(tokens):
                var.reset(token)

    async def _bound_coroutine(self) -> Any:
        tokens = [(var, var.set(value)) for var, value in self.bindings]
        try:
            return await self.fn(*self.args, **self.kwargs)
        finally:
            for var, token in reversed(tokens):
                var.reset(token)


async def _within(awaitable: Awaitable[R], timeout: float | None) -> R:
    """Await ``awaitable``; past ``timeout`` seconds cancel it and raise TimeoutError.

    Unlike ``asyncio.wait_for``, a TimeoutError raised by the awaited code itself is
    passed through as the code's own error, not mistaken for the timeout.
    """
    if timeout is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        raise _timeout_error(timeout)
    return task.result()


def invoke_hook(hook: Callable[..., Any], *args: Any) -> Invoke:
    return Invoke(hook, args, {}, is_async=inspect.iscoroutinefunction(hook))


@dataclass(slots=True)
class WaitFor(Effect):
    """Wait until every future in ``futures`` has reached a final state."""

    futures: Sequence[TaskFuture]
    deadline: float | None = None  # time.monotonic() after which to stop waiting

    def run_sync(self) -> bool:
        """True when all are done; False if the deadline came first."""
        for future in self.futures:
            remaining = None if self.deadline is None else self.deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            if not future.wait(remaining):
                return False
        return True

    async def run_async(self) -> bool:
        pending = [asyncio.wrap_future(f._done) for f in self.futures if not f.done()]
        if not pending:
            return True
        timeout = None if self.deadline is None else max(0.0, self.deadline - time.monotonic())
        _, still_pending = await asyncio.wait(pending, timeout=timeout)
        return not still_pending


@dataclass(slots=True)
class WaitUntilOpen(Effect):
    """Wait until ``gate`` is set (a paused flow run holds its queued runs at its gate)."""

    gate: threading.Event

    def run_sync(self) -> None:
        self.gate.wait()

    async def run_async(self) -> None:
        await asyncio.to_thread(self.gate.wait)


@dataclass(slots=True)
class Sleep(Effect):
    seconds: float

    def run_sync(self) -> None:
        if self.seconds > 0:
            time.sleep(self.seconds)

    async def run_async(self) -> None:
        await asyncio.sleep(self.seconds)


Lifecycle = Generator[Effect, Any, R]


def drive_sync(lifecycle: Lifecycle[R]) -> R:
    """Run a lifecycle to its end in this thread, blocking on each effect."""
    outcome = None
    while True:
        try:
            effect = lifecycle.send(outcome)
        except StopIteration as stop:
            return stop.value
        outcome = effect.run_sync()


async def drive_async(lifecycle: Lifecycle[R]) -> R:
    """Run a lifecycle to its end on the running event loop, awaiting each effect."""
    outcome = None
    while True:
        try:
            effect = lifecycle.send(outcome)
        except StopIteration as stop:
            return stop.value
        outcome = await effect.run_async()


def run_coroutine_sync(coroutine: Coroutine[Any, Any, R]) -> R:
    """Drive a coroutine to completion from sync code.

    With no loop running in this thread, a fresh loop runs it. With one running (a sync
    flow called in a notebook cell, on the kernel's loop), the coroutine must run on that
    same loop so objects bound to it keep working: ``nest_asyncio2`` is applied to that
    loop only, now and never before, and the loop runs the coroutine re-entrantly.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    import nest_asyncio2  # lazily: only when sync code has to drive a coroutine in a loop

    nest_asyncio2.apply(loop)
    return loop.run_until_complete(loop.create_task(coroutine))


def _timeout_error(seconds: float | None) -> TimeoutError:
    return TimeoutError(f"Timed out after {seconds:g} seconds (timeout_seconds={seconds:g}).")


def _call_in_thread_with_timeout(call: Callable[[], Any], timeout: float) -> Outcome:
    box = Outcome()
    done = threading.Event()
    context = contextvars.copy_context()  # the call sees this thread's context

    def target() -> None:
        try:
            box.value = context.run(call)
        except BaseException as error:
            box.error = error
        finally:
            done.set()

    # A daemon thread: if the call overruns it is abandoned, and must not keep the
    # interpreter from exiting.
    thread = threading.Thread(target=target, name="kernelflow-timeout", daemon=True)
    thread.start()
    if not done.wait(timeout):
        return Outcome(error=_timeout_error(timeout))
    return box

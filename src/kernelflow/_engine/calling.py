"""Calling user code here, in this process: bound to its context, within a deadline.

The drivers use these to carry out ``CallBody`` and ``CallHook`` locally; the remote
worker uses them too (``wire.run_packed``). Every call gives an ``Outcome``, never a
raise: the lifecycle decides what each kind of error means.

A sync call with a deadline runs in its own daemon thread and is abandoned when the
deadline passes (Python cannot kill a thread). A coroutine past its deadline is
cancelled. A sync body that runs in the driver's own thread (a sync flow's body, in the
notebook cell's thread) is stopped by raising ``DeadlineExceeded`` inside that thread.

Frames marked ``__tracebackhide__ = True`` (here, in the drivers, futures, states and
the task and flow calls) are left out of the tracebacks IPython and pytest show, so a
failure reads as the user's code and not as kernelflow's machinery.
"""

from __future__ import annotations

import asyncio
import contextvars
import ctypes
import threading
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from kernelflow._engine.deadline import Deadline
from kernelflow._engine.effects import Bindings, Outcome
from kernelflow.exceptions import DeadlineExceeded

R = TypeVar("R")


def timeout_error(deadline: Deadline) -> DeadlineExceeded:
    return DeadlineExceeded(*deadline.error().args)


def bound_call(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict, bindings: Bindings):
    __tracebackhide__ = True
    tokens = [(var, var.set(value)) for var, value in bindings]
    try:
        return fn(*args, **kwargs)
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


async def bound_coroutine(
    fn: Callable[..., Any], args: Sequence[Any], kwargs: dict, bindings: Bindings
) -> Any:
    __tracebackhide__ = True
    tokens = [(var, var.set(value)) for var, value in bindings]
    try:
        return await fn(*args, **kwargs)
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def call_sync(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict,
    *,
    is_async: bool = False,
    bindings: Bindings = (),
    deadline: Deadline | None = None,
    in_this_thread: bool = False,
) -> Outcome:
    """Call ``fn`` from sync code, blocking until it returns or its deadline passes."""
    __tracebackhide__ = True
    try:
        if is_async:
            # Driven on this thread's loop (the notebook's, in a cell), where a deadline
            # can cancel the coroutine: no thread needed.
            coroutine = bound_coroutine(fn, args, kwargs, bindings)
            return Outcome(run_coroutine_sync(within(coroutine, deadline)))
        if deadline is None:
            return Outcome(bound_call(fn, args, kwargs, bindings))
        if in_this_thread:
            with _raise_in_this_thread_at(deadline):
                return Outcome(bound_call(fn, args, kwargs, bindings))
        return _call_in_thread(lambda: bound_call(fn, args, kwargs, bindings), deadline)
    except BaseException as error:  # the lifecycle decides what each kind means
        return Outcome(error=error)


async def call_async(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict,
    *,
    is_async: bool = False,
    bindings: Bindings = (),
    deadline: Deadline | None = None,
) -> Outcome:
    """Call ``fn`` from async code; a sync function runs in a thread so the loop stays free."""
    __tracebackhide__ = True
    try:
        if is_async:
            return Outcome(await within(bound_coroutine(fn, args, kwargs, bindings), deadline))
        call = asyncio.to_thread(bound_call, fn, args, kwargs, bindings)
        return Outcome(await within(call, deadline))
    except BaseException as error:
        return Outcome(error=error)


async def within(awaitable: Awaitable[R], deadline: Deadline | None) -> R:
    """Await ``awaitable``; past ``deadline`` cancel it and raise DeadlineExceeded.

    Unlike ``asyncio.wait_for``, a TimeoutError raised by the awaited code itself is
    passed through as the code's own error, not mistaken for the timeout.
    """
    __tracebackhide__ = True
    if deadline is None:
        return await awaitable
    task = asyncio.ensure_future(awaitable)
    done, _ = await asyncio.wait({task}, timeout=deadline.remaining())
    if not done:
        task.cancel()
        raise timeout_error(deadline)
    return task.result()


def run_coroutine_sync(coroutine: Coroutine[Any, Any, R]) -> R:
    """Drive a coroutine to completion from sync code.

    With no loop running in this thread, a fresh loop runs it. With one running (a sync
    flow called in a notebook cell, on the kernel's loop), the coroutine must run on that
    same loop so objects bound to it keep working: ``nest_asyncio2`` is applied to that
    loop only, now and never before, and the loop runs the coroutine re-entrantly.
    """
    __tracebackhide__ = True
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    return run_nested(loop, coroutine)


def run_nested(loop: asyncio.AbstractEventLoop, awaitable: Awaitable[R]) -> R:
    """Run ``loop`` re-entrantly, from code it is already running, until ``awaitable`` is done."""
    __tracebackhide__ = True
    import nest_asyncio2  # lazily: only when sync code has to drive a coroutine in a loop

    nest_asyncio2.apply(loop)
    return loop.run_until_complete(asyncio.ensure_future(awaitable, loop=loop))


def _call_in_thread(call: Callable[[], Any], deadline: Deadline) -> Outcome:
    __tracebackhide__ = True
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
    if not done.wait(deadline.remaining()):
        return Outcome(error=timeout_error(deadline))
    return box


class _raise_in_this_thread_at:  # noqa: N801 - used as a context manager
    """Raise ``DeadlineExceeded`` in this thread if the block is still running at ``deadline``.

    For code that must run in this very thread (a sync flow body in a notebook cell): a
    timer thread sets an asynchronous exception on it, which Python raises at the next
    bytecode boundary. Leaving the block disarms it, and clears one that was set but not
    yet raised, so it can never land in the caller's code.
    """

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = True
        self._timer = threading.Timer(deadline.remaining(), self._fire)
        self._timer.daemon = True

    def __enter__(self) -> None:
        self._timer.start()

    def __exit__(self, *exc_info: Any) -> None:
        self._timer.cancel()
        with self._lock:
            if self._armed:
                self._armed = False
            else:  # fired: clear it in case it is still pending (a no-op if raised)
                _set_async_exc(self._thread_id, None)

    def _fire(self) -> None:
        with self._lock:
            if self._armed:
                self._armed = False
                _set_async_exc(self._thread_id, timeout_error(self._deadline))


def _set_async_exc(thread_id: int, error: BaseException | None) -> None:
    # The exception must be a class for the C API; a subclass carries the message.
    if error is None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), None)
        return
    message = str(error)

    class _Exceeded(DeadlineExceeded):
        def __init__(self, *args: Any) -> None:
            super().__init__(*(args or (message,)))

    _Exceeded.__name__ = _Exceeded.__qualname__ = "DeadlineExceeded"
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(_Exceeded)
    )

"""Calling user code here, in this process: bound to its context, within a deadline.

The drivers use these to carry out ``CallBody`` and ``CallHook`` locally; the remote
worker uses them too (``wire.run_packed``). Every call gives an ``Outcome``, never a
raise: the lifecycle decides what each kind of error means.

A sync call with a deadline runs in its own daemon thread; when the deadline passes
the caller goes on at once, and the call is stopped by ``DeadlineExceeded`` raised in
its thread at its next bytecode (a thread blocked in one long C call gets it when that
call returns; the run's message says so). A coroutine past its deadline, or whose
caller is cancelled, is cancelled and awaited. A sync body that runs in the driver's own
thread (a sync flow's body, in the notebook cell's thread) is stopped by raising
``DeadlineExceeded`` inside that thread (``in_thread_deadline``; on the main thread an
alarm signal, which also ends a blocking call).

Frames marked ``__tracebackhide__ = True`` (here, in the drivers, futures, states and
the task and flow calls) are left out of the tracebacks IPython and pytest show, so a
failure reads as the user's code and not as kernelflow's machinery.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from kernelflow._engine.effects import Bindings, Outcome
from kernelflow._lazy_imports import asyncio
from kernelflow._loops import run_coroutine_sync
from kernelflow._scopes.in_thread_deadline import raise_in_this_thread_at
from kernelflow._scopes.scope import Scope

if TYPE_CHECKING:
    from kernelflow._engine.handle import RunHandle

R = TypeVar("R")


def bound_call(fn: Callable[..., Any], args: Sequence[Any], kwargs: dict, bindings: Bindings):
    __tracebackhide__ = True
    if len(bindings) == 1:  # the usual: the run's own context, nothing else
        ((var, value),) = bindings
        token = var.set(value)
        try:
            return fn(*args, **kwargs)
        finally:
            var.reset(token)
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
    deadline: Scope | None = None,
    in_this_thread: bool = False,
    handle: RunHandle | None = None,
) -> Outcome:
    """Call ``fn`` from sync code, blocking until it returns or its deadline passes
    (``handle``: the run's, whose cancel then stops a body in another thread too)."""
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
            with raise_in_this_thread_at(deadline):
                return Outcome(bound_call(fn, args, kwargs, bindings))
        return _call_in_thread(lambda: bound_call(fn, args, kwargs, bindings), deadline, handle)
    except BaseException as error:  # the lifecycle decides what each kind means
        return Outcome(error=error)


async def call_async(
    fn: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict,
    *,
    is_async: bool = False,
    bindings: Bindings = (),
    deadline: Scope | None = None,
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


async def within(awaitable: Awaitable[R], deadline: Scope | None) -> R:
    """Await ``awaitable``; past ``deadline`` cancel it and raise DeadlineExceeded.

    The awaited work never outlives this call: past the deadline, or when the caller
    itself is cancelled (``future.cancel()``, the Stop button on an async cell), it is
    cancelled and awaited before this returns, so its ``finally`` blocks have run and
    nothing after its pending ``await`` does. Unlike ``asyncio.wait_for``, a
    TimeoutError raised by the awaited code itself is passed through as the code's own
    error, not mistaken for the timeout.
    """
    __tracebackhide__ = True
    if deadline is None:
        return await awaitable  # a cancel of the caller is delivered into it directly
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=deadline.remaining())
    except asyncio.CancelledError:
        await _cancel_and_wait(task)
        raise
    if not done:
        await _cancel_and_wait(task)
        if task.done() and not task.cancelled() and task.exception() is None:
            return task.result()  # it finished as it was cancelled: its result stands
        raise deadline.error()
    return task.result()


async def _cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and wait until it has ended (whatever it ends with)."""
    task.cancel()
    while not task.done():
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:  # cancelled again meanwhile: still wait for it
            task.cancel()
            continue
    if not task.cancelled():
        task.exception()  # retrieved: no "exception was never retrieved" warning


def _call_in_thread(call: Callable[[], Any], deadline: Scope, handle: RunHandle | None) -> Outcome:
    """Run ``call`` in a thread of its own; at ``deadline`` return, and stop the call.

    The call is stopped by ``DeadlineExceeded`` raised in its thread at its next Python
    bytecode. A thread blocked in one long C call (a sleep, a socket read) cannot be
    stopped sooner: the exception stays pending and lands the moment that call returns,
    so nothing more of the body runs; the run's message says so.
    """
    __tracebackhide__ = True
    outcome = Outcome()  # filled in by the call's thread
    done = threading.Event()
    context = contextvars.copy_context()  # the call sees this thread's context

    def target() -> None:
        try:
            if handle is not None:
                handle.body_running(threading.get_ident())
            try:
                with raise_in_this_thread_at(deadline):
                    outcome.value = context.run(call)
            finally:
                if handle is not None:
                    handle.body_returned()
        except BaseException as error:
            outcome.error = error
        finally:
            done.set()

    # A daemon thread: a call stuck in C must not keep the interpreter from exiting.
    thread = threading.Thread(target=target, name="kernelflow-timeout", daemon=True)
    thread.start()
    if done.wait(deadline.remaining()):
        return outcome
    if done.wait(_STOP_GRACE):  # stopped by the exception raised in it
        return Outcome(error=deadline.error())
    error = deadline.error()
    return Outcome(error=type(error)(f"{error} {_BLOCKED_IN_C}"))


_STOP_GRACE = 0.1  # how long a body stopped at its deadline may take to unwind
_BLOCKED_IN_C = (
    "Its thread is blocked in one long C call (such as a sleep or a socket read), which "
    "Python cannot interrupt: the body stops when that call returns, and runs nothing "
    "more of its own."
)

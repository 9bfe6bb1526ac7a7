"""The three drivers of a run's lifecycle, side by side.

Each takes a ``RunHandle`` and carries out the effects its lifecycle yields (see
``effects.py`` for the closed set) until it ends:

    drive_sync       blocks this thread on each effect (sync flows, thread runner)
    drive_async      awaits each effect on the running loop (async flows and tasks)
    CallbackDriver   never blocks: each wait registers a callback, and the body is sent
                     to a worker by the runner (process and Dask runners)

Where the body runs is each driver's own; what every other effect means is said once,
in ``semantics.meaning`` (a value now, a wait, or a hook call), and each driver only
knows how to block, await or call back on it. A driver reports a body's start to the
handle (``body_started``) at the moment the body starts; that is when an attempt's
clock starts. A body whose scope ended before it could start is not started at all. An
effect outside the closed set is a ``TypeError``.
"""

from __future__ import annotations

import contextvars
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from kernelflow._engine import semantics
from kernelflow._engine.bound_calls import bound_call, call_async, call_sync
from kernelflow._engine.effects import CallBody, Outcome
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.semantics import Call, Now, Wait, meaning
from kernelflow._lazy_imports import asyncio
from kernelflow._scopes.in_thread_deadline import WaitEndingBy
from kernelflow._scopes.scope import Scope, ends_at, left
from kernelflow._scopes.timers import call_later, run_blocking


def attempt_deadline(effect: CallBody) -> Scope | None:
    """The attempt's scope, from now (its body is starting), inside its flow run's."""
    return Scope.after(effect.timeout, effect.what, effect.deadline)


def too_late(handle: RunHandle, effect: CallBody) -> bool:
    """Whether the flow's deadline passed before the body could start; the run is then
    cancelled. The flow's timeout cancels every run it has not started, and its cancel
    may be on its way still: a run that never started is never TimedOut."""
    if effect.deadline is not None and effect.deadline.expired():
        handle.cancel(str(effect.deadline.error()))
        return True
    return False


# --- blocking ---------------------------------------------------------------------------


def drive_sync(handle: RunHandle, thrown: BaseException | None = None) -> Any:
    """Run a lifecycle to its end in this thread, blocking on each effect (``thrown``:
    raised at its ``yield`` first, what stopped another driver of it)."""
    __tracebackhide__ = True
    depth = _nesting.depth = _nesting.depth + 1
    if depth > _HEADROOM_AFTER:
        _add_to_recursion_limit(_DRIVER_FRAMES)
    try:
        return _drive_sync(handle, thrown)
    finally:
        _nesting.depth = depth - 1
        if depth > _HEADROOM_AFTER:
            _add_to_recursion_limit(-_DRIVER_FRAMES)


class _Nesting(threading.local):
    depth = 0  # runs driven in this thread, one inside another (subflows, nested calls)


_nesting = _Nesting()
# The frames kernelflow puts between a flow (or task) call and its body. Deep chains of
# subflows get that many more of Python's recursion limit per level, so they reach about
# as deep as plain nested calls would (not a seventh of it).
_DRIVER_FRAMES = 8
_HEADROOM_AFTER = 20  # levels of nesting before the limit is raised (most code: never)
_limit_lock = threading.Lock()


def _add_to_recursion_limit(frames: int) -> None:
    with _limit_lock:
        sys.setrecursionlimit(sys.getrecursionlimit() + frames)


def _drive_sync(handle: RunHandle, thrown: BaseException | None) -> Any:
    __tracebackhide__ = True
    outcome = None
    try:
        while (effect := handle.step(outcome, thrown)) is not None:
            if type(effect) is CallBody:  # the common case first: a direct call's only one
                outcome = _body_sync(handle, effect)
                continue
            thrown = None
            try:
                outcome = _carry_out_sync(meaning(effect, (threading.get_ident(), None)))
            except BaseException as error:  # an interrupt while waiting: for the lifecycle
                thrown = error
    except BaseException as error:
        handle.abort(error)
        raise
    return handle.result


def _body_sync(handle: RunHandle, effect: CallBody) -> Outcome | None:
    __tracebackhide__ = True
    if too_late(handle, effect) or not handle.body_started(thread_name.name or worker_name()):
        return None  # cancelled first: the handle is closed, the next step ends it
    if effect.timeout is None and effect.deadline is None and not effect.is_async:
        if handle.future is None:  # the common case, kept short: a direct call, no limit
            try:
                return Outcome(bound_call(effect.fn, effect.args, effect.kwargs, effect.bindings))
            except BaseException as error:
                return Outcome(error=error)
        # A submitted run: its future's cancel stops the body in this thread.
        handle.body_running(threading.get_ident())
        try:
            return Outcome(bound_call(effect.fn, effect.args, effect.kwargs, effect.bindings))
        except BaseException as error:
            return Outcome(error=error)
        finally:
            handle.body_returned()
    return call_sync(
        effect.fn,
        effect.args,
        effect.kwargs,
        is_async=effect.is_async,
        bindings=effect.bindings,
        deadline=attempt_deadline(effect),
        in_this_thread=effect.in_this_thread,
        handle=handle if handle.future is not None else None,
    )


def _carry_out_sync(what: Now | Wait | Call) -> Any:
    __tracebackhide__ = True
    if type(what) is Now:
        return what.value
    if type(what) is Call:
        return call_sync(what.fn, what.args, {}, is_async=what.is_async)
    # The wait ends at the run's scope, and the lifecycle then sees the deadline itself:
    # a flow body's guard firing meanwhile (a direct call in a sync flow runs in the
    # body's thread) must not raise inside the driver, so the wait absorbs it.
    with WaitEndingBy(what.timeout, absorb=True):
        if what.runs:  # task futures: their runs may need this thread's help (or loop)
            ends = ends_at(what.timeout)
            for future in what.runs:
                if not future.wait(left(ends)):
                    return what.late
        elif what.futures:
            if not semantics.wait_sync(what.futures, what.timeout):
                return what.late
        elif what.timeout:
            time.sleep(what.timeout)
    return what.done


# --- awaiting ---------------------------------------------------------------------------


async def drive_async(handle: RunHandle) -> Any:
    """Run a lifecycle to its end on the running event loop, awaiting each effect."""
    __tracebackhide__ = True
    # Nesting is counted per asyncio task (a context variable), not per thread: many
    # tasks share the loop's thread, and a subflow awaited inline adds to its task's stack.
    depth = _async_depth.get() + 1
    token = _async_depth.set(depth)
    if depth > _HEADROOM_AFTER:
        _add_to_recursion_limit(_ASYNC_DRIVER_FRAMES)
    try:
        return await _drive_async(handle)
    finally:
        _async_depth.reset(token)
        if depth > _HEADROOM_AFTER:
            _add_to_recursion_limit(-_ASYNC_DRIVER_FRAMES)


_async_depth: contextvars.ContextVar[int] = contextvars.ContextVar("kf_async_depth", default=0)
# An awaited subflow puts this many frames of kernelflow's between a flow's body and
# its subflow's (flows.py's awaitable, run_flow_async, the driver, the body call).
_ASYNC_DRIVER_FRAMES = 8


async def _drive_async(handle: RunHandle) -> Any:
    __tracebackhide__ = True
    outcome = thrown = None
    try:
        while (effect := handle.step(outcome, thrown)) is not None:
            if type(effect) is CallBody:
                outcome = await _body_async(handle, effect)
                continue
            thrown = None
            try:
                outcome = await _carry_out_async(meaning(effect, _awaiter()))
            except BaseException as error:  # a cancel while waiting: for the lifecycle
                thrown = error
    except BaseException as error:
        handle.abort(error)
        raise
    return handle.result


def _awaiter() -> tuple[int, Any]:
    return threading.get_ident(), asyncio.current_task()


async def _carry_out_async(what: Now | Wait | Call) -> Any:
    __tracebackhide__ = True
    if type(what) is Now:
        return what.value
    if type(what) is Call:
        return await call_async(what.fn, what.args, {}, is_async=what.is_async)
    if what.futures:
        done = await semantics.wait_async(what.futures, what.timeout)
        return what.done if done else what.late
    await asyncio.sleep(what.timeout or 0)
    return what.done


async def _body_async(handle: RunHandle, effect: CallBody) -> Outcome | None:
    __tracebackhide__ = True
    if too_late(handle, effect) or not handle.body_started(worker_name()):
        return None
    deadline = attempt_deadline(effect)
    return await call_async(
        effect.fn,
        effect.args,
        effect.kwargs,
        is_async=effect.is_async,
        bindings=effect.bindings,
        deadline=deadline,
    )


# --- callbacks --------------------------------------------------------------------------


class CallbackDriver:
    """Steps lifecycles by callbacks, so no thread is ever blocked on a run.

    ``send_body(handle, effect)`` is the runner's: it sends the body to a worker,
    reports the start to the handle when the worker starts it, and calls
    ``resume(handle, outcome)`` with the outcome. Hooks are user code and may block, so
    they run in a small shared pool; every wait (upstream futures, a paused flow's gate,
    a retry's sleep, another run's cache claim) is a callback or a timer.
    """

    def __init__(self, send_body: Callable[[RunHandle, CallBody], None]) -> None:
        self._send_body = send_body

    def resume(self, handle: RunHandle, outcome: Any = None) -> None:
        """Run the lifecycle on until it must wait for something, or ends."""
        try:
            while (effect := handle.step(outcome)) is not None:
                if type(effect) is CallBody:
                    self._send_body(handle, effect)
                    return
                what = meaning(effect, (None, handle))  # a wait here is never a thread's
                if type(what) is Now:
                    outcome = what.value
                    continue
                if type(what) is Call:
                    run_blocking(self._call, handle, what)
                else:
                    self._wait(handle, what)
                return
        except BaseException as error:
            handle.abort(error)

    def _call(self, handle: RunHandle, what: Call) -> None:
        self.resume(handle, call_sync(what.fn, what.args, {}, is_async=what.is_async))

    def _wait(self, handle: RunHandle, what: Wait) -> None:
        resume = self._once(handle)
        if what.timeout is not None:
            call_later(what.timeout, resume, what.late if what.futures else what.done)
        if what.futures:
            semantics.when_all(what.futures, lambda: resume(what.done))
        elif what.timeout is None:
            resume(what.done)

    def _once(self, handle: RunHandle) -> Callable[..., None]:
        """A resume that only its first caller gets (a wait ends by callback or deadline)."""
        token = [True]

        def resume(outcome: Any = None) -> None:
            try:
                token.pop()
            except IndexError:
                return
            self.resume(handle, outcome)

        return resume


class _ThreadName(threading.local):
    name: str | None = None


thread_name = _ThreadName()


def worker_name() -> str:
    # Cached per thread: looking the current thread up costs more than the rest of
    # recording it, on every run.
    name = thread_name.name
    if name is None:
        name = thread_name.name = threading.current_thread().name
    return name

"""How a thread blocks on task futures: ``block_on``, for ``result``, ``wait`` and
``as_completed``.

Runs queued on this pool thread are run here first (``RunHandle.run_inline_if_queued``),
so nested submission on a bounded pool cannot deadlock. A blocking wait from an async flow's own
event loop on runs that are asyncio tasks of that loop drives the loop re-entrantly until
they are done, as Prefect's (thread-run) async tasks allow: ``future.result()`` inside
``async def`` works, and the runs stay concurrent. Waits inside a flow run end at its
deadline; the Stop button during a wait at top level cancels what was waited for.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kernelflow._context import flow_run_context
from kernelflow._lazy_imports import asyncio
from kernelflow._scopes.in_thread_deadline import WaitEndingBy
from kernelflow._scopes.scope import Scope, ends_at, left

if TYPE_CHECKING:
    from kernelflow.futures import TaskFuture


def block_on(futures: list[TaskFuture[Any]], timeout: float | None, return_when: str) -> bool:
    """Wait for ``futures`` (all, or the first); True if that timed out.

    Runs queued on this pool thread are run here first (``run_inline_if_queued``). Runs
    that are asyncio tasks of the loop running in this thread get that loop driven
    re-entrantly: blocking it would deadlock. A flow run's deadline cuts the wait short
    with TimeoutError; an interrupt at top level cancels what was waited for.
    """
    __tracebackhide__ = True
    pending = []
    loop = None
    for future in futures:
        if future._final:  # (also every future of Flow.visualize, which has no handle)
            continue
        handle = future._handle
        if handle is not None:
            handle.run_inline_if_queued()
            if handle.loop is not None and handle.loop is _running_loop():
                loop = handle.loop
        if not future._final:
            pending.append(future)
    if not pending:
        return False
    timeout, flow_scope = _bounded_by_flow_deadline(timeout)
    try:
        with WaitEndingBy(timeout):  # the flow's deadline is raised here, not injected
            if loop is not None:
                finished = _drive_loop(loop, pending, timeout, return_when)
            elif return_when == cf.ALL_COMPLETED:
                finished = _wait_in_order(pending, timeout)
            else:
                finished = bool(cf.wait([f.settled for f in pending], timeout, return_when)[0])
            if not finished and flow_scope is not None:
                raise flow_scope.error()  # raised by the wait itself, never injected
    except (KeyboardInterrupt, asyncio.CancelledError):
        _cancel_after_interrupt(futures)
        raise
    return not finished


def _wait_in_order(futures: list[TaskFuture[Any]], timeout: float | None) -> bool:
    # One future at a time: runs finish roughly in the order they were submitted, so
    # once the last is final most others are too and need no waiter (a waiter per
    # unfinished future up front costs more than a trivial run). The last goes first:
    # waking this thread once per finished run would take the GIL from the threads
    # finishing the others (on the process runner, the one reading their replies).
    __tracebackhide__ = True
    deadline = ends_at(timeout)
    for future in itertools.chain(futures[-1:], futures):
        if future._final:
            continue
        if not cf.wait((future.settled,), left(deadline))[0]:
            return False
    return True


def _drive_loop(
    loop: asyncio.AbstractEventLoop,
    futures: list[TaskFuture[Any]],
    timeout: float | None,
    return_when: str,
) -> bool:
    __tracebackhide__ = True
    from kernelflow._loops import run_nested  # only async flows get here

    # The task this wait blocks. A kernel interrupt in an async cell cancels it (ipykernel
    # turns SIGINT into a cancel), which it cannot notice while it is stuck in this sync
    # wait; so the wait watches for that and raises CancelledError in its place.
    blocked = asyncio.current_task(loop)
    deadline = ends_at(timeout)

    async def waiting() -> bool:
        __tracebackhide__ = True
        wrapped = [asyncio.wrap_future(f.settled) for f in futures]
        while True:
            remaining = left(deadline)
            step = _CANCEL_CHECK if remaining is None else min(remaining, _CANCEL_CHECK)
            done, _ = await asyncio.wait(wrapped, timeout=step, return_when=return_when)
            if len(done) == len(wrapped) or (done and return_when == cf.FIRST_COMPLETED):
                return True
            if blocked is not None and _cancel_requested(blocked):
                raise asyncio.CancelledError
            if remaining is not None and remaining <= step:
                return False

    return run_nested(loop, waiting())


_CANCEL_CHECK = 0.05  # seconds between looks for a cancel of the blocked task


def _cancel_requested(task: asyncio.Task) -> bool:
    cancelling = getattr(task, "cancelling", None)  # Python >= 3.11
    return bool(cancelling() if cancelling else getattr(task, "_must_cancel", False))


def _running_loop() -> asyncio.AbstractEventLoop | None:
    return asyncio._get_running_loop()  # in asyncio.__all__; None rather than a raise


def _cancel_after_interrupt(futures: Iterable[TaskFuture[Any]]) -> None:
    # The notebook's Stop button while waiting at top level: stop what was waited for.
    # Not a fallback: runs submitted outside any flow run have no flow scope to cancel
    # (tests/test_interrupts.py). Inside a flow run, its scope cancels its runs instead.
    if flow_run_context.get() is None:
        for future in futures:
            future.cancel()


def _bounded_by_flow_deadline(timeout: float | None) -> tuple[float | None, Scope | None]:
    """A wait's timeout, cut to the current flow run's scope if that ends first; and
    that scope, if it cut the wait."""
    ctx = flow_run_context.get()
    if ctx is None or ctx.deadline is None:
        return timeout, None
    remaining = ctx.deadline.remaining()
    if timeout is None or remaining < timeout:
        return remaining, ctx.deadline
    return timeout, None

"""Driving a coroutine to its end from sync code, on this thread's loop if one is running.

The engine calls async bodies from sync code this way; so do a transaction's async
hooks, a blocking wait on an async task's future (``_waiting``) and ``Flow.visualize``
tracing an async flow's body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Coroutine
from typing import Any, TypeVar

from kernelflow._lazy_imports import asyncio

R = TypeVar("R")


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

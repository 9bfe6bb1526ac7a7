"""What each effect means, said once for the three drivers.

A driver carries out a run's body its own way (in this thread, on the loop, on a
worker): that is what tells the drivers apart. Every other effect means the same to all
three, and ``meaning`` says what, as one of three plain kinds:

    Now(value)                       the outcome is known at once
    Wait(futures, timeout, ...)      wait until every future is done, or the timeout passes
    Call(fn, args, is_async)         call a hook here, in the session

    effect          meaning
    TakeClaim       Now(the claim, or a view of its holder)
    AwaitClaim      Now(False) if the holder is the waiter itself, else Wait(its release)
    WaitFor         Wait(the upstream futures, until the run's scope ends)
    WaitUntilOpen   Wait(the gate's opening)
    Sleep           Wait(nothing, for the delay cut by the run's scope)
    CallHook        Call(the hook)

So a new effect is one line here, and each driver only knows how to block, await or
call back on a ``Wait``. The waits never change what they wait on: an async waiter
waits on a future of its own (``wait_async``), so its cancel cannot reach a shared one.
The three kinds are plain classes, as the effects are (see ``effects.py``).
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kernelflow._engine.claims import Claim
from kernelflow._engine.effects import (
    AwaitClaim,
    CallHook,
    Sleep,
    TakeClaim,
    WaitFor,
    WaitUntilOpen,
    unknown_effect,
)
from kernelflow._lazy_imports import asyncio
from kernelflow._scopes.scope import remaining

if TYPE_CHECKING:
    from kernelflow._context import Gate
    from kernelflow.futures import TaskFuture


class Now:
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


class Wait:
    """Wait until every one of ``futures`` is done (``done`` is then the outcome) or
    ``timeout`` passes (``late``). ``runs``: task futures among them, whose runs a
    blocking waiter may have to help along (``TaskFuture.wait``)."""

    __slots__ = ("futures", "timeout", "done", "late", "runs")

    def __init__(
        self,
        futures: Sequence[cf.Future],
        timeout: float | None,
        done: Any = None,
        late: Any = None,
        runs: Sequence[TaskFuture] = (),
    ) -> None:
        self.futures = futures
        self.timeout = timeout
        self.done = done
        self.late = late
        self.runs = runs


class Call:
    __slots__ = ("fn", "args", "is_async")

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], is_async: bool) -> None:
        self.fn = fn
        self.args = args
        self.is_async = is_async


def meaning(effect: Any, holder: tuple[Any, Any]) -> Now | Wait | Call:
    """What ``effect`` asks of a driver whose waiter is ``holder``: (thread id, asyncio
    task), or (None, run handle) for the callback driver, whose waits hold no thread."""
    kind = type(effect)
    if kind is WaitFor:
        pending = [future for future in effect.futures if not future.done()]
        if not pending:
            return Now(True)
        settled = [future.settled for future in pending]
        return Wait(settled, remaining(effect.deadline), True, False, pending)
    if kind is TakeClaim:
        return Now(Claim.take(effect.key, holder))
    if kind is AwaitClaim:
        if effect.claim.held_by(holder):
            return Now(False)  # nothing may wait for its own thread's (or task's) code
        return Wait((effect.claim.released,), remaining(effect.deadline), True, False)
    if kind is CallHook:
        return Call(effect.fn, effect.args, effect.is_async)
    if kind is Sleep:
        return Wait((), sleep_seconds(effect))
    if kind is WaitUntilOpen:
        return Wait((opened(effect.gate),), None)
    raise unknown_effect(effect)


def sleep_seconds(effect: Sleep) -> float:
    """How long a retry's sleep lasts: its delay, cut short by the run's scope."""
    left = remaining(effect.deadline)
    return effect.seconds if left is None else min(effect.seconds, left)


def opened(gate: Gate) -> cf.Future:
    """A future done once ``gate`` is open."""
    future: cf.Future = cf.Future()
    gate.when_open(lambda: _settle(future))
    return future


# --- the three ways of waiting ----------------------------------------------------------


def wait_sync(futures: Sequence[cf.Future], timeout: float | None) -> bool:
    """Block until every future is done (True) or ``timeout`` passes (False)."""
    _, pending = cf.wait(futures, timeout)
    return not pending


async def wait_async(futures: Sequence[cf.Future], timeout: float | None) -> bool:
    """Await every future (True) or ``timeout`` (False), on a future of this waiter's own."""
    if all(future.done() for future in futures):
        return True
    loop = asyncio.get_running_loop()
    mine = loop.create_future()
    when_all(futures, lambda: _wake(loop, mine))
    done, _ = await asyncio.wait((mine,), timeout=timeout)
    return bool(done)


def when_all(futures: Sequence[cf.Future], callback: Callable[[], Any]) -> None:
    """Call ``callback()`` once every future is done (at once if they are)."""
    left = len(futures)
    lock = threading.Lock()

    def one_done(_: Any) -> None:
        nonlocal left
        with lock:
            left -= 1
            last = left == 0
        if last:
            callback()

    if not futures:
        callback()
    for future in futures:
        future.add_done_callback(one_done)


def _wake(loop: asyncio.AbstractEventLoop, future: asyncio.Future) -> None:
    try:
        loop.call_soon_threadsafe(_settle, future)
    except RuntimeError:  # the waiter's loop closed: nobody is waiting any more
        pass


def _settle(future: Any) -> None:
    try:
        if not future.done():
            future.set_result(None)
    except (cf.InvalidStateError, asyncio.InvalidStateError):  # settled meanwhile
        pass

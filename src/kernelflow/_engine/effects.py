"""What a run's lifecycle asks its driver to do: a closed set of plain data.

A lifecycle (``task_engine.task_lifecycle``, ``flow_engine.flow_lifecycle``) is a
generator that yields these effects and receives their outcomes. It never blocks,
sleeps or calls user code itself, so one lifecycle serves every driver (``drivers.py``):
blocking in a thread, awaiting on an event loop, or stepped by callbacks while the body
runs in another process. The set is closed: a driver given anything else raises
``TypeError`` rather than guess.

    effect         outcome                      what the driver does
    CallBody       Outcome                      call the run's own function (a worker's job)
    CallHook       Outcome                      call a hook or callback, always locally
    WaitFor        bool (False: deadline first) wait for upstream futures to be final
    WaitUntilOpen  None                         wait while the flow run is paused
    Sleep          None                         wait before a retry
    TakeClaim      Claim                        claim a cache key, or learn who holds it
    AwaitClaim     bool (False: not worth it)   wait for another run's claim to go

While a flow run's body runs, its lifecycle is suspended at ``CallBody``, and what the
body does that changes the run's state reaches it there as a *body event*
(``PauseBegan``, ``PauseEnded``), sent in by the run's handle, never by a driver. The
lifecycle sets the state the event implies and yields ``AwaitingBody``: not an effect,
nobody carries it out; the handle hands it back to the body's code that reported. The
driver's next step, after the body, is the body's outcome, as always.

Each is a plain class with ``__slots__``: a dataclass would generate the same
``__init__``, but making one costs about two million instructions at import (a
first flow in a new process waited for them). Only an ``Outcome`` is filled in after
it is made (by the thread that ran the call); nothing changes the others.
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from kernelflow._context import Gate
    from kernelflow._engine.claims import Claim
    from kernelflow._scopes.scope import Scope
    from kernelflow.futures import TaskFuture

R = TypeVar("R")

Bindings = tuple[tuple[contextvars.ContextVar[Any], Any], ...]


class Outcome:
    """What a user function did: returned ``value``, or raised ``error``; ``ended`` is the
    ``time.time()`` its body ended, if it ran elsewhere and the reply came later."""

    __slots__ = ("value", "error", "ended")

    def __init__(
        self, value: Any = None, error: BaseException | None = None, ended: float | None = None
    ) -> None:
        self.value = value
        self.error = error
        self.ended = ended


class CallBody:
    """Call the run's own function: ``fn(*args, **kwargs)``.

    The driver reports the moment a worker starts it (``RunHandle.body_started``): that
    is when the attempt's clock starts. ``timeout`` counts from that moment, cut short by
    ``deadline`` (the flow run's). ``bindings`` are the context variables a local call
    sets; ``log_prints`` and ``transactional`` say the same for a call sent elsewhere,
    where context variables do not travel. ``what`` names the run in a timeout's
    message. ``in_this_thread``: a sync flow's body, which runs in the driver's own
    thread (the cell's), so at its deadline it is stopped by an exception raised inside
    it, not abandoned.
    """

    __slots__ = (
        "fn",
        "args",
        "kwargs",
        "is_async",
        "timeout",
        "deadline",
        "bindings",
        "log_prints",
        "transactional",
        "what",
        "in_this_thread",
    )

    def __init__(
        self,
        fn: Callable[..., Any],
        args: Sequence[Any],
        kwargs: dict[str, Any],
        is_async: bool = False,
        timeout: float | None = None,
        deadline: Scope | None = None,
        bindings: Bindings = (),
        log_prints: bool = False,
        transactional: bool = False,
        what: str = "Task run",
        in_this_thread: bool = False,
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.is_async = is_async
        self.timeout = timeout
        self.deadline = deadline
        self.bindings = bindings
        self.log_prints = log_prints
        self.transactional = transactional
        self.what = what
        self.in_this_thread = in_this_thread


class CallHook:
    """Call a hook ``fn(*args)`` here, in the session (never sent to a worker)."""

    __slots__ = ("fn", "args", "is_async")

    def __init__(
        self, fn: Callable[..., Any], args: tuple[Any, ...], is_async: bool = False
    ) -> None:
        self.fn = fn
        self.args = args
        self.is_async = is_async


class WaitFor:
    """Wait until every future in ``futures`` has reached a final state."""

    __slots__ = ("futures", "deadline")

    def __init__(self, futures: Sequence[TaskFuture], deadline: Scope | None = None) -> None:
        self.futures = futures
        self.deadline = deadline


class WaitUntilOpen:
    """Wait until ``gate`` opens (a paused flow run holds its queued runs at its gate)."""

    __slots__ = ("gate",)

    def __init__(self, gate: Gate) -> None:
        self.gate = gate


class Sleep:
    """Wait ``seconds`` before a retry, or until ``deadline`` if that comes first."""

    __slots__ = ("seconds", "deadline")

    def __init__(self, seconds: float, deadline: Scope | None = None) -> None:
        self.seconds = seconds
        self.deadline = deadline


class TakeClaim:
    """Claim a cache key, or get the claim of the identical run already holding it."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class AwaitClaim:
    """Wait for another run's claim to be released; False if waiting would not help."""

    __slots__ = ("claim", "deadline")

    def __init__(self, claim: Claim, deadline: Scope | None = None) -> None:
        self.claim = claim
        self.deadline = deadline


class PauseBegan:
    """A body event: the body paused its flow run (``pause_flow_run``) under ``key``."""

    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class PauseEnded:
    """A body event: the body's pause ended; ``how`` (resumed, timed out, cancelled, an
    exception) is the message of the state the run goes on in."""

    __slots__ = ("how",)

    def __init__(self, how: str) -> None:
        self.how = how


BodyEvent = PauseBegan | PauseEnded
BODY_EVENTS = (PauseBegan, PauseEnded)


class AwaitingBody:
    """What a flow lifecycle yields after taking a body event: no effect, nobody carries
    it out; it still awaits the body's outcome. ``refused``: why it did not take it."""

    __slots__ = ("refused",)

    def __init__(self, refused: str | None = None) -> None:
        self.refused = refused


Effect = CallBody | CallHook | WaitFor | WaitUntilOpen | Sleep | TakeClaim | AwaitClaim
EFFECTS = (CallBody, CallHook, WaitFor, WaitUntilOpen, Sleep, TakeClaim, AwaitClaim)
Lifecycle = Generator[Effect, Any, R]


def unknown_effect(effect: Any) -> TypeError:
    return TypeError(
        f"A lifecycle yielded {effect!r}, which is not one of kernelflow's effects "
        f"({', '.join(kind.__name__ for kind in EFFECTS)})."
    )


def call_hook(hook: Callable[..., Any], *args: Any) -> CallHook:
    return CallHook(hook, args, inspect.iscoroutinefunction(hook))

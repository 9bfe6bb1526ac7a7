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
"""

from __future__ import annotations

import contextvars
import inspect
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from kernelflow._context import Gate
    from kernelflow._engine.claims import Claim
    from kernelflow._scopes.scope import Scope
    from kernelflow.futures import TaskFuture

R = TypeVar("R")

Bindings = tuple[tuple[contextvars.ContextVar[Any], Any], ...]


@dataclass(slots=True)
class Outcome:
    """What a user function did: returned ``value``, or raised ``error``; ``ended`` is the
    ``time.time()`` its body ended, if it ran elsewhere and the reply came later."""

    value: Any = None
    error: BaseException | None = None
    ended: float | None = None


@dataclass(slots=True)
class CallBody:
    """Call the run's own function: ``fn(*args, **kwargs)``.

    The driver reports the moment a worker starts it (``RunHandle.body_started``): that
    is when the attempt's clock starts. ``timeout`` counts from that moment, cut short by
    ``deadline`` (the flow run's). ``bindings`` are the context variables a local call
    sets; ``log_prints`` and ``transactional`` say the same for a call sent elsewhere,
    where context variables do not travel.
    """

    fn: Callable[..., Any]
    args: Sequence[Any]
    kwargs: dict[str, Any]
    is_async: bool = False
    timeout: float | None = None
    deadline: Scope | None = None
    bindings: Bindings = ()
    log_prints: bool = False
    transactional: bool = False
    what: str = "Task run"  # for the timeout message
    # A sync flow's body: it runs in the driver's own thread (the cell's), so at its
    # deadline it is stopped by an exception raised inside it, not abandoned.
    in_this_thread: bool = False


@dataclass(slots=True)
class CallHook:
    """Call a hook ``fn(*args)`` here, in the session (never sent to a worker)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    is_async: bool = False


@dataclass(slots=True)
class WaitFor:
    """Wait until every future in ``futures`` has reached a final state."""

    futures: Sequence[TaskFuture]
    deadline: Scope | None = None


@dataclass(slots=True)
class WaitUntilOpen:
    """Wait until ``gate`` opens (a paused flow run holds its queued runs at its gate)."""

    gate: Gate


@dataclass(slots=True)
class Sleep:
    """Wait ``seconds`` before a retry, or until ``deadline`` if that comes first."""

    seconds: float
    deadline: Scope | None = None


@dataclass(slots=True)
class TakeClaim:
    """Claim a cache key, or get the claim of the identical run already holding it."""

    key: str


@dataclass(slots=True)
class AwaitClaim:
    """Wait for another run's claim to be released; False if waiting would not help."""

    claim: Claim
    deadline: Scope | None = None


@dataclass(frozen=True, slots=True)
class PauseBegan:
    """A body event: the body paused its flow run (``pause_flow_run``) under ``key``."""

    key: str


@dataclass(frozen=True, slots=True)
class PauseEnded:
    """A body event: the body's pause ended; ``how`` (resumed, timed out, cancelled, an
    exception) is the message of the state the run goes on in."""

    how: str


BodyEvent = PauseBegan | PauseEnded
BODY_EVENTS = (PauseBegan, PauseEnded)


@dataclass(frozen=True, slots=True)
class AwaitingBody:
    """What a flow lifecycle yields after taking a body event: no effect, nobody carries
    it out; it still awaits the body's outcome. ``refused``: why it did not take it."""

    refused: str | None = None


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

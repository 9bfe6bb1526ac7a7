"""``Scope``: the one place kernelflow decides time and cancellation.

Modelled on trio's ``CancelScope``: a scope carries a deadline, a cancel and the reason
for it, and scopes nest. A flow run's scope holds the scopes of its attempts' bodies and
of its task runs' attempts; a child's deadline is never later than its parent's, and a
cancelled parent cancels every child. Every wait, claim, pause and body call is given
the innermost scope and honours it; nothing else works out a deadline.

    flow run scope         timeout_seconds, counted from its body's start (per attempt)
    ├── task attempt       the task's timeout_seconds from the moment a worker starts the
    │                      body (queue time is not run time), cut by the flow run's
    └── subflow run scope  a subflow's own, cut by its parent's

A flow run has a scope of its own per attempt (``Scope.inside``), whether or not it has
a timeout: cancelling it (Stop, its timeout, its parent's cancel) is how its runs are
cancelled. A task run with no timeout and no cancel of its own gets no scope object at
all (``None``, or its parent's): the hot path (a direct task call, a large map)
allocates nothing here. A task run's handle makes its scope when it is cancelled, and
reacts to that scope's cancel (``on_cancel``); the flow scope reaches its task runs
through its runner, which holds them (see ``flow_engine``).

All deadline arithmetic lives in this module: ``now``, ``ends_at`` and ``left`` serve
the few places that wait with a plain timeout (``TaskFuture.result(timeout=...)``, a
pause's timeout, the timer thread). The clock can be swapped for a ``FakeClock``
(``use_clock``), so lifecycles are tested without threads or sleeping.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from kernelflow.exceptions import CancelledRun, DeadlineExceeded


class FakeClock:
    """A clock for tests: time moves only when ``advance`` says so."""

    def __init__(self, start: float = 1000.0) -> None:
        self.time = start

    def __call__(self) -> float:
        return self.time

    def advance(self, seconds: float) -> None:
        self.time += seconds


_clock: Callable[[], float] = time.monotonic


def now() -> float:
    """The current time on kernelflow's clock (monotonic seconds)."""
    return _clock()


@contextlib.contextmanager
def use_clock(clock: Callable[[], float]) -> Iterator[Callable[[], float]]:
    """Make ``clock`` kernelflow's clock inside the block (tests: a ``FakeClock``)."""
    global _clock
    previous, _clock = _clock, clock
    try:
        yield clock
    finally:
        _clock = previous


def ends_at(timeout: float | None) -> float | None:
    """The clock time ``timeout`` seconds from now; None for no limit."""
    return None if timeout is None else _clock() + timeout


def left(at: float | None) -> float | None:
    """Seconds until clock time ``at`` (0 once passed); None for no limit."""
    return None if at is None else max(0.0, at - _clock())


class Scope:
    """A deadline and a cancel, nested in a parent scope.

    Attributes:
        at: The clock time at which this scope's own limit passes (inf for none).
        seconds: The limit that set it (for messages).
        what: What times out ("Task run", "Flow run"), for messages.
        parent: The enclosing scope, whose deadline and cancel reach this one.
        reason: Why it was cancelled, once it was (None until then).
    """

    __slots__ = ("at", "seconds", "what", "parent", "reason", "_on_cancel")

    def __init__(
        self,
        at: float = float("inf"),
        seconds: float | None = None,
        what: str = "The run",
        parent: Scope | None = None,
    ) -> None:
        self.at = at
        self.seconds = seconds
        self.what = what
        self.parent = parent
        self.reason: str | None = None
        self._on_cancel: list[Callable[[str], Any]] | None = None

    @classmethod
    def after(
        cls, seconds: float | None, what: str = "The run", parent: Scope | None = None
    ) -> Scope | None:
        """A scope ending ``seconds`` from now inside ``parent``; with no limit of its
        own, the parent itself serves (None when there is none: no object at all)."""
        if seconds is None:
            return parent
        return cls(_clock() + seconds, seconds, what, parent)

    @classmethod
    def inside(cls, parent: Scope | None, seconds: float | None, what: str) -> Scope:
        """A new scope, made even without a limit of its own (a flow run's attempt, whose
        cancel its runs follow), that a cancel of ``parent`` reaches (``on_cancel``) until
        it is ``left``."""
        scope = cls(float("inf") if seconds is None else _clock() + seconds, seconds, what, parent)
        if parent is not None:
            parent.on_cancel(scope.cancel)
        return scope

    def left_parent(self) -> None:
        """This scope's work is over: a later cancel of its parent no longer reaches it."""
        parent = self.parent
        if parent is None:
            return
        with _lock:
            callbacks = parent._on_cancel
            if callbacks is not None and self.cancel in callbacks:
                callbacks.remove(self.cancel)

    def timed(self) -> Scope | None:
        """This scope if a deadline applies to it (its own or an enclosing one's), else
        None: what a wait with a ``timeout=`` argument is given."""
        return self if self.binding().at != float("inf") else None

    def binding(self) -> Scope:
        """The scope in this chain whose deadline comes first (it names the timeout)."""
        found = self
        scope = self.parent
        while scope is not None:
            if scope.at < found.at:
                found = scope
            scope = scope.parent
        return found

    def remaining(self) -> float:
        """Seconds left before this scope or an enclosing one runs out (0 once passed)."""
        return max(0.0, self.binding().at - _clock())

    def within_grace(self, at: float, grace: float) -> bool:
        """Whether clock time ``at`` is at most ``grace`` seconds past this scope's
        deadline (a wait that ends by then is left to end by itself)."""
        return at <= self.binding().at + grace

    def expired(self) -> bool:
        return _clock() >= self.binding().at

    @property
    def cancelled(self) -> str | None:
        """Why this scope or an enclosing one was cancelled; None if none was."""
        scope: Scope | None = self
        while scope is not None:
            if scope.reason is not None:
                return scope.reason
            scope = scope.parent
        return None

    def cancel(self, reason: str = "Cancelled.") -> bool:
        """Cancel this scope (and so every scope inside it): its ``on_cancel`` callbacks
        run, in order, in this thread. False if it was cancelled before."""
        with _lock:
            if self.reason is not None:
                return False
            self.reason = reason
            callbacks, self._on_cancel = self._on_cancel or [], None
        for callback in callbacks:
            callback(reason)
        return True

    def on_cancel(self, callback: Callable[[str], Any]) -> None:
        """Call ``callback(reason)`` when this scope is cancelled (now, if it was)."""
        with _lock:
            if self.reason is None:
                if self._on_cancel is None:
                    self._on_cancel = []
                self._on_cancel.append(callback)
                return
        callback(self.reason)

    def error(self) -> DeadlineExceeded:
        """The error a run that reached this scope's deadline ends with (a TimeoutError)."""
        scope = self.binding()
        return DeadlineExceeded(  # Prefect's wording, which ported code may look for
            f"{scope.what} exceeded timeout of {scope.seconds:g} second(s) "
            f"(timeout_seconds={scope.seconds:g})."
        )

    def check(self) -> None:
        """A checkpoint: raise if the scope was cancelled or its deadline passed."""
        reason = self.cancelled
        if reason is not None:
            raise CancelledRun(reason)
        if self.expired():
            raise self.error()

    def __repr__(self) -> str:
        return f"Scope({self.what}: {self.seconds}s, {self.remaining():.3g}s left)"


_lock = threading.Lock()


def remaining(scope: Scope | None) -> float | None:
    """Seconds left in ``scope``, or None for no scope (for ``timeout=`` arguments)."""
    return None if scope is None else scope.remaining()

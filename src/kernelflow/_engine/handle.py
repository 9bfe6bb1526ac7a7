"""A run handle: one run's lifecycle, as drivers, runners and futures reach it.

Drivers step it (``step``). Runners report to it: a worker started the body
(``body_started``); the call's outcome comes back through the driver. Futures and runners
cancel through it (``cancel``). Whatever happens, the lifecycle is closed in one place,
so a held cache claim is released, the final state set and the future resolved exactly
once, by the same code on every runner:

    step(outcome)        next effect, or None once the lifecycle ended (or was closed)
    close_with(end)      a plain run, carried out without a lifecycle (``plans.py``),
                         ends: ``end()`` settles it, unless it was closed first
    body_started(who)    a worker began the body: Running, and the attempt's clock starts;
                         False if the run was cancelled first (the runner must not run it)
    cancel()             cancel the run's scope (made then: a run nobody cancels has
                         none); the handle reacts to that scope's cancel: it closes the
                         lifecycle (its ``finally`` blocks release claims), stops the
                         body, ends the run Cancelled, resolves its future
    abort(error)         the driver itself failed: close, end Crashed (or Cancelled for an
                         interrupt), so no run is left looking Running
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kernelflow import _transactions as transactions
from kernelflow._lazy_imports import asyncio
from kernelflow._runs import set_state
from kernelflow._scopes.in_thread_deadline import raise_in, set_async_exc
from kernelflow._scopes.scope import Scope
from kernelflow.exceptions import CancelledRun
from kernelflow.states import Cancelled, Crashed, Running, StateType

if TYPE_CHECKING:
    from kernelflow._engine.effects import Effect, Lifecycle
    from kernelflow._runs import TaskRun
    from kernelflow.futures import TaskFuture


class RunHandle:
    """One task run's lifecycle and the facts about it that runners report.

    Attributes:
        run: The run record.
        future: The run's future, resolved once the lifecycle ends (None for a direct call).
        result: What the lifecycle returned (its final state), once it ended.
        loop: The event loop that must run this run, if it is an asyncio task there;
            a blocking wait on it from that loop's thread drives the loop instead.
    """

    __slots__ = (
        "run",
        "future",
        "result",
        "_lifecycle",
        "_lock",
        "_open",
        "_started",
        "_ended",
        "_body_thread",
        "_stopping",
        "_scope",
    )
    loop: asyncio.AbstractEventLoop | None = None
    # What a cancel of a run not yet known to have started says.
    unstarted_note = "Cancelled before it started."
    # What a cancel does to a body running in a thread of this process.
    stop_note = (
        "its thread was stopped at its next Python line (a thread blocked in one long C "
        "call, such as a sleep or a socket read, stops when that call returns)"
    )

    def __init__(
        self, run: TaskRun, lifecycle: Lifecycle[Any], future: TaskFuture | None = None
    ) -> None:
        self.run = run
        self.future = future
        self.result: Any = None
        self._lifecycle = lifecycle
        # Held only while the lifecycle code between two effects runs (never while an
        # effect is carried out), so a cancel from another thread waits microseconds.
        # A run without a future (a direct call) is reached by its own thread only: a
        # stand-in that locks nothing, as a lock is a fair share of a direct call's cost.
        self._lock: Any = threading.Lock() if future is not None else _UNSHARED
        self._open = True
        self._started = False
        self._ended: Callable[[RunHandle], Any] | None = None
        self._body_thread: int | None = None  # the thread running the body, meanwhile
        self._stopping = False  # a cancel was raised in that thread
        self._scope: Scope | None = None  # made when the run is cancelled

    def step(self, outcome: Any = None, thrown: BaseException | None = None) -> Effect | None:
        """Give the lifecycle the last effect's outcome (or ``thrown``, what interrupted the
        driver while it carried the effect out, raised at the lifecycle's ``yield``, where
        the lifecycle decides what it means); the next effect, or None at the end.

        Raises:
            Whatever the lifecycle raised (an interrupt travelling on); the run is
            settled first.
        """
        with self._lock:
            if not self._open:
                return None
            try:
                if thrown is None:
                    return self._lifecycle.send(outcome)
                return self._lifecycle.throw(thrown)
            except StopIteration as stop:
                self.result = stop.value
                self._open = False
                failure = None
            except BaseException as error:
                self._open = False
                failure = error
        self._closed(failure)
        return None

    def close_with(self, end: Callable[[], Any]) -> None:
        """End a run carried out without a lifecycle (a plain run, ``plans.py``), whose
        body has returned: as ``body_returned``, then call ``end()``, which settles the
        run and gives its final state, under the lock, unless the run was closed first
        (cancelled); then as ``step`` does at a lifecycle's end.

        Raises:
            Whatever ``end`` raised (an interrupt travelling on); the run is settled first.
        """
        with self._lock:
            self._body_over()
            if not self._open:
                return
            self._open = False
            try:
                self.result = end()
                failure = None
            except BaseException as error:
                failure = error
        self._closed(failure)

    def _closed(self, failure: BaseException | None) -> None:
        """The lifecycle ended (``failure``: what it raised): settle, resolve, tell."""
        if failure is not None:
            self._crash(failure)
            self._finish()
            raise failure
        self._finish()

    def body_started(self, worker: str, at: float | None = None, thread: int | None = None) -> bool:
        """A worker began the run's body: record it Running on that worker, now (or at
        ``at``, the ``time.time()`` the worker reported, if the report came late);
        ``thread``: the body runs in that thread of this process (``body_running``).

        Returns:
            False if the run was cancelled or ended first: the body must not run.
        """
        with self._lock:
            if not self._open:
                return False
            run = self.run
            run.worker = worker
            self._started = True
            self._body_thread = thread
            if run.run_count == 1:
                started = StateType.RUNNING if at is None else replace(Running(), timestamp=at)
                return set_state(run, started)
            return not run.state.is_final()  # a retry: the run is Retrying, still running

    def cancel(self, message: str | None = None) -> bool:
        """Cancel the run's scope: the run ends Cancelled (``message``, else what it was
        doing), its lifecycle is closed (releasing a claim it holds), its body stopped.

        Returns:
            False if the run had already ended (or was cancelled before).
        """
        if not self._open or self.run.state.is_final():
            return False
        # The reaction (``_cancelled``) decides under the lock whether the run was still
        # open; a run that ended meanwhile keeps its state.
        return self.scope().cancel(_DEFAULT_REASON if message is None else message) and (
            self.run.state.is_cancelled()
        )

    def scope(self) -> Scope:
        """The run's scope, made on first need (a run nobody cancels never has one);
        its cancel, by whoever, is what cancels the run (``_cancelled``)."""
        scope = self._scope
        if scope is None:
            with self._lock:
                scope = self._scope
                if scope is None:
                    scope = self._scope = Scope(what="Task run")
            scope.on_cancel(self._cancelled)
        return scope

    def _cancelled(self, reason: str) -> None:
        """The run's scope was cancelled: end the run Cancelled, if it has not ended."""
        with self._lock:
            if not self._open or self.run.state.is_final():
                return
            self._open = False
            started = self._started
            self._closing()
            if self._lifecycle is not None:  # None: claimed by a thread that is making it
                self._lifecycle.close()  # GeneratorExit at its yield: finally blocks run
            thread = self._body_thread
            if thread is not None:  # the body stops at its next bytecode in that thread
                self._stopping = True
                raise_in(thread, CancelledRun("The run was cancelled."))
        if reason is _DEFAULT_REASON:
            reason = (
                f"Cancelled while running; {self.stop_note}." if started else self.unstarted_note
            )
        if set_state(self.run, Cancelled(reason)):
            transactions.task_failed(self.run)
        self._stop_body()
        self._finish()

    def _closing(self) -> None:
        """Called (under the lock) as a cancel closes the run: a runner's own first step."""

    def _stop_body(self) -> None:
        """Called once a cancelled run is Cancelled: a runner stops what still runs it."""

    def abort(self, error: BaseException) -> None:
        """The driver failed outside the lifecycle: close it and settle the run."""
        with self._lock:
            if not self._open:
                return
            self._open = False
            if self._lifecycle is not None:
                self._lifecycle.close()
        self._crash(error)
        self._finish()

    def body_running(self, thread: int) -> None:
        """The body runs in ``thread`` now (until ``body_returned``): a cancel stops it."""
        self._body_thread = thread

    def body_returned(self) -> None:
        """The body is over: withdraw a cancel raised in its thread too late to land."""
        with self._lock:
            self._body_over()

    def _body_over(self) -> None:
        # Under the lock: a cancel raised in the body's thread too late to land is
        # withdrawn, and no later cancel raises one there.
        thread, self._body_thread = self._body_thread, None
        if self._stopping and thread is not None:
            self._stopping = False
            set_async_exc(thread, None)

    @property
    def open(self) -> bool:
        """False once the lifecycle ended or was closed."""
        return self._open

    @property
    def started(self) -> bool:
        """Whether a worker ever started the body."""
        return self._started

    def when_ended(self, callback: Callable[[RunHandle], Any]) -> None:
        """Call ``callback(handle)`` when the lifecycle ends (one callback: the runner's)."""
        self._ended = callback

    def run_inline_if_queued(self) -> None:
        """Called before a blocking wait on this run (the thread runner runs it inline)."""

    def _crash(self, error: BaseException) -> None:
        crash_if_unfinished(self.run, error)

    def _finish(self) -> None:
        future = self.future
        if future is not None:
            future._resolve()
            # Nothing reaches an ended run through its future any more: let this handle,
            # its lock and its finished lifecycle go now, not with the flow's futures
            # (on a big map they were most of the garbage collector's work).
            future._handle = None
        ended = self._ended
        if ended is not None:
            self._ended = None
            ended(self)


class _Unshared:
    """Stands in for the lock of a handle only its own thread uses."""

    __slots__ = ()

    def __enter__(self) -> None:
        pass

    def __exit__(self, *exc_info: Any) -> None:
        pass


_UNSHARED = _Unshared()
# The reason a plain ``cancel()`` gives: the run's message then says what it was doing.
_DEFAULT_REASON = "Cancelled."


def crash_if_unfinished(run: TaskRun, error: BaseException) -> None:
    # The lifecycle itself failed (or was interrupted outside the task body): a run
    # must never be left looking Running forever.
    if not run.state.is_final():
        if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
            set_state(run, Cancelled("Interrupted by the user.", error))
        else:
            set_state(run, Crashed(error, f"kernelflow failed running this task: {error!r}"))
        transactions.task_failed(run)

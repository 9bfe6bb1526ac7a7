"""A call on Dask: run the body, stay stoppable, say when it started; the starts in order.

``run_on_dask`` is the function the Dask runner submits. It runs the body on a thread
of its own while the Dask task thread watches it. At the body's timeout, or once Dask
cancelled the call, the task thread returns at once, so the worker's slot is free for
the next task, and the body is stopped: ``DeadlineExceeded`` (or ``CancelledRun``) is
raised in its thread at its next Python line, as on the thread runner. The body threads
are kept for the next calls (``_BodyThreads``): starting a thread per call was a good
share of a quick call's cost on the worker.

When the body started travels two ways. A call with a deadline (its own
``timeout_seconds`` or its flow run's) reports it at once, with a Dask event on
``STARTED_TOPIC``: only then is the run Running and its clock counting (time waiting
in a queue is not run time). Any other call reports it only if its body is still
running after ``REPORT_AFTER``, so a run that takes a while shows Running meanwhile;
a quicker one's start comes back in its reply, with its end. An event per call was most
of the cost Dask added to a quick call: the worker, the scheduler and the client each
handled one more message per call.

What remains: a body blocked in one long C call (a sleep, a socket read) gets that
exception only when the call returns; it holds no Dask slot meanwhile, so it cannot
wedge the cluster, and it runs nothing more of its own afterwards. Restarting that
worker (``client.restart_workers``) would stop it at once, at the price of every other
task on the worker, so kernelflow leaves that choice to you.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from kernelflow._runners.wire import reply_for, run_packed
from kernelflow._scopes.in_thread_deadline import raise_in_this_thread_at
from kernelflow._scopes.scope import Scope
from kernelflow.exceptions import CancelledRun

STARTED_TOPIC = "kernelflow-started"
POLL_SECONDS = 0.05  # how soon a cancelled call lets go of its worker slot
REPORT_AFTER = 0.01  # a body without a deadline still running this long reports its start
QUIET_ENDS_KEPT = 256  # per worker, the unreported calls a start report names (see below)


def run_on_dask(
    fn_blob: bytes, arguments: bytes, key: str, timeout: float | None, report_now: bool
) -> tuple[bytes, str, float, float]:
    """Run one packed call on this Dask worker (never raises).

    Returns:
        The packed reply, this worker's address, and when the body started and ended
        (``time.time()``).
    """
    from distributed import get_worker

    worker = get_worker()
    address = worker.address
    started = time.time()
    if report_now:
        _report_start(worker, key, started)
    reported = report_now
    # No deadline of its own: the guard is only for a cancel to stop the body.
    body = _Body(fn_blob, arguments, address, Scope.after(timeout, "Task run") or Scope())
    # In this thread's context, where Dask keeps the worker for get_worker() and friends.
    _body_threads.run(contextvars.copy_context(), body)
    while not body.done.wait(POLL_SECONDS if reported else REPORT_AFTER):
        if not reported:
            _report_start(worker, key, started)
            reported = True
        error = _why_stop(body.scope, worker, key)
        if error is not None:
            guard = body.guard
            if guard is not None and not body.scope.expired():  # (expired: it raises itself)
                guard.stop(error)
            return reply_for(error), address, started, time.time()
    if not reported:
        _ended_quietly(address, key)
    assert body.reply is not None  # a body always replies before it is done
    return body.reply, address, started, body.ended


class _Body:
    """One call's body, run in a body thread; the watcher reads what it left."""

    __slots__ = ("fn_blob", "arguments", "address", "scope", "guard", "reply", "ended", "done")

    def __init__(self, fn_blob: bytes, arguments: bytes, address: str, scope: Scope) -> None:
        self.fn_blob = fn_blob
        self.arguments = arguments
        self.address = address
        self.scope = scope
        self.guard: raise_in_this_thread_at | None = None
        self.reply: bytes | None = None
        self.ended = 0.0
        self.done = threading.Event()

    def __call__(self) -> None:
        try:
            self.guard = raise_in_this_thread_at(self.scope)
            with self.guard:  # leaving it clears an exception set too late to land
                self.reply = run_packed(self.fn_blob, self.arguments, self.address)
        except BaseException as error:  # stopped in its reply's packing: the watcher replies
            if self.reply is None:
                self.reply = reply_for(error)
        finally:
            self.ended = time.time()
            self.done.set()


def _why_stop(scope: Scope, worker: Any, key: str) -> BaseException | None:
    """Why the watcher must let go of the call now, if it must: its timeout, or a cancel."""
    if scope.expired():  # the guard raises in the body too
        return scope.error()
    if _cancelled(worker, key):
        return CancelledRun("Dask cancelled this call.")
    return None


def _cancelled(worker: Any, key: str) -> bool:
    # Once the client forgets a running key, the worker keeps its task as "cancelled"
    # (or drops it) until the function returns.
    try:
        task = worker.state.tasks.get(key)
    except AttributeError:  # a distributed without a worker state machine
        return False
    return task is None or task.state in ("cancelled", "released", "forgotten")


class _BodyThreads:
    """Threads that run bodies, each kept for the next body once its own returned.

    A body given up (timed out, cancelled) keeps its thread until it returns, so there
    are as many threads as bodies ran at once, given up ones included.
    """

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[tuple[contextvars.Context, Callable[[], None]]]
        self._jobs = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0  # threads waiting for a job, less the jobs queued for them

    def run(self, context: contextvars.Context, job: Callable[[], None]) -> None:
        with self._lock:
            start = not self._idle
            if not start:
                self._idle -= 1
        self._jobs.put((context, job))
        if start:
            threading.Thread(target=self._serve, name="kernelflow-body", daemon=True).start()

    def _serve(self) -> None:
        while True:
            context, job = self._jobs.get()
            context.run(job)  # never raises: a body replies with its error
            del context, job  # hold nothing of a finished call while idle
            with self._lock:
                self._idle += 1


_body_threads = _BodyThreads()

# Calls that ended on a worker without a start report, by worker address, most recent
# last: the next start report names them, since their replies may not have been
# handed on yet (see ``StartReports``).
_quiet_ends: dict[str, deque[str]] = {}
_quiet_lock = threading.Lock()


def _ended_quietly(address: str, key: str) -> None:
    with _quiet_lock:
        ended = _quiet_ends.get(address)
        if ended is None:
            ended = _quiet_ends[address] = deque(maxlen=QUIET_ENDS_KEPT)
        ended.append(key)


def _report_start(worker: Any, key: str, at: float) -> None:
    with _quiet_lock:
        before = list(_quiet_ends.pop(worker.address, ()))
    message = {"key": key, "worker": worker.address, "at": at, "after": before}
    worker.log_event(STARTED_TOPIC, message)


class StartReports:
    """Hands on start reports in an order that never shows a worker running too much.

    A start report travels worker -> scheduler -> client as an event, while the previous
    call's reply still has to be gathered from the worker: handed on at once, the next
    run would show Running before the one it followed on that worker had ended. So a
    report waits while a call that worker finished is not yet settled here; the run's
    Running state still carries the start time the worker reported. A report names the
    calls that ended on its worker unreported since the last one (their start and end
    come in their replies): it waits for those too.
    """

    def __init__(self, away: Callable[[str], Any]) -> None:
        self._away = away  # a call's key -> the call, while its reply is not handed on
        self._lock = threading.Lock()
        self._running: dict[str, list[Any]] = {}  # worker -> calls reported started
        self._parked: dict[str, list[tuple[Any, float]]] = {}

    def started(self, call: Any, worker: str, at: float, after: list[str] | tuple = ()) -> None:
        with self._lock:
            call.address = worker
            running = self._running.setdefault(worker, [])
            for key in after:
                quiet = self._away(key)
                if quiet is not None and not quiet.done and quiet.address is None:
                    quiet.address, quiet.ended_quietly = worker, True
                    running.append(quiet)
            if any(_finished_there(other) for other in running):
                self._parked.setdefault(worker, []).append((call, at))
                return
            running.append(call)
        _hand_on(call, worker, at)

    def ended(self, call: Any) -> None:
        """``call`` is settled: hand on the starts that waited for it."""
        with self._lock:  # (a report naming a quiet call sets its address under it)
            worker = call.address
            if worker is None:
                return
            running = self._running.get(worker, [])
            if call in running:
                running.remove(call)
            if any(_finished_there(other) for other in running):
                return
            parked = self._parked.pop(worker, [])
            running.extend(waiting for waiting, _ in parked)
        for waiting, at in parked:
            _hand_on(waiting, worker, at)


def _finished_there(call: Any) -> bool:
    if call.done:
        return False
    future = call.future
    return call.ended_quietly or (future is not None and future.status != "pending")


def _hand_on(call: Any, worker: str, at: float) -> None:
    if not call.done and call.on_started is not None:
        call.started = True
        call.on_started(worker, at)

"""A call on Dask: report its start, run the body, stay stoppable; the starts in order.

``run_on_dask`` is the function the Dask runner submits. It tells the notebook that the
body started (a Dask event on ``STARTED_TOPIC``: only then is the run Running and its
``timeout_seconds`` counting), then runs the body on a thread of its own while the Dask
task thread watches it. At the body's timeout, or once Dask cancelled the call, the task
thread returns at once, so the worker's slot is free for the next task, and the body
is stopped: ``DeadlineExceeded`` (or ``CancelledRun``) is raised in its thread at its
next Python line, as on the thread runner.

What remains: a body blocked in one long C call (a sleep, a socket read) gets that
exception only when the call returns; it holds no Dask slot meanwhile, so it cannot
wedge the cluster, and it runs nothing more of its own afterwards. Restarting that
worker (``client.restart_workers``) would stop it at once, at the price of every other
task on the worker, so kernelflow leaves that choice to you.
"""

from __future__ import annotations

import contextvars
import threading
import time
from typing import Any

from kernelflow._runners.wire import reply_for, run_packed
from kernelflow._scopes.in_thread_deadline import raise_in_this_thread_at
from kernelflow._scopes.scope import Scope
from kernelflow.exceptions import CancelledRun

STARTED_TOPIC = "kernelflow-started"
POLL_SECONDS = 0.05  # how soon a cancelled call lets go of its worker slot


def run_on_dask(
    fn_blob: bytes, arguments: bytes, key: str, timeout: float | None
) -> tuple[bytes, float]:
    """Run one packed call on this Dask worker; the packed reply and the time the body
    ended (never raises)."""
    from distributed import get_worker

    worker = get_worker()
    address = worker.address
    worker.log_event(STARTED_TOPIC, {"key": key, "worker": address, "at": time.time()})
    # No deadline of its own: the guard is only for a cancel to stop the body.
    scope = Scope.after(timeout, "Task run") or Scope()
    reply: bytes | None = None
    ended = 0.0
    guard: raise_in_this_thread_at | None = None
    done = threading.Event()

    def body() -> None:
        nonlocal reply, ended, guard
        try:
            guard = raise_in_this_thread_at(scope)
            with guard:
                reply = run_packed(fn_blob, arguments, address)
        except BaseException as error:  # stopped in its reply's packing: the watcher replies
            if reply is None:
                reply = reply_for(error)
        finally:
            ended = time.time()
            done.set()

    # In this thread's context, where Dask keeps the worker for get_worker() and friends.
    context = contextvars.copy_context()
    threading.Thread(
        target=context.run, args=(body,), name=f"kernelflow-{key}", daemon=True
    ).start()
    while not done.wait(POLL_SECONDS):
        if scope.expired():  # the guard raises in the body too
            return reply_for(scope.error()), time.time()
        if _cancelled(worker, key):
            error = CancelledRun("Dask cancelled this call.")
            if guard is not None:
                guard.stop(error)
            return reply_for(error), time.time()
    assert reply is not None  # body() always replies before it sets done
    return reply, ended


def _cancelled(worker: Any, key: str) -> bool:
    # Once the client forgets a running key, the worker keeps its task as "cancelled"
    # (or drops it) until the function returns.
    try:
        task = worker.state.tasks.get(key)
    except AttributeError:  # a distributed without a worker state machine
        return False
    return task is None or task.state in ("cancelled", "released", "forgotten")


class StartReports:
    """Hands on start reports in an order that never shows a worker running too much.

    A start report travels worker -> scheduler -> client as an event, while the previous
    call's reply still has to be gathered from the worker: handed on at once, the next
    run would show Running before the one it followed on that worker had ended. So a
    report waits while a call that worker finished is not yet settled here; the run's
    Running state still carries the start time the worker reported.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, list[Any]] = {}  # worker -> calls reported started
        self._parked: dict[str, list[tuple[Any, float]]] = {}

    def started(self, call: Any, worker: str, at: float) -> None:
        with self._lock:
            call.address = worker
            running = self._running.setdefault(worker, [])
            if any(_finished_there(other) for other in running):
                self._parked.setdefault(worker, []).append((call, at))
                return
            running.append(call)
        _hand_on(call, worker, at)

    def ended(self, call: Any) -> None:
        """``call`` is settled: hand on the starts that waited for it."""
        worker = getattr(call, "address", None)
        if worker is None:
            return
        with self._lock:
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
    future = call.future
    return not call.done and future is not None and future.status != "pending"


def _hand_on(call: Any, worker: str, at: float) -> None:
    if not call.done and call.on_started is not None:
        call.started = True
        call.on_started(worker, at)

"""What runs on a Dask worker for each call: report the start, run the body, stay stoppable.

``run_on_dask`` is the function the Dask runner submits. It tells the notebook that the
body started (a Dask event on ``STARTED_TOPIC``: only then is the run Running and its
``timeout_seconds`` counting), then runs the body on a thread of its own while the Dask
task thread watches it. At the body's timeout, or once Dask cancelled the call, the task
thread returns at once, so the worker's slot is free for the next task.

What remains: Python cannot kill a thread, so a body that never returns keeps running
(and holding whatever it holds) in its abandoned thread until the worker process ends.
It no longer holds a Dask slot, so it cannot wedge the cluster; a body that spins the
CPU slows its worker. Restarting that worker (``client.restart_workers``) would stop it
for real, at the price of every other task on the worker, so kernelflow leaves that
choice to you.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

from kernelflow._engine.calling import timeout_error
from kernelflow._engine.deadline import Deadline
from kernelflow._runners.wire import reply_for, run_packed
from kernelflow.exceptions import CancelledRun

STARTED_TOPIC = "kernelflow-started"
POLL_SECONDS = 0.05  # how soon a cancelled call lets go of its worker slot


def run_on_dask(fn_blob: bytes, arguments: bytes, key: str, timeout: float | None) -> bytes:
    """Run one packed call on this Dask worker; the packed reply (never raises)."""
    from distributed import get_worker

    worker = get_worker()
    address = worker.address
    worker.log_event(STARTED_TOPIC, {"key": key, "worker": address})
    deadline = Deadline.after(timeout, "Task run")
    box: list[bytes] = []
    done = threading.Event()

    def body() -> None:
        try:
            box.append(run_packed(fn_blob, arguments, address))
        finally:
            done.set()

    # In this thread's context, where Dask keeps the worker for get_worker() and friends.
    context = contextvars.copy_context()
    threading.Thread(
        target=context.run, args=(body,), name=f"kernelflow-{key}", daemon=True
    ).start()
    while not done.wait(POLL_SECONDS):
        if deadline is not None and deadline.expired():
            return reply_for(timeout_error(deadline))
        if _cancelled(worker, key):
            return reply_for(CancelledRun("Dask cancelled this call."))
    return box[0]


def _cancelled(worker: Any, key: str) -> bool:
    # Once the client forgets a running key, the worker keeps its task as "cancelled"
    # (or drops it) until the function returns.
    try:
        task = worker.state.tasks.get(key)
    except AttributeError:  # a distributed without a worker state machine
        return False
    return task is None or task.state in ("cancelled", "released", "forgotten")

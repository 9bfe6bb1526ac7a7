"""The session-wide runner for ``submit``/``map``/``delay`` called outside any flow.

In a notebook people submit work from one cell and keep working in the next while its
future updates, so outside a flow these calls run on a background runner, created on
first use and shut down when the interpreter exits, once the runs still going have
finished (a script that submits work and ends still gets it done).

It is a thread runner, unless the environment variable ``KERNELFLOW_DASK_ADDRESS``
names a Dask scheduler (``tcp://host:8786``), in which case it is a ``DaskTaskRunner``
connected to it; ``KERNELFLOW_DASK_ADDRESS=local`` starts an embedded LocalCluster.
The variable is read when the runner is first needed.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from kernelflow._runners.local import TaskRunner, ThreadPoolTaskRunner

DASK_ADDRESS_VARIABLE = "KERNELFLOW_DASK_ADDRESS"

_lock = threading.Lock()
_runner: TaskRunner | None = None


def background_runner() -> TaskRunner:
    global _runner
    if _runner is None:
        with _lock:
            if _runner is None:
                runner = _configured_runner()
                runner.__enter__()
                atexit.register(_finish_at_exit, runner)
                _runner = runner
    return _runner


def _finish_at_exit(runner: TaskRunner) -> None:
    """At interpreter exit, let the runs submitted outside a flow finish (as
    ``concurrent.futures`` does), saying so; Ctrl+C stops waiting."""
    from kernelflow.futures import wait

    pending = [future for future in runner.unfinished_futures() if not future.state.is_final()]
    if pending:
        try:
            print(
                f"kernelflow: waiting for {len(pending)} task run(s) submitted outside a flow "
                "to finish before exiting (press Ctrl+C to stop waiting and drop them)",
                file=sys.stderr,
                flush=True,
            )
            wait(pending)
        except KeyboardInterrupt:
            left = sum(1 for future in pending if not future.state.is_completed())
            print(f"kernelflow: not waiting; {left} task run(s) dropped", file=sys.stderr)
    runner.__exit__(None, None, None)


def _configured_runner() -> TaskRunner:
    address = os.environ.get(DASK_ADDRESS_VARIABLE, "").strip()
    if not address:
        return ThreadPoolTaskRunner()
    from kernelflow._runners.dask import DaskTaskRunner

    return DaskTaskRunner() if address == "local" else DaskTaskRunner(address=address)

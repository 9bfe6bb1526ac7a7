"""The session-wide runner for ``submit``/``map``/``delay`` called outside any flow.

In a notebook people submit work from one cell and keep working in the next while its
future updates, so outside a flow these calls run on a background runner, created on
first use and shut down when the interpreter exits.

It is a thread runner, unless the environment variable ``KERNELFLOW_DASK_ADDRESS``
names a Dask scheduler (``tcp://host:8786``), in which case it is a ``DaskTaskRunner``
connected to it; ``KERNELFLOW_DASK_ADDRESS=local`` starts an embedded LocalCluster.
The variable is read when the runner is first needed.
"""

from __future__ import annotations

import atexit
import os
import threading

from kernelflow.task_runners import TaskRunner, ThreadPoolTaskRunner

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
                atexit.register(runner.__exit__, None, None, None)
                _runner = runner
    return _runner


def _configured_runner() -> TaskRunner:
    address = os.environ.get(DASK_ADDRESS_VARIABLE, "").strip()
    if not address:
        return ThreadPoolTaskRunner()
    from kernelflow.task_runners import DaskTaskRunner

    return DaskTaskRunner() if address == "local" else DaskTaskRunner(address=address)

"""The session-wide runner for ``submit``/``map``/``delay`` called outside any flow.

In a notebook people submit work from one cell and keep working in the next while its
future updates, so outside a flow these calls run on a background thread runner,
created on first use and shut down when the interpreter exits.
"""

from __future__ import annotations

import atexit
import threading

from kernelflow.task_runners import TaskRunner, ThreadPoolTaskRunner

_lock = threading.Lock()
_runner: TaskRunner | None = None


def background_runner() -> TaskRunner:
    global _runner
    if _runner is None:
        with _lock:
            if _runner is None:
                runner = ThreadPoolTaskRunner()
                runner.__enter__()
                atexit.register(runner.__exit__, None, None, None)
                _runner = runner
    return _runner

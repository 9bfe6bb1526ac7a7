"""Task runners decide where submitted task runs execute (``prefect.task_runners``).

The runners live in ``kernelflow._runners``; the process and Dask runners are loaded on
first use, so ``import kernelflow`` never imports ``multiprocessing`` machinery or
``distributed``.
"""

from __future__ import annotations

from typing import Any

from kernelflow._runners.local import TaskRunner, ThreadPoolTaskRunner

# The process and Dask runners are loaded on first use by the module __getattr__ below.
__all__ = ["TaskRunner", "ThreadPoolTaskRunner", "ProcessPoolTaskRunner", "DaskTaskRunner"]  # noqa: F822


def __getattr__(name: str) -> Any:
    # The process and Dask runners live in their own modules; importing them here on
    # demand keeps `import kernelflow` light.
    if name == "ProcessPoolTaskRunner":
        from kernelflow._runners.process import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner
    if name == "DaskTaskRunner":
        from kernelflow._runners.dask import DaskTaskRunner

        return DaskTaskRunner
    raise AttributeError(f"module 'kernelflow.task_runners' has no attribute {name!r}")

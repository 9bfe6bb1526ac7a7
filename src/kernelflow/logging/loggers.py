"""Run loggers made by hand, and switching them off (``prefect.logging.loggers``).

``get_run_logger()`` finds the current run by itself; ``flow_run_logger(flow_run)`` and
``task_run_logger(task_run)`` make the logger of a run record you hold, such as the one
a state-change hook receives (``def on_failure(flow, flow_run, state)``).
``disable_run_logger()`` silences run loggers in a block, e.g. around ``my_task.fn()``
in a unit test.
"""

from __future__ import annotations

import contextlib
import logging as _stdlib_logging
from collections.abc import Iterator
from typing import Any

from kernelflow._logging import RUN_LOGGER_NAMES, get_run_logger, run_logger

__all__ = [
    "disable_run_logger",
    "flow_run_logger",
    "get_logger",
    "get_run_logger",
    "task_run_logger",
]


def get_logger(name: str | None = None) -> _stdlib_logging.Logger:
    """The ``kernelflow`` logger, or ``kernelflow.<name>``."""
    return _stdlib_logging.getLogger("kernelflow" if not name else f"kernelflow.{name}")


def flow_run_logger(
    flow_run: Any = None, flow: Any = None, flow_run_id: Any = None, **extra: Any
) -> _stdlib_logging.LoggerAdapter:
    """The logger of ``flow_run`` (a ``FlowRun`` record), outside or inside its run.

    ``flow`` is accepted for Prefect's signature (the record knows its flow); extra
    keyword arguments are attached to every record it logs.

    Raises:
        ValueError: neither ``flow_run`` nor ``flow_run_id`` given.
    """
    if flow_run is None and flow_run_id is None:
        raise ValueError("Either 'flow_run' or 'flow_run_id' must be provided.")
    if flow_run is None:  # only an id: kernelflow keeps no index of runs by id
        from kernelflow._runners.wire import RunInfo

        flow_run = RunInfo(str(flow_run_id), "<unknown>")
    adapter = run_logger(flow_run=flow_run)
    return _stdlib_logging.LoggerAdapter(adapter.logger, {**adapter.extra, **extra})


def task_run_logger(
    task_run: Any, task: Any = None, flow_run: Any = None, flow: Any = None, **extra: Any
) -> _stdlib_logging.LoggerAdapter:
    """The logger of ``task_run`` (a ``TaskRun`` record), outside or inside its run.

    ``task``, ``flow_run`` and ``flow`` are accepted for Prefect's signature (the record
    knows them); extra keyword arguments are attached to every record it logs.
    """
    adapter = run_logger(task_run=task_run)
    return _stdlib_logging.LoggerAdapter(adapter.logger, {**adapter.extra, **extra})


@contextlib.contextmanager
def disable_run_logger() -> Iterator[None]:
    """Silence the flow-run and task-run loggers inside the block, then restore them.

    ``get_run_logger()`` outside a run then gives a silent logger too, so a task's
    function called directly (``my_task.fn()``) logs nothing.
    """
    loggers = [_stdlib_logging.getLogger(name) for name in RUN_LOGGER_NAMES]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, was in zip(loggers, before, strict=True):
            logger.disabled = was

"""Logging, under Prefect's module path (``prefect.logging``).

``get_run_logger()`` gives the logger of the current task or flow run (its messages go
to the run's display in a notebook); ``get_logger(name)`` a plain logger under
kernelflow's own (``kernelflow.<name>``), as Prefect's gives one under ``prefect``;
``disable_run_logger()`` silences run loggers in a block. ``kernelflow.logging.loggers``
also has ``flow_run_logger`` and ``task_run_logger`` (Prefect's module).
"""

from __future__ import annotations

from kernelflow.logging import loggers
from kernelflow.logging.loggers import (
    disable_run_logger,
    flow_run_logger,
    get_logger,
    get_run_logger,
    task_run_logger,
)

__all__ = loggers.__all__

"""Logging, under Prefect's module path (``prefect.logging``).

``get_run_logger()`` gives the logger of the current task or flow run (its messages go
to the run's display in a notebook); ``get_logger(name)`` a plain logger under
kernelflow's own (``kernelflow.<name>``), as Prefect's gives one under ``prefect``;
``disable_run_logger()`` silences run loggers in a block. ``kernelflow.logging.loggers``
also has ``flow_run_logger`` and ``task_run_logger`` (Prefect's module).
"""

from __future__ import annotations

# Prefect's prefect.logging re-exports its loggers module's names: the same here.
from kernelflow.logging.loggers import *  # noqa: F403
from kernelflow.logging.loggers import __all__  # noqa: F401

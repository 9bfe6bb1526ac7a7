"""Logging, under Prefect's module path (``prefect.logging``).

``get_run_logger()`` gives the logger of the current task or flow run (its messages go
to the run's display in a notebook); ``get_logger(name)`` a plain logger under
kernelflow's own (``kernelflow.<name>``), as Prefect's gives one under ``prefect``.
"""

from __future__ import annotations

import logging as _stdlib_logging

from kernelflow._logging import get_run_logger

__all__ = ["get_logger", "get_run_logger"]


def get_logger(name: str | None = None) -> _stdlib_logging.Logger:
    """The ``kernelflow`` logger, or ``kernelflow.<name>``."""
    return _stdlib_logging.getLogger("kernelflow" if not name else f"kernelflow.{name}")

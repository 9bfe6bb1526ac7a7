"""Run loggers, and sending ``print`` to them for runs with ``log_prints=True``.

Log records of flow and task runs go to the ``kernelflow`` logger, tagged with the run
names. Unless the application configured that logger itself, kernelflow gives it a
handler that writes to whatever ``sys.stderr`` is *at the moment of writing*, so that in
a notebook the lines land in the output of the cell that is running.
"""

from __future__ import annotations

import builtins
import logging
import os
import sys
import threading
from contextvars import ContextVar
from typing import Any

_root = logging.getLogger("kernelflow")
_setup_lock = threading.Lock()
_handler_installed = False

# The logger that ``print`` writes to in the current run, when log_prints is on.
print_logger: ContextVar[logging.LoggerAdapter | None] = ContextVar(
    "kernelflow_print_logger", default=None
)
_original_print = builtins.print
_print_patched = False


class _CurrentStderrHandler(logging.StreamHandler):
    """A StreamHandler that looks up ``sys.stderr`` on every record (notebooks swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


class _RunFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "run_label"):
            record.run_label = record.name
        return super().format(record)


def _ensure_handler() -> None:
    global _handler_installed
    if _handler_installed:
        return
    with _setup_lock:
        if _handler_installed:
            return
        if not _root.handlers:
            handler = _CurrentStderrHandler()
            handler.setFormatter(
                _RunFormatter(
                    "%(asctime)s.%(msecs)03d | %(levelname)-7s | %(run_label)s - %(message)s",
                    datefmt="%H:%M:%S",
                )
            )
            _root.addHandler(handler)
            if _root.level == logging.NOTSET:  # unless the application chose a level
                _root.setLevel(os.environ.get("KERNELFLOW_LOGGING_LEVEL", "INFO").upper())
            # Our handler prints the records; passing them up too would print them twice
            # wherever the application also configured the root logger.
            _root.propagate = False
        _handler_installed = True


def run_logger(task_run: Any = None, flow_run: Any = None) -> logging.LoggerAdapter:
    """A logger tagged with the given run (a task run's flow run is found by itself)."""
    _ensure_handler()
    if task_run is not None:
        flow_run = task_run.flow_run
        extra = {
            "task_run_name": task_run.name,
            "flow_run_name": flow_run.name if flow_run else None,
            "run_label": f"Task run {task_run.name!r}",
        }
        return logging.LoggerAdapter(logging.getLogger("kernelflow.task_runs"), extra)
    if flow_run is not None:
        extra = {"flow_run_name": flow_run.name, "run_label": f"Flow run {flow_run.name!r}"}
        return logging.LoggerAdapter(logging.getLogger("kernelflow.flow_runs"), extra)
    return logging.LoggerAdapter(_root, {"run_label": "kernelflow"})


def get_run_logger() -> logging.LoggerAdapter:
    """The logger of the current task run, else of the current flow run.

    Records carry ``task_run_name`` and ``flow_run_name`` attributes. Outside any run it
    is the plain ``kernelflow`` logger, so code shared with scripts can call it anywhere.
    """
    from kernelflow._context import flow_run_context, task_run_context

    task_ctx = task_run_context.get()
    if task_ctx is not None:
        return run_logger(task_run=task_ctx.task_run)
    flow_ctx = flow_run_context.get()
    return run_logger(flow_run=flow_ctx.flow_run if flow_ctx else None)


def enable_print_redirection() -> None:
    """Replace ``builtins.print`` with a version that honours ``print_logger``.

    Done once, the first time a run has ``log_prints=True``; outside such runs the
    replacement calls the original ``print`` unchanged.
    """
    global _print_patched
    with _setup_lock:
        if not _print_patched:
            builtins.print = _print
            _print_patched = True


def _print(
    *args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    logger = print_logger.get()
    if logger is None or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    logger.info((" " if sep is None else sep).join(str(arg) for arg in args))

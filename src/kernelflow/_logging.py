"""Run loggers, and sending ``print`` to them for runs with ``log_prints=True``.

Log records of flow and task runs go to the ``kernelflow`` logger, tagged with the run
names. Unless the application configured that logger itself, kernelflow gives it a
handler that writes to whatever ``sys.stderr`` is *at the moment of writing*, so that in
a notebook the lines land in the output of the cell that is running.

In a kernel with live flow displays on, that handler keeps the lines of a displayed
flow run (its subflows' and task runs' included) in the run's ``RunLog`` instead, where
its display shows them, rather than printing pink stderr boxes under the cell. A run's
lines are kept from its start, so the display finds the ones logged before it opened.
"""

from __future__ import annotations

import builtins
import collections
import logging
import os
import sys
import threading
import weakref
from contextvars import ContextVar
from typing import Any

_root = logging.getLogger("kernelflow")
# The loggers of run records; disable_run_logger() switches them off.
RUN_LOGGER_NAMES = ("kernelflow.flow_runs", "kernelflow.task_runs")
_task_runs_logger = logging.getLogger(RUN_LOGGER_NAMES[1])
_setup_lock = threading.Lock()
_handler_installed = False

# The logger that ``print`` writes to in the current run, when log_prints is on.
print_logger: ContextVar[logging.LoggerAdapter | None] = ContextVar(
    "kernelflow_print_logger", default=None
)
_original_print = builtins.print
_print_patched = False


MAX_LINES = 1000  # lines a RunLog keeps (the latest); WARNING and up are always kept


class RunLog:
    """The log lines of one top-level flow run, for its display.

    Attributes:
        lines: ``(levelno, text)`` of the latest ``MAX_LINES`` records below WARNING.
        warnings: ``(levelno, text)`` of every record at WARNING and up.
        dropped: How many older lines ``lines`` let go.
        version: Goes up with every line, so a display redraws only when it changed.
    """

    def __init__(self) -> None:
        self.lines: collections.deque[tuple[int, str]] = collections.deque(maxlen=MAX_LINES)
        self.warnings: list[tuple[int, str]] = []
        self.dropped = 0
        self.version = 0
        self.shown = False  # set by the display that shows these lines

    def add(self, levelno: int, text: str) -> None:
        if levelno >= logging.WARNING:
            self.warnings.append((levelno, text))
        else:
            if len(self.lines) == MAX_LINES:
                self.dropped += 1
            self.lines.append((levelno, text))
        self.version += 1


# Top-level flow runs whose lines go to their display instead of stderr; None: none do.
_run_logs: weakref.WeakKeyDictionary[Any, RunLog] | None = None


def keep_run_logs(enabled: bool) -> None:
    """Keep the lines of unfinished top-level flow runs for their displays (notebooks)."""
    global _run_logs
    _run_logs = weakref.WeakKeyDictionary() if enabled else None


def run_log(flow_run: Any) -> RunLog | None:
    """The lines kept for a top-level flow run (None if lines are not being kept)."""
    logs = _run_logs
    if logs is None:
        return None
    with _setup_lock:
        return logs.setdefault(flow_run, RunLog())


def _kept_log(record: logging.LogRecord) -> RunLog | None:
    """Where a record goes instead of stderr: the log of its top-level run, if a display
    shows that log, or will (a run's display opens as it leaves Pending)."""
    logs = _run_logs
    root = getattr(record, "kf_root", None)
    if logs is None or root is None:
        return None
    if root.state.is_pending():
        return run_log(root)
    log = logs.get(root)
    return log if log is not None and log.shown else None


class _CurrentStderrHandler(logging.StreamHandler):
    """A StreamHandler that looks up ``sys.stderr`` on every record (notebooks swap it),
    or hands a displayed flow run's records to its ``RunLog``."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        log = _kept_log(record)
        if log is None and _run_logs is not None and record.exc_info:
            # In a notebook a failed run's display lists it with its error, and
            # .result() raises it with its traceback: one line here is enough.
            record = logging.makeLogRecord({**record.__dict__, "exc_info": None})
            record.exc_text = None
        if log is None:
            super().emit(record)
            return
        try:  # one line, no traceback: the display lists failures with their errors
            log.add(record.levelno, self.formatter.format_line(record))
        except Exception:
            self.handleError(record)

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

    def format_line(self, record: logging.LogRecord) -> str:
        """The record's line without its traceback."""
        if not hasattr(record, "run_label"):
            record.run_label = record.name
        record.message = record.getMessage()
        record.asctime = self.formatTime(record, self.datefmt)
        return self.formatMessage(record)


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
            "kf_root": _root_run(flow_run),
        }
        return logging.LoggerAdapter(logging.getLogger(RUN_LOGGER_NAMES[1]), extra)
    if flow_run is not None:
        extra = {
            "flow_run_name": flow_run.name,
            "run_label": f"Flow run {flow_run.name!r}",
            "kf_root": _root_run(flow_run),
        }
        return logging.LoggerAdapter(logging.getLogger(RUN_LOGGER_NAMES[0]), extra)
    if all(logging.getLogger(name).disabled for name in RUN_LOGGER_NAMES):
        # Outside a run under disable_run_logger(): silent, as Prefect's "null" logger.
        return logging.LoggerAdapter(_disabled_logger(), {"run_label": "kernelflow"})
    return logging.LoggerAdapter(_root, {"run_label": "kernelflow"})


def _disabled_logger() -> logging.Logger:
    logger = logging.getLogger("kernelflow.disabled_run_logger")
    logger.disabled = True
    return logger


def log_completed(task_run: Any, state: Any) -> None:
    """Prefect's line for a task run that ended Completed ("Finished in state
    Completed()", "... Cached('cache hit')"), at INFO; the engine logs failures itself.

    Not where run logs are kept for displays (a notebook): the display shows every
    run's state already, and the line cost about 50 us a run there, more than the rest
    of a direct task call. In a script it costs about 20 us a run, as in Prefect."""
    if _run_logs is not None or not _task_runs_logger.isEnabledFor(logging.INFO):
        return
    # One line per task run, so made directly: no walk of the stack for the caller's
    # file and line (about half the cost); the record names where the task is defined.
    # The message holds the state's text, not the state: a kept record keeps no value.
    adapter = run_logger(task_run=task_run)
    code = getattr(getattr(task_run.task, "fn", None), "__code__", None)
    record = _task_runs_logger.makeRecord(
        _task_runs_logger.name,
        logging.INFO,
        code.co_filename if code else "",
        code.co_firstlineno if code else 0,
        "Finished in state %s",
        (repr(state),),
        None,
        extra=adapter.extra,
    )
    _task_runs_logger.handle(record)


def _root_run(flow_run: Any) -> Any:
    while flow_run is not None and getattr(flow_run, "parent", None) is not None:
        flow_run = flow_run.parent
    return flow_run


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

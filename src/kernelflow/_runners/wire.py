"""What crosses the process boundary: a task body's call going out, its reply coming back.

Parent side: ``pack_function`` and ``pack_arguments`` turn a task body's ``CallBody`` into
bytes with cloudpickle (so functions and classes defined in notebook cells travel by
value), and ``unpack_reply`` turns the reply back into an ``Outcome``. Worker side:
``run_packed`` calls the function inside a context that shows the task run (for
``kernelflow.runtime`` and ``get_run_logger``), catches everything, and packs the reply.
A generator task's body is iterated in the worker, and its reply is the list of items.

The reply also carries what the call printed and logged: a notebook shows it in the
cell that ran the flow, where a worker process's own output would never appear. For a
task with commit or rollback hooks, the body sees a transaction of its own in the worker
too, and the values it ``set`` there travel back to the run's transaction here, where
the hooks run.
"""

from __future__ import annotations

import contextvars
import inspect
import io
import logging
import os
import pickle
import sys
import threading
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cloudpickle

from kernelflow._context import TaskRunContext, current_tags, task_run_context
from kernelflow._engine import bound_calls
from kernelflow._engine.bound_calls import call_sync
from kernelflow._engine.effects import CallBody, Outcome
from kernelflow._engine.streaming import generator_body
from kernelflow._logging import enable_print_redirection, print_logger, run_logger
from kernelflow._runners.tracebacks import format_remote_traceback, pack_traceback
from kernelflow._transactions import Transaction
from kernelflow._transactions import _current as current_transaction_var
from kernelflow.exceptions import SerializationError

if TYPE_CHECKING:
    from kernelflow._runs import TaskRun
    from kernelflow.tasks import Task


@dataclass(slots=True)
class RunInfo:
    """What a task body in a worker can read about its run (a light copy of the record).

    Flow runs travel without their parameters, which may be large and are not the task's.
    """

    id: Any
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: frozenset[str] = frozenset()
    run_count: int = 1
    flow_run: RunInfo | None = None


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker, as text (its ``__cause__``)."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


# --- parent side ----------------------------------------------------------------------


def pack_function(fn: Any, task: Task) -> bytes:
    try:
        return cloudpickle.dumps(fn, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise SerializationError(
            f"Task {task.name!r} cannot be sent to a worker process: its function cannot "
            f"be pickled ({type(error).__name__}: {error})."
        ) from error


def pack_arguments(task: Task, run: TaskRun, effect: CallBody) -> bytes:
    """The call's arguments and run context, pickled; names the parameter that fails."""
    flow_run = run.flow_run
    # Plain tuples and strings: cloudpickle is much slower on instances of classes.
    flow_info = (str(flow_run.id), flow_run.name, tuple(flow_run.tags)) if flow_run else None
    info = (str(run.id), run.name, run.parameters, tuple(run.tags), run.run_count, flow_info)
    message = (
        effect.args,
        effect.kwargs,
        info,
        effect.log_prints,
        os.getpid(),
        effect.transactional,
    )
    try:
        return cloudpickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:
        raise SerializationError(_unpicklable_argument(task, run, error)) from error


def _unpicklable_argument(task: Task, run: TaskRun, error: Exception) -> str:
    for name, value in run.parameters.items():
        try:
            cloudpickle.dumps(value)
        except Exception as own_error:
            return (
                f"Parameter {name!r} of task {task.name!r} (run {run.name!r}) cannot be sent "
                f"to a worker process: a {type(value).__name__} cannot be pickled "
                f"({type(own_error).__name__}: {own_error}). Pass something picklable, "
                "or create the object inside the task."
            )
    return (
        f"The arguments of task {task.name!r} (run {run.name!r}) cannot be sent to a "
        f"worker process ({type(error).__name__}: {error})."
    )


def unpack_reply(task: Task, run: TaskRun, reply: bytes) -> Outcome:
    """The call's Outcome; replays its output here and notes the worker on the record.

    Raises:
        SerializationError: the result could not be pickled in the worker, or not
            unpickled here.
    """
    kind, data, text, tb_blob, worker, printed, records, txn_values = pickle.loads(reply)
    run.worker = worker
    _replay(printed, records)
    if txn_values and run.transaction is not None:  # what the body set, for the hooks
        for name, value in pickle.loads(txn_values).items():
            run.transaction.set(name, value)
    if kind == "error":
        text = format_remote_traceback(tb_blob, task.fn) or text
        try:
            error = pickle.loads(data)
        except Exception:
            error = RemoteTraceback(text)
        else:
            error.__cause__ = RemoteTraceback(text)
        return Outcome(error=error)
    try:
        if kind == "ok":
            return Outcome(pickle.loads(data))
    except Exception as error:
        data = f"{type(error).__name__}: {error}"
    raise SerializationError(
        f"Task {task.name!r} (run {run.name!r}) returned a value that cannot be sent back "
        f"from its worker process: {data}. Return something picklable (or save the "
        "object inside the task and return a path)."
    )


def _replay(printed: str, records: list[logging.LogRecord]) -> None:
    if printed:
        sys.stdout.write(printed)
    for record in records:
        logging.getLogger(record.name).handle(record)


# --- worker side ----------------------------------------------------------------------

_functions: dict[bytes, Any] = {}
_EFFECTS_FILE = bound_calls.__file__


class _Named(threading.local):
    name: str | None = None


_named = _Named()  # the worker's name when the body runs off the worker's own thread


def run_packed(fn_blob: bytes, arguments: bytes, worker: str | None = None) -> bytes:
    """Call a packed task body in this (worker) process; the packed reply. Never raises.

    ``worker`` names the worker in the reply, for a body run on a thread of its own.
    """
    _named.name = worker
    capture = txn = None
    try:
        fn = _functions.get(fn_blob)
        if fn is None:
            if len(_functions) > 256:
                _functions.clear()
            fn = pickle.loads(fn_blob)
            if inspect.isgeneratorfunction(fn):  # iterated here: its reply is its items
                fn = generator_body(fn)
            _functions[fn_blob] = fn
        args, kwargs, info, log_prints, parent_pid, transactional = pickle.loads(arguments)
        if parent_pid != os.getpid():  # not a Dask worker thread inside the notebook
            capture = _Capture.begin()
        context = contextvars.copy_context()
        context.run(_enter_run, info, log_prints)
        if transactional:  # the body's stand-in for the run's transaction in the notebook
            txn = Transaction(info[1])
            context.run(current_transaction_var.set, txn)
        is_async = inspect.iscoroutinefunction(fn)
        outcome = context.run(call_sync, fn, args, kwargs, is_async=is_async)
    except BaseException as error:
        outcome = Outcome(error=error)
    printed, records = capture.end() if capture else ("", [])
    return _pack_reply(outcome, printed, records, txn._values if txn is not None else None)


def _enter_run(info: tuple, log_prints: bool) -> None:
    run_id, name, parameters, tags, run_count, flow_info = info
    flow_run = None
    if flow_info is not None:
        flow_run = RunInfo(flow_info[0], flow_info[1], tags=frozenset(flow_info[2]))
    info = RunInfo(run_id, name, parameters, frozenset(tags), run_count, flow_run)
    task_run_context.set(TaskRunContext(None, info))
    current_tags.set(info.tags)
    if log_prints:
        enable_print_redirection()
        print_logger.set(run_logger(task_run=info))


def _pack_reply(
    outcome: Outcome, printed: str, records: list[logging.LogRecord], txn_values: dict | None
) -> bytes:
    worker = worker_name()
    values = b""
    if outcome.error is None:
        what = f"a {type(outcome.value).__qualname__}"
        try:
            value = cloudpickle.dumps(outcome.value, protocol=pickle.HIGHEST_PROTOCOL)
            body = ("ok", value, "", b"")
            if txn_values:
                what = "a value it set with txn.set()"
                values = cloudpickle.dumps(txn_values, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:
            why = f"{what} cannot be pickled ({type(error).__name__}: {error})"
            body = ("unpicklable", why, "", b"")
    else:
        error = outcome.error
        tb = error.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == _EFFECTS_FILE:
            tb = tb.tb_next  # start the text at the task's own frame
        # The text is the fallback for a traceback that cannot travel as data; the
        # notebook formats the data itself, with cell sources this process lacks.
        text = "".join(traceback.format_exception(type(error), error, tb))
        try:
            data = cloudpickle.dumps(error, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            data = b""  # the parent falls back to the traceback text
        body = ("error", data, text, pack_traceback(error, tb))
    return pickle.dumps((*body, worker, printed, records, values), protocol=pickle.HIGHEST_PROTOCOL)


def reply_for(error: BaseException) -> bytes:
    """The packed reply of a call that ended with ``error`` before its body did."""
    return _pack_reply(Outcome(error=error), "", [], None)


def worker_name() -> str:
    """A Dask worker's address, else ``process-<pid>``."""
    if _named.name is not None:
        return _named.name
    if "distributed" in sys.modules:
        try:
            from distributed import get_worker

            return get_worker().address
        except (ValueError, ImportError):
            pass
    return f"process-{os.getpid()}"


class _Capture:
    """Collects what one call prints and logs in a worker process, per thread.

    Installed once per process: ``sys.stdout`` becomes a router that writes to the
    current thread's buffer while it captures, and kernelflow's log handlers skip the
    records of a capturing thread, which are kept to be replayed in the notebook.
    """

    _local = threading.local()
    _installed = False

    def __init__(self) -> None:
        self.out = io.StringIO()
        self.records: list[logging.LogRecord] = []

    @classmethod
    def begin(cls) -> _Capture:
        if not cls._installed:
            cls._install()
        capture = cls._local.current = cls()
        return capture

    def end(self) -> tuple[str, list[logging.LogRecord]]:
        type(self)._local.current = None
        return self.out.getvalue(), self.records

    @classmethod
    def current(cls) -> _Capture | None:
        return getattr(cls._local, "current", None)

    @classmethod
    def _install(cls) -> None:
        run_logger()  # make sure kernelflow's own handler exists, then filter it
        root = logging.getLogger("kernelflow")
        for handler in root.handlers:
            handler.addFilter(lambda record: cls.current() is None)
        root.addHandler(_KeepHandler())
        sys.stdout = _StdoutRouter(sys.stdout)
        cls._installed = True


class _KeepHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        capture = _Capture.current()
        if capture is not None:
            record.msg, record.args = record.getMessage(), None
            if record.exc_info:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
                record.exc_info = None
            capture.records.append(record)


class _StdoutRouter(io.TextIOBase):
    def __init__(self, fallback: Any) -> None:
        self._fallback = fallback

    def write(self, text: str) -> int:
        capture = _Capture.current()
        return (capture.out if capture else self._fallback).write(text)

    def flush(self) -> None:
        if _Capture.current() is None and self._fallback is not None:
            self._fallback.flush()

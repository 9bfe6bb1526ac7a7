"""The run history's writer: runs enqueue, one background thread writes.

A run's hot path does nothing for the history: a top-level flow run enqueues itself when
it is created and on each of its own state changes (a per-run observer: task runs' state
changes never reach it), and its log lines are enqueued by a logging handler. The writer
thread turns those into rows and writes them in batches: a moment after a flow run ends
(``END_GRACE_SECONDS``, so the run's caller gets on first), else every ``FLUSH_SECONDS``,
and at exit; readers in this process write what is queued first (``flush``). Task runs'
records are read when their flow run ended, so a 10k-task map costs one JSON document,
written once (and, while a flow runs, every ``SNAPSHOT_SECONDS``: a process killed
mid-run leaves them behind).

A database that cannot be opened or written (damaged, locked past the retries,
read-only, a full disk) gives one warning; the batch is dropped and flows go on.
``KERNELFLOW_HISTORY=off`` turns all of it off.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from typing import Any

from kernelflow._history import FILE_NAME
from kernelflow.states import StateType

FLUSH_SECONDS = 0.5
END_GRACE_SECONDS = 0.05  # how long after a run ends its batch waits (see _loop)
MAX_RUNS = 10_000  # top-level flow runs kept (KERNELFLOW_HISTORY_MAX_RUNS)
MAX_AGE_DAYS = 90.0  # and for how long (KERNELFLOW_HISTORY_MAX_AGE_DAYS)

_logger = logging.getLogger("kernelflow.history")
_queue: deque[tuple[Any, ...]] = deque()
_wake = threading.Event()
_write_lock = threading.Lock()  # one drain at a time, so batches land in order
_thread: threading.Thread | None = None
_thread_lock = threading.Lock()
_files: dict[int, str] = {}  # root run id bits -> its database file (fixed at its start)
# Unfinished top-level runs, and when their task runs are next written as they stand:
# a process killed mid-run leaves those (read as Crashed) rather than none.
_running: dict[int, list[Any]] = {}
SNAPSHOT_SECONDS = 5.0
_finished: dict[int, float] = {}  # ended top-level runs -> when to forget their file
LATE_LINES_SECONDS = 5.0
_connections = threading.local()
_warned: set[str] = set()


def enabled() -> bool:
    return os.environ.get("KERNELFLOW_HISTORY", "on").strip().lower() not in (
        "off",
        "0",
        "false",
        "no",
    )


def database_file() -> str:
    home = os.path.expanduser(os.environ.get("KERNELFLOW_HOME") or "~/.kernelflow")
    return os.path.join(os.path.abspath(home), FILE_NAME)


def flow_run_created(flow_run: Any) -> None:
    """Start recording a top-level flow run (called as it is created)."""
    if not enabled():
        return
    _files[flow_run._id_bits] = database_file()
    _running[flow_run._id_bits] = [flow_run, time.monotonic() + SNAPSHOT_SECONDS]
    _install_log_handler()
    flow_run.subscribe(_on_state)
    _queue.append(("flow", flow_run))
    _start_thread()


def _on_state(flow_run: Any, old: Any, new: Any) -> None:
    _queue.append(("flow", flow_run))
    if new.type in _FLUSH_AT:
        _wake.set()  # flush soon: the run is over (or waits), and may be read from anywhere


_FLUSH_AT = frozenset(
    {
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.CRASHED,
        StateType.CANCELLED,
        StateType.PAUSED,
    }
)


class _LogHandler(logging.Handler):
    """Enqueues the lines of recorded runs."""

    def emit(self, record: logging.LogRecord) -> None:
        root = getattr(record, "kf_root", None)
        if root is None:
            return
        bits = getattr(root, "_id_bits", None)
        if bits is None:  # a record replayed from a worker process: a copy of its run
            bits = _id_bits_of(getattr(root, "id", None))
        if bits in _files:
            # The line as text now: the record's arguments (a state, its result) must
            # not stay alive in the queue. kernelflow's own handler formatted it already.
            message = getattr(record, "message", None)
            if message is None:
                message = record.getMessage()
            if record.exc_info and record.exc_info[1] is not None:
                error = record.exc_info[1]
                message += f"\n{type(error).__name__}: {error}"
            run = getattr(record, "task_run_name", None) or getattr(record, "flow_run_name", "")
            _queue.append(("log", bits, (record.created, record.levelno, run or "", message)))


def _id_bits_of(run_id: Any) -> int | None:
    """A run id as its int, whether a UUID or its text (as a worker's copy holds it)."""
    import uuid  # here: only lines replayed from a worker process get this far

    if isinstance(run_id, uuid.UUID):
        return run_id.int
    try:
        return uuid.UUID(str(run_id)).int
    except ValueError:
        return None


_log_handler: _LogHandler | None = None


def _install_log_handler() -> None:
    global _log_handler
    if _log_handler is not None:
        return
    from kernelflow._logging import _ensure_handler

    with _thread_lock:
        if _log_handler is None:
            _ensure_handler()  # kernelflow's own handler first: it is added only if none is
            _log_handler = _LogHandler()
            logging.getLogger("kernelflow").addHandler(_log_handler)


def _start_thread() -> None:
    global _thread
    if _thread is not None and _thread.is_alive():
        return
    with _thread_lock:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="kernelflow-history", daemon=True)
            _thread.start()


def _loop() -> None:
    while True:
        if _wake.wait(FLUSH_SECONDS):
            # A run ended: let the thread that ended it return to its caller first. A
            # batch is Python work (the first one imports the writing modules), and the
            # GIL would be taken from that thread for as long as the batch runs.
            time.sleep(END_GRACE_SECONDS)
        _wake.clear()
        try:
            _snapshots_due()
            flush()
        except Exception:  # never let the writer die: the next batch may work
            _logger.exception("The run history writer failed; it goes on.")


def _snapshots_due() -> None:
    now = time.monotonic()
    for root_id, until in list(_finished.items()):
        if until <= now:
            _finished.pop(root_id, None)
            _files.pop(root_id, None)
    for entry in list(_running.values()):
        if entry[1] <= now:
            entry[1] = now + SNAPSHOT_SECONDS
            _queue.append(("snapshot", entry[0]))


def flush() -> None:
    """Write everything enqueued so far (readers call it, so they see this session's runs)."""
    with _write_lock:
        items = []
        while _queue:
            items.append(_queue.popleft())
        if not items:
            return
        from kernelflow._history import rows  # loaded by the first write, not on import

        for file, batch in rows.batches(items, _files).items():
            _write(file, batch)


def _write(file: str, batch: Any) -> None:
    try:
        db = connection(file)
        db.write(batch.flows, batch.details, batch.logs)
        if batch.ended:
            db.trim(max_runs(), max_age())
    except Exception as error:  # sqlite3.Error, OSError: damaged, locked, read-only...
        forget_connection(file)
        warn_once(file, error)
    now = time.monotonic()
    for root_id in batch.finished_roots:  # its last lines (logged after its final state)
        _running.pop(root_id, None)  # still go to its file for a few seconds
        _finished[root_id] = now + LATE_LINES_SECONDS


def connection(file: str) -> Any:
    """This thread's open database for ``file``."""
    open_dbs = getattr(_connections, "open", None)
    if open_dbs is None:
        open_dbs = _connections.open = {}
    db = open_dbs.get(file)
    if db is None:
        from pathlib import Path

        from kernelflow._history.store import Database

        db = open_dbs[file] = Database(Path(file))
    return db


def forget_connection(file: str) -> None:
    db = getattr(_connections, "open", {}).pop(file, None)
    if db is not None:
        try:
            db.close()
        except Exception:
            pass


def warn_once(file: str, error: BaseException) -> None:
    if file in _warned:
        return
    _warned.add(file)
    _logger.warning(
        "The run history at %s cannot be used (%s: %s); flows run on, but their runs are "
        "not recorded there. Move the file away to start a new history, or set "
        "KERNELFLOW_HISTORY=off.",
        file,
        type(error).__name__,
        error,
    )


def max_runs() -> int:
    return int(os.environ.get("KERNELFLOW_HISTORY_MAX_RUNS") or MAX_RUNS)


def max_age() -> float:
    return float(os.environ.get("KERNELFLOW_HISTORY_MAX_AGE_DAYS") or MAX_AGE_DAYS) * 86400


def _at_exit() -> None:
    # What is still queued is written now, and a write under way is waited for (its
    # warning, if it fails, is then said before the process goes); an exit never
    # waits long for a locked file, though.
    if _thread is None:  # nothing was ever recorded
        return
    from kernelflow._history import store

    under_way = store.LOCKED_RETRIES * (store.BUSY_TIMEOUT_MS / 1000 + 0.5)
    store.LOCKED_RETRIES = 1
    if not _write_lock.acquire(timeout=under_way):
        return
    _write_lock.release()
    deadline = time.monotonic() + 5
    while _queue and time.monotonic() < deadline:
        flush()


atexit.register(_at_exit)

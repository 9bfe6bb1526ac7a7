"""``kernelflow.runs()``: flow runs of this session and earlier ones, newest first.

Two sources, one list:

- this session's top-level flow runs, in memory (``last_run()``, ``FlowRun.retry()``
  with their values). A kernel lives for days, so they are bounded by count and by the
  task-run records they hold, and only the latest keep their values
  (``_runs.RUN_VALUES_KEPT``);
- the run history on disk (``kernelflow._history``), which every session on the machine
  writes to: runs of earlier sessions come back as ``PastFlowRun`` records.

A run of this session still in memory is listed as its live record; the others as
read back. With ``KERNELFLOW_HISTORY=off``, or a history that cannot be read, the list
is this session's runs alone.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from kernelflow._history import writer
from kernelflow._runs import RUN_VALUES_KEPT, FlowRun

if TYPE_CHECKING:
    import datetime

# How many top-level flow runs this session keeps in memory: enough to look back over a
# notebook session, bounded so a loop of flow calls does not grow memory without end.
RUN_HISTORY_SIZE = 100
# ...and how many task-run records the runs before the latest may hold between them
# (the latest is kept whatever its size). A task run's record is about 1 KB: 100 runs of
# a 100k-task map would otherwise keep 10 GB, and every full garbage collection would
# walk them.
RUN_HISTORY_TASK_RUNS = 200_000
DEFAULT_LIMIT = 100  # what runs() lists unless told

_history: deque[FlowRun] = deque(maxlen=RUN_HISTORY_SIZE)
_history_lock = threading.Lock()


def record_top_level_run(flow_run: FlowRun) -> None:
    writer.flow_run_created(flow_run)
    with _history_lock:
        _history.append(flow_run)
        held = sum(_task_runs_held(run) for run in _history) - _task_runs_held(flow_run)
        while held > RUN_HISTORY_TASK_RUNS:  # (the new run is not counted: it stays)
            held -= _task_runs_held(_history.popleft())
        older = list(itertools.islice(_history, max(0, len(_history) - RUN_VALUES_KEPT)))
    for run in older:  # still running ones are released by a later call
        run.release_values()


def _task_runs_held(flow_run: FlowRun) -> int:
    # A loop, not recursion: subflows nest as deep as plain calls do (tests/test_nesting).
    held, flow_runs = 0, [flow_run]
    while flow_runs:
        run = flow_runs.pop()
        held += len(run.task_runs)
        flow_runs.extend(run.subflow_runs)
    return held


def last_run() -> FlowRun | None:
    """The most recent top-level flow run of this session (running or finished), or None."""
    with _history_lock:
        return _history[-1] if _history else None


class RunList(list):
    """Flow runs, newest first: a table in a notebook, lines of text in a terminal."""

    def __repr__(self) -> str:
        from kernelflow._history.text import runs_table

        return runs_table(self)


class RunHistory:
    """``kernelflow.runs``: flow runs of this session and of earlier ones.

    ``runs(flow=, state=, since=, limit=100)`` lists top-level flow runs, newest first;
    ``runs.get(name_or_id)`` gives one; ``runs.compare(a, b)`` sets two side by side;
    ``runs.clear(older_than=)`` forgets them.
    """

    def __call__(
        self,
        flow: Any = None,
        state: str | None = None,
        since: datetime.datetime | datetime.timedelta | float | None = None,
        limit: int | None = DEFAULT_LIMIT,
    ) -> RunList:
        """Top-level flow runs, newest first.

        Args:
            flow: Only runs of this flow (a Flow, or its name or its function's name).
            state: Only runs in this state: a name ("Failed", "Cached"...) or type.
            since: Only runs created since then: a datetime, a timedelta back from now,
                or a ``time.time()`` value.
            limit: At most this many (None: all).
        """
        flow_name = getattr(flow, "name", flow)
        if flow_name is not None and not isinstance(flow_name, str):
            raise TypeError(f"runs(flow=...) takes a flow or a flow's name, not {flow!r}.")
        since_time = _as_time(since)
        live = self._live(flow_name, state, since_time)
        from kernelflow._history import reading

        past = reading.flow_runs(flow_name, state, since_time, limit)
        if past is None:  # no history to read: this session's runs alone
            return RunList(live[:limit] if limit is not None else live)
        by_id = {run._id_bits: run for run in live}
        return RunList(by_id.get(run._id_bits, run) for run in past)

    def _live(self, flow_name: str | None, state: str | None, since: float | None) -> list:
        with _history_lock:
            live = list(reversed(_history))
        if flow_name is not None:  # a function's name finds its flow's ("a_b" is "a-b")
            names = {flow_name, flow_name.replace("_", "-")}
            live = [run for run in live if run.flow_name in names]
        if state is not None:
            wanted = state.lower()
            live = [r for r in live if wanted in (r.state.name.lower(), r.state.type.lower())]
        if since is not None:
            live = [run for run in live if run.history[0].timestamp >= since]
        return live

    def get(self, name_or_id: Any) -> FlowRun:
        """The flow run with this name or id (a subflow run too): this session's live
        record if it still has it, else the one read from the run history.

        Raises:
            LookupError: no flow run has that name or id.
        """
        wanted = str(name_or_id)
        with _history_lock:
            live = list(_history)
        for run in _walk(live):
            if wanted in (run.name, str(run.id), run.id.hex):
                return run
        from kernelflow._history import reading

        found = reading.get(wanted)
        if found is None:
            raise LookupError(
                f"No flow run named {wanted!r} (nor with that id) in this session or in the "
                f"run history ({writer.database_file()}); kernelflow.runs() lists them."
            )
        return found

    def compare(self, a: Any, b: Any) -> Any:
        """Two flow runs side by side: which tasks changed (source or inputs), their
        durations, and which results were reused. ``a`` and ``b``: runs, names or ids."""
        from kernelflow._history.compare import compare

        first = a if isinstance(a, FlowRun) else self.get(a)
        second = b if isinstance(b, FlowRun) else self.get(b)
        return compare(first, second)

    def clear(
        self, older_than: datetime.timedelta | datetime.datetime | float | None = None
    ) -> int:
        """Forget flow runs: all of them, or those created before ``older_than`` (a
        timedelta back from now, a datetime, or a ``time.time()`` value).

        Returns:
            How many top-level runs went from the run history.
        """
        cut = _as_time(older_than)
        with _history_lock:
            if cut is None:
                _history.clear()
            else:
                kept = [run for run in _history if run.history[0].timestamp >= cut]
                _history.clear()
                _history.extend(kept)
        from kernelflow._history import reading

        return reading.clear(cut)

    def __repr__(self) -> str:
        return f"<kernelflow.runs: {len(_history)} flow runs in this session>"


def _walk(flow_runs: list[FlowRun]) -> list[FlowRun]:
    found, stack = [], list(flow_runs)
    while stack:
        run = stack.pop()
        found.append(run)
        stack.extend(run.subflow_runs)
    return found


def _as_time(when: Any) -> float | None:
    if when is None:
        return None
    import datetime  # here: only a look-up by time uses it

    if isinstance(when, datetime.timedelta):
        return time.time() - when.total_seconds()
    if isinstance(when, datetime.datetime):
        return when.timestamp()
    if isinstance(when, (int, float)) and not isinstance(when, bool):
        return float(when)
    raise TypeError(
        f"Expected a datetime, a timedelta (back from now) or a time.time() value, not {when!r}."
    )


runs = RunHistory()

"""``kernelflow.runs()``: the session's top-level flow runs, newest last, within bounds.

A notebook looks back over its runs (``kernelflow.last_run()``, ``FlowRun.retry()``), and
a kernel lives for days: the history is bounded by count and by the task-run records
its runs hold, and only the latest keep their values (``_runs.RUN_VALUES_KEPT``).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque

from kernelflow._history import writer
from kernelflow._runs import RUN_VALUES_KEPT, FlowRun

# How many top-level flow runs kernelflow.runs() remembers: enough to look back over a
# notebook session, bounded so a loop of flow calls does not grow memory without end.
RUN_HISTORY_SIZE = 100
# ...and how many task-run records the runs before the latest may hold between them
# (the latest is kept whatever its size). A task run's record is about 1 KB: 100 runs of
# a 100k-task map would otherwise keep 10 GB, and every full garbage collection would
# walk them.
RUN_HISTORY_TASK_RUNS = 200_000

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


class RunHistory:
    """``kernelflow.runs``: the top-level flow runs of this session.

    ``runs()`` lists them, oldest first: the last 100, fewer when those before the latest
    hold more than 200,000 task runs between them (the latest is always kept); the
    latest 5 keep their values. ``runs.clear()`` forgets them all, so their records can be freed.
    """

    def __call__(self) -> list[FlowRun]:
        with _history_lock:
            return list(_history)

    def clear(self) -> None:
        with _history_lock:
            _history.clear()

    def __repr__(self) -> str:
        return f"<kernelflow.runs: {len(_history)} flow runs>"


runs = RunHistory()

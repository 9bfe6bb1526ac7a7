"""Flow runs read back from the run history: ``PastFlowRun``, a FlowRun record rebuilt.

A past run is a real ``FlowRun`` (with ``TaskRun`` records, states with their times,
workers and edges), so everything that reads records (graphs, timelines, displays)
reads it as it reads a live one. What it cannot have is values: results and errors
stayed in the process that ran it. Its task runs whose results went to the result
store carry where (``PastTaskRun.stored``), which is what a retry in this session
reuses.

Reading is also where crashes are told: a run still marked unfinished whose process,
on this host, no longer exists ended without a word; it reads as Crashed, and the
history is corrected.
"""

from __future__ import annotations

import json
import os
import pickle
import time
import uuid
from typing import Any

from kernelflow import _layer_hooks
from kernelflow._history import HOST, SESSION
from kernelflow._history.store import Database
from kernelflow._runs import FlowRun, TaskRun
from kernelflow.states import State, StateType

CRASH_MESSAGE = "the process that ran it exited"
_UNFINISHED = ("PENDING", "RUNNING", "PAUSED", "CANCELLING")


class _Named:
    """Stands in for the Flow or Task of a past run: its name is all that is known."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.on_completion_hooks: list[Any] = []

    def __repr__(self) -> str:
        return f"<{self.name} (from the run history)>"


class _ReadOnUse:
    """An attribute of a past run that comes from its details in the database, read on
    first use of any of them: a listing of 100 runs of a 10k-task map reads none. Every
    such attribute goes through here, so none can be read before the details are."""

    def __init__(self, slot: Any = None) -> None:
        self._slot = slot  # FlowRun's slot it stands in front of (None: the instance dict)

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = name

    def __get__(self, run: Any, owner: type | None = None) -> Any:
        if run is None:
            return self
        run._load()
        return run.__dict__[self._name] if self._slot is None else self._slot.__get__(run)

    def __set__(self, run: Any, value: Any) -> None:
        if self._slot is None:
            run.__dict__[self._name] = value
        else:
            self._slot.__set__(run, value)


class PastTaskRun(TaskRun):
    """A task run read from the history. ``stored``: (store root, key, serializer) of its
    persisted result, or None; ``input_digests``: each input's content digest."""

    __slots__ = ("stored", "input_digests")


class PastFlowRun(FlowRun):
    """A flow run read from the run history (this session's or an earlier one's).

    Attributes (beyond FlowRun's):
        session, pid, host: The process that ran it.
        parameters: Previews of its parameters (short reprs; numbers as they were).
        values: The parameter values, when they could be kept (read on demand).
        task_counts: How many of its task runs ended in each state.
    """

    def __init__(self, row: dict[str, Any], file: str | None = None) -> None:
        self._file = file  # where to read its task runs from when asked (None: not to)
        previews = json.loads(row["parameters"] or "{}")
        super().__init__(_Named(row["flow_name"]), row["name"], previews)
        self._id_bits = int(row["id"], 16)
        self._uuid = None
        self.session = row["session"]
        self.pid = row["pid"]
        self.host = row["host"]
        self.row = row
        self.parameter_previews = previews
        self._kept_parameters = row.get("parameters_pickle")
        self.tags = frozenset(json.loads(row["tags"] or "[]"))
        self.worker = row["worker"]
        self.start_time = row["start_time"]
        self.end_time = row["end_time"]
        self.history = [_state(*s) for s in json.loads(row.get("states") or "[]")]
        state = _state(row["state_type"], row["state_name"], row["state_message"], row["end_time"])
        if not self.history or self.history[-1].name != state.name:  # told Crashed since
            self.history.append(state)
        self.state = self.history[-1]
        self.task_counts: dict[str, int] = json.loads(row["task_counts"] or "{}")
        self.retry_of_id = row["retry_of"]
        self.artifacts: list[dict[str, Any]] = []
        self.assets: list[str] = []

    task_runs = _ReadOnUse(FlowRun.task_runs)
    subflow_runs = _ReadOnUse(FlowRun.subflow_runs)
    task_sources = _ReadOnUse(FlowRun.task_sources)
    artifacts = _ReadOnUse()
    assets = _ReadOnUse()

    def _load(self) -> None:
        file = self.__dict__.get("_file")
        if file is not None:
            self._file = None
            from kernelflow._history.writer import connection

            flows, body = connection(file).tree(self.row["id"])
            _fill(self, flows, body)

    @property
    def values(self) -> dict[str, Any] | None:
        """The parameter values, when they could be kept (pickled), else None."""
        if self._kept_parameters is None:
            return None
        return pickle.loads(self._kept_parameters)

    def retry(self) -> Any:
        """Run its flow again in this session, reusing the task runs whose results were
        persisted (see ``kernelflow._engine.resume.retry_past``)."""
        return _layer_hooks.retry_past_run(self)

    def __repr__(self) -> str:
        return f"PastFlowRun(name={self.name!r}, state={self.state!r}, session={self.session!r})"


def read(row: dict[str, Any], db: Database) -> PastFlowRun:
    """A row as a past run (its task runs read when asked for)."""
    crashed(row, db)
    return PastFlowRun(row, str(db.file))


def crashed(row: dict[str, Any], db: Database) -> bool:
    """Mark a run whose process is gone Crashed (in ``row`` and in the history)."""
    if row["state_type"] not in _UNFINISHED or row["end_time"] is not None:
        return False
    if row["session"] == SESSION or row["host"] != HOST or _alive(row["pid"]):
        return False
    row.update(state_type="CRASHED", state_name="Crashed", state_message=CRASH_MESSAGE)
    try:
        db.mark_crashed(row["root_id"], CRASH_MESSAGE)
    except Exception:  # read-only or locked: it reads as Crashed all the same
        pass
    return True


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process now holds the number
        return True
    return True


def _fill(root: PastFlowRun, flows: list[dict[str, Any]], body: dict[str, Any]) -> None:
    by_id: dict[str, FlowRun] = {root.row["id"]: root}
    sources = body.get("sources", {})
    root.task_sources = sources.get(root.row["id"])
    for row in sorted(flows, key=lambda r: (r["created"], r["position"] or 0)):
        if row["id"] == root.row["id"]:
            continue
        sub = PastFlowRun(row)
        sub.task_sources = sources.get(row["id"])
        parent = by_id.get(row["parent_id"])
        if parent is None:
            continue
        sub.parent = parent
        sub.upstream = _edges(json.loads(row["upstream"] or "{}"))
        parent.subflow_runs.append(sub)
        by_id[row["id"]] = sub
    fields = body.get("fields", ())
    for values in body.get("task_runs", ()):
        data = dict(zip(fields, values, strict=False))
        flow_run = by_id.get(data["flow_run_id"])
        if flow_run is not None:
            flow_run.task_runs.append(_task_run(data, flow_run))
    root.artifacts = body.get("artifacts", [])
    root.assets = body.get("assets", [])


def _task_run(data: dict[str, Any], flow_run: FlowRun) -> PastTaskRun:
    run = PastTaskRun(
        _Named(data["task_name"]),
        data["name"],
        data["parameters"] or {},
        flow_run,
        frozenset(),
        _edges(data["upstream"] or {}),
        data["map_index"],
        data["map_group"],
    )
    run._id_bits = int(data["id"], 16)
    run.history = [_state(*s) for s in data["states"]]
    run.state = run.history[-1]
    run.start_time = data["start_time"]
    run.end_time = data["end_time"]
    run.worker = data["worker"]
    run.run_count = data["run_count"] or 0
    run.stored = tuple(data["cache"]) if data["cache"] else None
    run.input_digests = data["input_digests"]
    output = data["output_digest"]
    run.digests = None if output is None else (None, output)
    if flow_run.state.type is StateType.CRASHED and not run.state.is_final():
        run.state = State(StateType.CRASHED, "Crashed", CRASH_MESSAGE, None, run.state.timestamp)
        run.history.append(run.state)
    return run


def _state(type: str, name: str, message: str | None, timestamp: float | None) -> State:
    return State(StateType(type), name, message, None, timestamp or time.time())


def _edges(upstream: dict[str, list[str]]) -> dict[str, frozenset[uuid.UUID]]:
    return {name: frozenset(uuid.UUID(i) for i in ids) for name, ids in upstream.items()}

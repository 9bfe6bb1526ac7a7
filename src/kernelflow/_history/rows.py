"""Run records turned into history rows (in the writer thread, never on a run's path).

A flow run row per top-level run and subflow run; for an ended top-level run, one JSON
document with every task run of its tree (``TASK_FIELDS``, as lists: a 10k-task map
is written fast); log lines as they came.
"""

from __future__ import annotations

import json
import os
import pickle
import reprlib
import zlib
from dataclasses import dataclass, field
from typing import Any

from kernelflow import _digests
from kernelflow._history import HOST, SESSION

TASK_FIELDS = (
    "id",
    "flow_run_id",
    "name",
    "task_name",
    "states",
    "start_time",
    "end_time",
    "worker",
    "map_index",
    "map_group",
    "upstream",
    "parameters",
    "input_digests",
    "output_digest",
    "cache",
    "run_count",
)
MAX_MESSAGE = 2000
MAX_PICKLED_PARAMETERS = 1 << 20  # larger flow parameters are not kept for a retry

_repr = reprlib.Repr()
_repr.maxstring = 120
_repr.maxother = 120
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_PLAIN = (int, float, bool, type(None))


@dataclass
class Batch:
    flows: list[dict[str, Any]] = field(default_factory=list)
    details: list[tuple[str, bytes]] = field(default_factory=list)
    logs: list[tuple[str, float, int, str, str]] = field(default_factory=list)
    ended: bool = False
    finished_roots: list[int] = field(default_factory=list)


def batches(items: list[tuple[Any, ...]], files: dict[int, str]) -> dict[str, Batch]:
    """The rows of the enqueued ``items``, by database file."""
    out: dict[str, Batch] = {}
    latest: dict[int, Any] = {}  # a flow run enqueued many times: its latest is written
    snapshots: set[int] = set()  # ...with its task runs as they stand, if it still runs
    for item in items:
        if item[0] == "flow":
            latest[item[1]._id_bits] = item[1]
        elif item[0] == "snapshot":
            latest[item[1]._id_bits] = item[1]
            snapshots.add(item[1]._id_bits)
    for item in items:
        if item[0] == "log":
            bits, record = item[1], item[2]
            file = files.get(bits)
            if file is not None:
                out.setdefault(file, Batch()).logs.append(_log_row(bits, record))
    for bits, flow_run in latest.items():
        file = files.get(bits)
        if file is None:
            continue
        batch = out.setdefault(file, Batch())
        if flow_run.state.is_final():
            _add_tree(batch, flow_run)
            batch.ended = True
            batch.finished_roots.append(bits)
        elif bits in snapshots:
            _add_tree(batch, flow_run)
        else:
            batch.flows.append(flow_row(flow_run, flow_run, 0))
    return out


def _add_tree(batch: Batch, root: Any) -> None:
    from kernelflow._artifacts import artifacts_of

    task_rows: list[list[Any]] = []
    sources: dict[str, dict[str, str]] = {}
    artifacts: list[dict[str, Any]] = []
    assets: list[str] = []
    stack = [(root, 0)]
    while stack:
        flow_run, position = stack.pop()
        row = flow_row(flow_run, root, position)
        batch.flows.append(row)
        sources[row["id"]] = flow_run.task_sources or {}
        task_rows.extend(task_row(run, row["id"]) for run in flow_run.task_runs)
        artifacts.extend(_artifact(a) for a in artifacts_of(flow_run))
        assets.extend(str(event) for event in flow_run.asset_events)
        stack.extend((sub, i) for i, sub in enumerate(flow_run.subflow_runs))
    body = {
        "fields": TASK_FIELDS,
        "task_runs": task_rows,
        "sources": sources,
        "artifacts": artifacts,
        "assets": assets,
    }
    text = json.dumps(body, default=str, separators=(",", ":"))
    batch.details.append((hex_id(root), zlib.compress(text.encode(), 1)))


def hex_id(run: Any) -> str:
    return format(run._id_bits, "032x")


def flow_row(flow_run: Any, root: Any, position: int) -> dict[str, Any]:
    parameters = flow_run.parameters
    preview = {name: preview_of(value) for name, value in parameters.items()}
    counts: dict[str, int] = {}
    for run in _all_task_runs(flow_run):
        counts[run.state.name] = counts.get(run.state.name, 0) + 1
    retry_of = getattr(flow_run, "retry_of", None)
    state = flow_run.state
    return {
        "id": hex_id(flow_run),
        "root_id": hex_id(root),
        "parent_id": None if flow_run.parent is None else hex_id(flow_run.parent),
        "name": flow_run.name,
        "flow_name": flow_run.flow_name,
        "state_type": state.type.value,
        "state_name": state.name,
        "state_message": _cut(state.message),
        "created": flow_run.history[0].timestamp,
        "start_time": flow_run.start_time,
        "end_time": flow_run.end_time,
        "parameters": json.dumps(preview),
        "parameters_hash": _digests.content_digest(parameters) if state.is_final() else None,
        "parameters_pickle": _pickled(parameters) if flow_run is root else None,
        "tags": json.dumps(sorted(flow_run.tags)),
        "worker": flow_run.worker,
        "upstream": json.dumps(_edges(flow_run.upstream)),
        "retry_of": getattr(retry_of, "id", None) and hex_id(retry_of),
        "session": SESSION,
        "pid": os.getpid(),
        "host": HOST,
        "task_counts": json.dumps(counts),
        "position": position,
        # every state with its time; a pause's answer is in the message after it
        "states": json.dumps(_states(flow_run)),
    }


def task_row(run: Any, flow_run_id: str) -> list[Any]:
    state = run.state
    parameters = run.parameters
    cache = None
    input_digests = output = None
    if state.is_completed():
        if run.digests is not None:
            output = run.digests[1]
        lookup = run.cache_key
        if lookup is not None:  # a persisted result: a later session may reuse it
            serializer = lookup.serializer if isinstance(lookup.serializer, str) else None
            cache = [str(lookup.store.root), lookup.key, serializer]
            input_digests = _input_digests(run)
    return [
        hex_id(run),
        flow_run_id,
        run.name,
        run.task.name,
        _states(run),
        run.start_time,
        run.end_time,
        run.worker,
        run.map_index,
        run.map_group,
        _edges(run.upstream) if run.upstream else None,
        {name: preview_of(value) for name, value in parameters.items()},
        input_digests,
        output,
        cache,
        run.run_count,
    ]


def _states(run: Any) -> list[list[Any]]:
    # StateType is a str enum: JSON writes it as its value, with no lookup of .value
    return [
        [
            kind,
            name,
            message if message is None or len(message) <= MAX_MESSAGE else _cut(message),
            at,
        ]
        for kind, name, message, at in run.history_rows()
    ]


def _input_digests(run: Any) -> dict[str, str]:
    """Each input's content digest: those that could change were taken as it ended;
    the others cannot have changed since, so are taken now."""
    taken = (run.digests[0] if run.digests else None) or {}
    return {
        name: taken.get(name) or _digests.content_digest(value)
        for name, value in run.parameters.items()
    }


def preview_of(value: Any) -> Any:
    """A short text for a value (numbers as they are), never costing a whole repr of a
    large value: reprlib cuts strings and containers before their repr is made."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):  # reprlib would repr it whole
        head = bytes(value[:40])
        more = f" ... ({len(value):,} bytes)" if len(value) > 40 else ""
        return f"{head!r}{more}"
    try:
        return _repr.repr(value)
    except Exception:
        return f"<{type(value).__name__}>"


def _edges(upstream: dict[str, Any]) -> dict[str, list[str]]:
    return {name: [i.hex for i in ids] for name, ids in upstream.items()}


def _pickled(parameters: dict[str, Any]) -> bytes | None:
    try:
        data = pickle.dumps(parameters, protocol=5)
    except Exception:  # a lock, a lambda...: a later session must pass them itself
        return None
    return data if len(data) <= MAX_PICKLED_PARAMETERS else None


def _artifact(artifact: Any) -> dict[str, Any]:
    return {
        "key": artifact.key,
        "type": artifact.type,
        "description": artifact.description,
        "data": _cut(str(artifact.data)),
        "task_run_id": artifact.task_run_id.hex if artifact.task_run_id else None,
    }


def _log_row(root_bits: int, line: tuple[float, int, str, str]) -> tuple[str, float, int, str, str]:
    created, level, run_name, message = line
    return (format(root_bits, "032x"), created, level, run_name, _cut(message))


def _all_task_runs(flow_run: Any) -> list[Any]:
    runs, stack = [], [flow_run]
    while stack:
        run = stack.pop()
        runs.extend(run.task_runs)
        stack.extend(run.subflow_runs)
    return runs


def _cut(text: str | None) -> str | None:
    if text is None or len(text) <= MAX_MESSAGE:
        return text
    return text[:MAX_MESSAGE] + " ..."

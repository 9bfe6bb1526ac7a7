"""Assets: the files, tables and models tasks read and write, named by URI keys.

    @materialize("file://data/clean.parquet")          # a MaterializingTask
    def clean(raw): ...

    @task(asset_deps=["file://data/raw.csv"])           # reads an asset it did not get
    def load(): ...                                     # as an argument

A run of a task with ``asset_deps`` *reads* those assets; a run of a materializing task
that completes *materializes* its assets (a cached run counts: its result stands for
them; inside a transaction, it counts for ``kernelflow.assets()`` once the transaction
commits). As in Prefect, a materializing run that is given the result of another one also
reads the assets that one materialized. Each is recorded when the run ends, as an
``AssetEvent`` on the run's FlowRun (``flow_run.asset_events``), so the graphs can draw
assets between the tasks; every materialization also updates the session's list that
``kernelflow.assets()`` returns.
Events are plain data, recorded in the notebook process on every runner.
"""

from __future__ import annotations

import functools
import html
import re
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelflow._options import fail
from kernelflow._transactions import enclosing

if TYPE_CHECKING:
    from kernelflow._runs import TaskRun

__all__ = ["Asset", "AssetEvent", "assets", "to_assets"]

MAX_KEY_LENGTH = 512
# A URI: a scheme (letter, then letters, digits, + - .), "://", then at least one
# character; none of the characters below, which are not allowed in URIs and would
# break a graph label or a file name.
_KEY = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>{}|\\^`]+")


@dataclass(frozen=True, slots=True)
class Asset:
    """Something a task reads or writes, named by a URI ``key``, e.g.
    ``"file://data/clean.parquet"``, ``"s3://bucket/table"``, ``"postgres://db/users"``.

    Raises:
        InvalidOptionError: the key is not such a URI (when the Asset is made).
    """

    key: str

    def __post_init__(self) -> None:
        check_key("Asset.key", self.key)

    def __str__(self) -> str:
        return self.key


def check_key(option: str, key: Any) -> str:
    if not isinstance(key, str) or len(key) > MAX_KEY_LENGTH or not _KEY.fullmatch(key):
        raise fail(
            option,
            key,
            "an asset key: a URI such as 'file://data/clean.parquet' or 's3://bucket/key' "
            f"(a scheme, '://', then a path with no spaces or quotes; at most "
            f"{MAX_KEY_LENGTH} characters)",
        )
    return key


def to_assets(option: str, values: Iterable[Any] | None) -> list[Asset]:
    """Asset keys (strings) and Assets as Assets, checked now, at decoration time."""
    if values is None:
        return []
    if isinstance(values, (str, Asset)) or not isinstance(values, Iterable):
        raise fail(option, values, "a list of asset keys (URIs) or Asset objects")
    found = []
    for value in values:
        if isinstance(value, Asset):
            found.append(value)
        elif isinstance(value, str):
            found.append(Asset(check_key(option, value)))
        else:
            raise fail(option, value, "an asset key (a URI string) or an Asset")
    return found


@dataclass(frozen=True, slots=True)
class AssetEvent:
    """A task run read (``kind="read"``) or materialized (``kind="materialized"``) an asset.

    Attributes:
        key: The asset's key.
        task_run_id, task_run_name: The run that read or materialized it.
        flow_run_id, flow_run_name: The flow run it ran in (None outside any flow).
        time: When the run ended (``time.time()``).
        materialized_by: For a materialization, the tool named by ``materialize(by=...)``.
    """

    key: str
    kind: str
    task_run_id: Any
    task_run_name: str
    flow_run_id: Any
    flow_run_name: str | None
    time: float
    materialized_by: str | None = None


_latest: dict[str, AssetEvent] = {}
_latest_lock = threading.Lock()


def record_assets(task: Any, run: TaskRun, completed: bool) -> None:
    """The engine's call when a run of a task with assets ends (only such tasks)."""
    if not completed and not run.run_count:
        return  # never started (an upstream failed): it read nothing
    flow_run = run.flow_run
    when = run.end_time or time.time()
    flow_id, flow_name = (flow_run.id, flow_run.name) if flow_run else (None, None)
    events = [
        AssetEvent(key, "read", run.id, run.name, flow_id, flow_name, when)
        for key in dict.fromkeys([a.key for a in task.asset_deps] + _inferred_reads(task, run))
    ]
    made = getattr(task, "assets", ()) if completed else ()
    by = getattr(task, "materialized_by", None)
    materialized = [
        AssetEvent(asset.key, "materialized", run.id, run.name, flow_id, flow_name, when, by)
        for asset in made
    ]
    if flow_run is not None:
        flow_run.asset_events.extend(events + materialized)
    if materialized:
        txn = enclosing(run)
        if txn is None:
            _publish(materialized)
        else:  # what a rolled-back transaction made was undone: it is not the latest
            txn.defer(functools.partial(_publish, materialized))


def _publish(materialized: list[AssetEvent]) -> None:
    with _latest_lock:
        for event in materialized:
            _latest[event.key] = event


def _inferred_reads(task: Any, run: TaskRun) -> list[str]:
    """A materializing run given the result of another one reads what that one made."""
    if not hasattr(task, "assets") or not run.upstream or run.flow_run is None:
        return []
    upstream = run.upstream_ids
    return [
        event.key
        for event in run.flow_run.asset_events
        if event.kind == "materialized" and event.task_run_id in upstream
    ]


class AssetList(list):
    """A list of ``AssetEvent``s that a notebook shows as a table."""

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{h}</th>" for h in ("asset", "task run", "flow run", "by", "time"))
        rows = []
        for e in self:
            cells = (
                e.key,
                e.task_run_name,
                e.flow_run_name or "",
                e.materialized_by or "",
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.time)),
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
        return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def assets() -> AssetList:
    """The latest materialization of each asset in this session, newest first: its key,
    task run (``task_run_id``, ``task_run_name``), flow run and ``time``. A plain list
    of ``AssetEvent``s, shown as a table in a notebook."""
    with _latest_lock:
        return AssetList(sorted(_latest.values(), key=lambda event: event.time, reverse=True))

"""Assets in both graphs: one teal cylinder per asset key, between the tasks.

An arrow from an asset to a task: the task reads it (``asset_deps``, or the result of
the task that materialized it). An arrow from a task to an asset: the task materializes
it. In the executed-run graph, a materializing run that did not complete points at its
assets with a dashed grey arrow: "not materialized".

Node ids are ``asset0``, ``asset1``...: an asset key is a URI, and a ``:`` in a DOT node
id would be read as a port.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from kernelflow._runs import FlowRun
from kernelflow.viz._render import edge_attrs

STYLE = {"shape": "cylinder", "style": "filled", "fillcolor": "#ccfbf1", "color": "#0d9488"}
MAX_TOOLTIP_LINES = 8
LEGEND = ("asset (cylinder): arrow in = read, arrow out = materialized", STYLE)
NOT_MADE_EDGE = {
    "style": "dashed",
    "color": "#9ca3af",
    "label": "not materialized",
    "fontsize": "9",
    "fontcolor": "#6b7280",
}


def add_asset_node(graph: Any, node_id: str, key: str, tooltip: str = "asset") -> None:
    graph.node(node_id, label=key, tooltip=tooltip, **STYLE)


def draw_run_assets(graph: Any, flow_run: FlowRun, node_of: dict) -> bool:
    """Asset nodes and edges for the events of ``flow_run`` and its subflow runs; True
    if any asset was drawn. An asset's tooltip says which runs made and read it."""
    edges = list(_asset_edges(flow_run, node_of))
    notes: dict[str, list[str]] = {}
    for _, key, _, _, note in edges:
        notes.setdefault(key, []).append(note)
    ids = {key: f"asset{i}" for i, key in enumerate(notes)}
    for key, lines in notes.items():
        shown = list(dict.fromkeys(lines))
        more = (
            [f"... and {len(shown) - MAX_TOOLTIP_LINES} more"]
            if len(shown) > MAX_TOOLTIP_LINES
            else []
        )
        add_asset_node(graph, ids[key], key, "\n".join([key, *shown[:MAX_TOOLTIP_LINES], *more]))
    seen: set[tuple[str, str]] = set()
    for node, key, kind, attrs, _ in edges:
        tail, head = (ids[key], node) if kind == "read" else (node, ids[key])
        if (tail, head) not in seen:
            seen.add((tail, head))
            graph.edge(tail, head, **attrs)
    return bool(ids)


def _asset_edges(flow_run: FlowRun, node_of: dict) -> Iterator[tuple[str, str, str, dict, str]]:
    """(task node, asset key, "read" or "materialized", edge attributes, tooltip line)
    for every asset event of the run tree, and every materialization that did not happen."""
    for event in flow_run.asset_events:
        node = node_of.get(event.task_run_id)
        if node is None:
            continue
        if event.kind == "read":
            note = f"read by {event.task_run_name}"
        else:
            when = time.strftime("%H:%M:%S", time.localtime(event.time))
            by = f" with {event.materialized_by}" if event.materialized_by else ""
            note = f"materialized by {event.task_run_name}{by} at {when}"
        yield node, event.key, event.kind, edge_attrs("asset"), note
    for run in flow_run.task_runs:
        made = getattr(run.task, "assets", None)
        node = node_of.get(run.id) if made else None  # most runs make none: no lookup
        if node is not None and run.state.is_final() and not run.state.is_completed():
            for asset in made:
                note = f"not materialized: {run.name} ended {run.state.name}"
                yield node, asset.key, "materialized", dict(NOT_MADE_EDGE), note
    for sub in flow_run.subflow_runs:
        yield from _asset_edges(sub, node_of)

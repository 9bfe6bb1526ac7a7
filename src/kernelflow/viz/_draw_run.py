"""Drawing what a flow run did (``FlowRun.graph()``): task runs coloured by final state.

Nodes are task runs, labelled with the run's name, its state and how long it took;
the runs of one ``.map()`` call are one node (the worst state colours it, the label
counts the states) unless ``expand_maps=True``. Subflow runs are clusters. Edges come
from the run records' ``upstream``: futures, ``wait_for`` and results passed by value.
Assets the runs read and materialized are drawn between them (``_draw_assets``).
"""

from __future__ import annotations

import html
import itertools
import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from kernelflow._engine.retry_plan import reused_from
from kernelflow._history.text import duration
from kernelflow._runs import FlowRun, TaskRun
from kernelflow.exceptions import UpstreamTaskError
from kernelflow.states import State, StateType
from kernelflow.viz._draw_assets import LEGEND as ASSET_LEGEND
from kernelflow.viz._draw_assets import draw_run_assets
from kernelflow.viz._layout import orient
from kernelflow.viz._render import (
    MAP_COLOR,
    FlowGraph,
    add_legend,
    edge_attrs,
    new_graph,
)
from kernelflow.viz._seen import NOW, Seen

# Final-state categories, worst first: a mapped group takes the colour of its worst run.
CATEGORIES: dict[str, dict[str, str]] = {
    "failed": {"fillcolor": "#fecaca", "color": "#dc2626"},
    "crashed": {"fillcolor": "#fed7aa", "color": "#c2410c"},
    "cancelled": {"fillcolor": "#e5e7eb", "color": "#4b5563"},
    "not run": {"fillcolor": "#f9fafb", "color": "#9ca3af", "style": "rounded,filled,dashed"},
    "running": {"fillcolor": "#fef9c3", "color": "#ca8a04"},
    "pending": {"fillcolor": "#f1f5f9", "color": "#94a3b8"},
    "cached": {"fillcolor": "#bfdbfe", "color": "#2563eb"},
    "reused": {"fillcolor": "#ddd6fe", "color": "#7c3aed"},
    "completed": {"fillcolor": "#bbf7d0", "color": "#16a34a"},
}
LEGEND = {
    "completed": "completed",
    "cached": "cached (result reused)",
    "reused": "reused by this retry",
    "failed": "failed",
    "crashed": "crashed",
    "cancelled": "cancelled",
    "not run": "not run (an upstream failed)",
    "running": "running (or paused)",
    "pending": "waiting to run",
}
LEGEND_ORDER = ["completed", "cached", "reused", "failed", "crashed", "cancelled", "not run"]


def category(state: State) -> str:
    """The colour category of a run's state."""
    kind = state.type
    if kind is StateType.COMPLETED:
        if state.name != "Cached":
            return "completed"
        return "cached" if reused_from(state) is None else "reused"
    if kind is StateType.FAILED:
        return "not run" if isinstance(state.data, UpstreamTaskError) else "failed"
    if kind is StateType.CRASHED:
        return "crashed"
    if kind is StateType.CANCELLED:
        return "cancelled"
    return "pending" if kind is StateType.PENDING else "running"


def _node_style(cat: str, shape: str = "box") -> dict[str, str]:
    style = {"shape": shape, "style": "rounded,filled", **CATEGORIES[cat]}
    if shape == "box3d":
        style["style"] = style["style"].replace("rounded,", "")
    return style


def draw_run(
    flow_run: FlowRun, expand_maps: bool = False, title: bool = True, seen: Seen = NOW
) -> FlowGraph:
    """The graph of ``flow_run`` and its subflow runs, with a legend of the state colours
    it uses (none when every run completed).

    Args:
        title: Draw the run's name, state and duration above it (a display whose header
            says so already leaves it out).
        seen: The task runs to draw and their states (by default, as they are now).
    """
    graph = new_graph(flow_run.name, _title(flow_run) if title else None)
    nodes = _Nodes(expand_maps, seen)
    _add_runs(graph, flow_run, nodes)
    node_of, anchors, drawn = nodes.node_of, nodes.anchors, nodes.drawn
    edges = _add_edges(graph, flow_run, node_of, anchors)
    possible = _add_possible_edges(graph, flow_run, node_of, edges)
    clusters = expand_maps or bool(flow_run.subflow_runs)
    orient(graph, [(tail, head) for tail, head, _ in edges] + possible, clusters)
    waits = any(wait for _, _, wait in edges)
    has_assets = draw_run_assets(graph, flow_run, node_of)
    if not has_assets:
        _grid_unlinked(graph, flow_run, node_of, edges | {(*pair, False) for pair in possible})
    if flow_run.state.is_paused():
        _add_pause_marker(graph, flow_run, node_of)
    shown = [c for c in LEGEND_ORDER + ["running", "pending"] if c in drawn]
    if shown == ["completed"]:
        shown = []  # green everywhere says it all
    notes = ["3-D box: every run of one .map() call"] if shown and "map" in drawn else []
    notes += ["dashed arrow: wait_for"] if waits else []
    notes += [POSSIBLE_NOTE] if possible else []
    notes += ["dashed frame: subflow run"] if shown and "subflow" in drawn else []
    entries = [(LEGEND[c], _node_style(c)) for c in shown]
    entries += [ASSET_LEGEND] if has_assets else []
    if entries or notes:
        add_legend(graph, entries, notes)
    return graph


def _title(flow_run: FlowRun) -> str:
    title = f"{flow_run.name}: {flow_run.state.name}"
    if flow_run.duration is not None:
        title += f", {duration(flow_run.duration)}"
    return title


def _add_pause_marker(graph: Any, flow_run: FlowRun, node_of: dict) -> None:
    """Where a paused flow stopped: a marker after the last task run it started."""
    graph.node(
        "paused",
        # Words, not the pause glyph (U+23F8): Debian's default fonts have no such glyph,
        # so chromium and nbconvert's HTML drew it as an empty box.
        label=f"paused here\n{flow_run.state.message or ''}",
        shape="octagon",
        style="filled",
        fillcolor="#fde68a",
        color="#d97706",
    )
    started = [run for run in flow_run.task_runs if run.id in node_of]
    if started:
        graph.edge(node_of[started[-1].id], "paused", style="dotted", arrowhead="none")


@dataclass
class _Nodes:
    """What drawing the runs of a flow run and its subflow runs keeps as it goes."""

    expand_maps: bool
    seen: Seen
    node_of: dict[uuid.UUID, str] = field(default_factory=dict)  # a task run's node
    # A subflow run's (node, cluster): where the edges to and from it end.
    anchors: dict[uuid.UUID, tuple[str | None, str]] = field(default_factory=dict)
    # The state categories, and "map"/"subflow" if any were drawn.
    drawn: set[str] = field(default_factory=set)


def _add_runs(graph: Any, flow_run: FlowRun, nodes: _Nodes) -> None:
    """Nodes for the task runs of ``flow_run``, then a cluster for each subflow run."""
    node_of, drawn, seen = nodes.node_of, nodes.drawn, nodes.seen
    groups: dict[int, list[TaskRun]] = {}
    for run in seen.task_runs(flow_run):
        if run.map_group is None:
            _add_run_node(graph, run, nodes)
        else:
            groups.setdefault(run.map_group, []).append(run)
    for group, runs in groups.items():
        cats = Counter(category(seen.state(run)) for run in runs)
        drawn.update(cats)
        if nodes.expand_maps:
            # Each run its own node, framed together as one .map() call.
            with graph.subgraph(name=f"cluster_{flow_run.id.hex[:12]}_map{group}") as frame:
                frame.attr(
                    label=f"{runs[0].task.name} × {len(runs)}",
                    style="rounded",
                    color=MAP_COLOR,
                    fontsize="11",
                )
                for run in runs:
                    _add_run_node(frame, run, nodes)
            continue
        drawn.add("map")
        node_id = f"g{len(node_of)}_{group}"
        worst = next(c for c in CATEGORIES if c in cats)
        for run in runs:
            node_of[run.id] = node_id
        graph.node(node_id, label=_group_label(runs, cats), **_node_style(worst, "box3d"))
    for sub in flow_run.subflow_runs:
        _add_subflow(graph, sub, nodes)


def _add_run_node(graph: Any, run: TaskRun, nodes: _Nodes) -> None:
    node_id = f"r{len(nodes.node_of)}"
    nodes.node_of[run.id] = node_id
    state = nodes.seen.state(run)
    cat = category(state)
    nodes.drawn.add(cat)
    tooltip = state.message or state.name
    graph.node(node_id, label=_run_label(run, state), tooltip=tooltip, **_node_style(cat))


def _add_subflow(graph: Any, sub: FlowRun, nodes: _Nodes) -> None:
    node_of, anchors = nodes.node_of, nodes.anchors
    cluster = f"cluster_{sub.id.hex[:12]}"
    with graph.subgraph(name=cluster) as inner:
        label = f"subflow {sub.name}: {sub.state.name}"
        if sub.duration is not None:
            label += f", {duration(sub.duration)}"
        border = CATEGORIES[category(sub.state)]["color"]
        inner.attr(
            label=label, style="rounded,dashed", color=border, bgcolor="#f8fafc", fontsize="12"
        )
        before = len(node_of)
        nodes.drawn.add("subflow")
        _add_runs(inner, sub, nodes)
        if len(node_of) == before:
            # Graphviz drops empty clusters, and edges into one need a node to end at.
            inner.node(f"{cluster}_empty", label="(no task runs)", shape="plaintext", fontsize="10")
            anchors[sub.id] = (f"{cluster}_empty", cluster)
        else:
            anchors[sub.id] = (_first_node(sub, node_of), cluster)


def _first_node(flow_run: FlowRun, node_of: dict) -> str | None:
    for run in flow_run.task_runs:
        if run.id in node_of:
            return node_of[run.id]
    for sub in flow_run.subflow_runs:
        found = _first_node(sub, node_of)
        if found:
            return found
    return None


def _run_label(run: TaskRun, state: State) -> str:
    if category(state) == "not run":
        return f"{run.name}\nnot run"
    status = state.name
    if run.duration is None:
        return f"{run.name}\n{status}"
    return f"{run.name}\n{status} · {duration(run.duration)}"


BAR_WIDTH = 110  # points: a mapped node's state bar
# Done first, then what is still to come (as the progress bars).
BAR_ORDER = ["completed", "cached", "reused", "failed", "crashed", "cancelled", "not run"]
BAR_ORDER += ["running", "pending"]


def _group_label(runs: list[TaskRun], cats: Counter) -> str:
    """A mapped node's label (HTML-like): name, counts, total time, and a bar with a
    segment per state, so a map's progress shows at a glance while it runs."""
    # In the bar's order, not by size: a running map's line keeps its order frame to frame.
    counts = ", ".join(f"{cats[c]} {c}" for c in BAR_ORDER if cats.get(c))
    durations = [run.duration for run in runs if run.duration is not None]
    lines = [f"{runs[0].task.name} × {len(runs)}", counts]
    if durations:
        lines.append(f"{duration(sum(durations))} total")
    rows = "".join(f"<TR><TD>{html.escape(line)}</TD></TR>" for line in lines)
    segments = [
        (CATEGORIES[c]["color"], max(1, round(BAR_WIDTH * cats[c] / len(runs))))
        for c in BAR_ORDER
        if cats.get(c)
    ]
    bar = "".join(
        f'<TD BGCOLOR="{colour}" WIDTH="{width}" HEIGHT="5" FIXEDSIZE="TRUE"></TD>'
        for colour, width in segments
    )
    bar_table = f'<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="0"><TR>{bar}</TR></TABLE>'
    return (
        f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="1">{rows}'
        f"<TR><TD>{bar_table}</TD></TR></TABLE>>"
    )


def _grid_unlinked(graph: Any, flow_run: FlowRun, node_of: dict, edges: set) -> None:
    """Lay out the flow's runs that no edge touches (ten independent tasks) as a grid,
    in the order they ran, instead of one column ten boxes tall: invisible edges chain
    each row of them."""
    linked = {node for tail, head, _ in edges for node in (tail, head)}
    order: dict[str, None] = {}  # the unlinked nodes, in the order they ran
    groups: set[int] = set()
    for run in flow_run.task_runs:
        group = run.map_group
        if group is not None:  # a map's runs share one node: look it up once
            if group in groups:
                continue
            groups.add(group)
        node = node_of.get(run.id)
        if node is not None and node not in linked:
            order[node] = None
    unlinked = list(order)
    if len(unlinked) < 4:
        return
    columns = math.ceil(math.sqrt(len(unlinked)))
    rows = [unlinked[start : start + columns] for start in range(0, len(unlinked), columns)]
    for row in rows:
        for tail, head in itertools.pairwise(row):
            graph.edge(tail, head, style="invis")
    # The rows' first runs share a rank, chained so the first row is drawn on top.
    with graph.subgraph() as first_column:
        first_column.attr(rank="same")
        for row in rows:
            first_column.node(row[0])
    for upper, lower in itertools.pairwise(rows):
        graph.edge(upper[0], lower[0], style="invis")


def _add_edges(graph: Any, flow_run: FlowRun, node_of: dict, anchors: dict) -> set:
    """Draw every upstream edge once; returns them as (tail, head, is wait_for)."""
    seen: set[tuple[str, str, bool]] = set()
    for run, upstream in _all_upstreams(flow_run):
        if not upstream:  # most runs of a big map: no lookup of their node at all
            continue
        head, lhead = _endpoint(run, node_of, anchors)
        if head is None:
            continue
        for key, ids in upstream.items():
            for upstream_id in sorted(ids, key=str):
                tail, ltail = node_of.get(upstream_id), ""
                if tail is None and upstream_id in anchors:  # a subflow's result
                    tail, ltail = anchors[upstream_id]
                mark = (tail, head, key == "wait_for")
                if tail is None or tail == head or mark in seen:
                    continue
                seen.add(mark)
                attrs = edge_attrs(key)
                if lhead:
                    attrs["lhead"] = lhead
                if ltail:
                    attrs["ltail"] = ltail
                graph.edge(tail, head, **attrs)
    return seen


POSSIBLE_EDGE = {"style": "dotted", "color": "#94a3b8", "arrowhead": "empty"}
# Small values (0, None, True...) are shared objects: no record can say which run one
# came from. An equal one returned earlier is drawn as where it may have come from.
POSSIBLE_NOTE = "dotted arrow: maybe from there (small values carry no lineage)"


def _add_possible_edges(graph: Any, flow_run: FlowRun, node_of: dict, edges: set) -> list:
    """Dotted edges from the run that may have produced a small input (see
    ``TaskRun.possible_upstream``), where no sure edge joins the two; returns them."""
    sure = {(tail, head) for tail, head, _ in edges}
    drawn: list[tuple[str, str]] = []
    for run in flow_run.task_runs:
        if not run.possible_upstream or run.id not in node_of:
            continue
        head = node_of[run.id]
        for ids in run.possible_upstream.values():
            for upstream_id in ids:
                tail = node_of.get(upstream_id)
                if tail is None or tail == head or (tail, head) in sure or (tail, head) in drawn:
                    continue
                drawn.append((tail, head))
                graph.edge(tail, head, **POSSIBLE_EDGE)
    return drawn


def _endpoint(run: TaskRun | FlowRun, node_of: dict, anchors: dict) -> tuple[str | None, str]:
    if isinstance(run, FlowRun):
        anchor = anchors.get(run.id)
        return (anchor[0], anchor[1]) if anchor else (None, "")
    return node_of.get(run.id), ""


def _all_upstreams(flow_run: FlowRun) -> list[tuple[Any, dict]]:
    """(run, upstream edges) for every task run and subflow run in the tree."""
    found: list[tuple[Any, dict]] = [(run, run.upstream) for run in flow_run.task_runs]
    for sub in flow_run.subflow_runs:
        found.append((sub, sub.upstream))
        found.extend(_all_upstreams(sub))
    return found

"""Drawing a traced plan (``Flow.visualize()``): tasks, mapped groups, subflows, inputs.

Each kind of node has its own look (see ``STYLES``): a task call or submit is a rounded
box, every run of one ``.map()`` call is one 3-D box showing how many runs there are,
a flow parameter that feeds a task is a parallelogram, an asset a task reads or
materializes is a teal cylinder (``_draw_assets``), and a subflow is a dashed cluster
around its own nodes. With ``expand_maps=True`` each mapped run gets its node.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kernelflow.viz._draw_assets import LEGEND as ASSET_LEGEND
from kernelflow.viz._draw_assets import STYLE as ASSET_STYLE
from kernelflow.viz._layout import orient
from kernelflow.viz._model import Plan, PlanCluster, PlanNode
from kernelflow.viz._placeholders import Ref
from kernelflow.viz._render import MAP_COLOR, FlowGraph, add_legend, edge_attrs, new_graph

STYLES: dict[str, dict[str, str]] = {
    "task": {"shape": "box", "style": "rounded,filled", "fillcolor": "#dbeafe", "color": "#2563eb"},
    "map": {"shape": "box3d", "style": "filled", "fillcolor": "#ede9fe", "color": MAP_COLOR},
    "param": {
        "shape": "parallelogram",
        "style": "filled",
        "fillcolor": "#fef3c7",
        "color": "#d97706",
    },
    "subflow": {"style": "rounded,dashed", "color": "#64748b", "bgcolor": "#f8fafc"},
    "asset": ASSET_STYLE,
}
LEGEND = {
    "task": "task run (call or submit)",
    "map": "mapped task: one node for all runs",
    "param": "flow parameter",
    "subflow": "subflow (cluster)",
    "asset": ASSET_LEGEND[0],
}
TOOLTIPS = {
    "call": "task called directly",
    "submit": "task submitted (.submit)",
    "map": "mapped task (.map)",
}

# Past this many runs a mapped group stays one node even with expand_maps=True: a graph
# of thousands of boxes is neither readable nor quick to lay out.
MAX_EXPANDED = 100


def draw_plan(plan: Plan, expand_maps: bool = False) -> FlowGraph:
    """The graph of a traced plan, with a legend of the kinds of node it uses."""
    graph = new_graph(plan.flow_name, title=plan.flow_name)
    expanded = {
        n.id
        for n in plan.nodes.values()
        if expand_maps and n.kind == "map" and n.count and n.count <= MAX_EXPANDED
    }
    used = plan.referenced()
    shown = [n for n in plan.nodes.values() if n.kind != "param" or n.id in used]
    kinds = {n.kind for n in shown if n.id not in expanded}
    kinds |= {"subflow"} if plan.clusters else set()
    _add_nodes(graph, plan, [n for n in shown if n.cluster is None], expanded)
    for cluster in plan.clusters.values():
        if cluster.parent is None:
            _add_cluster(graph, plan, cluster, expanded)
    anchors = _cluster_anchors(plan, expanded)
    waits = False
    edges = list(_edges(plan, expanded, anchors))
    for tail, head, attrs in edges:
        graph.edge(tail, head, **attrs)
        waits = waits or "style" in attrs
    orient(graph, ((tail, head) for tail, head, _ in edges), bool(plan.clusters or expanded))
    entries = [(LEGEND[k], STYLES[k]) for k in LEGEND if k in kinds or k == "task"]
    notes = ["solid arrow: data passed"]
    notes += ["dashed arrow: wait_for"] if waits else []
    notes += ["purple frame: the runs of one .map() call"] if expanded else []
    add_legend(graph, entries, notes)
    return graph


def _add_nodes(graph: Any, plan: Plan, nodes: list[PlanNode], expanded: set[str]) -> None:
    for node in nodes:
        if node.id in expanded:
            _add_expanded_map(graph, node)
        else:
            graph.node(node.id, label=_label(node), tooltip=_tooltip(node), **_style(node))


def _add_cluster(graph: Any, plan: Plan, cluster: PlanCluster, expanded: set[str]) -> None:
    """A subflow: its nodes and nested subflows inside one dashed cluster."""
    with graph.subgraph(name=cluster.id) as sub:
        sub.attr(label=f"subflow: {cluster.name}", fontsize="12", **STYLES["subflow"])
        members = [plan.nodes[i] for i in cluster.members]
        _add_nodes(sub, plan, members, expanded)
        if not members:
            # Graphviz drops empty clusters, and edges need a node to end at.
            sub.node(
                f"{cluster.id}_empty", label="(no task calls)", shape="plaintext", fontsize="10"
            )
        for child in plan.clusters.values():
            if child.parent == cluster.id:
                _add_cluster(sub, plan, child, expanded)


def _add_expanded_map(graph: Any, node: PlanNode) -> None:
    with graph.subgraph(name=f"cluster_{node.id}") as sub:
        sub.attr(
            label=f"{node.name} × {node.count}",
            style="rounded",
            color=STYLES["map"]["color"],
            fontsize="11",
        )
        for index, item in enumerate(node.items):
            label = item.run_name or f"{node.name}[{index}]"
            sub.node(f"{node.id}_{index}", label=label, tooltip=TOOLTIPS["map"], **STYLES["task"])


def _label(node: PlanNode) -> str:
    if node.kind == "asset":
        return node.name
    if node.kind == "param":
        return node.name if node.value is None else f"{node.name} = {node.value}"
    lines = [node.name]
    if node.run_name and node.run_name != node.name:
        lines.append(node.run_name)
    if node.kind == "map":
        lines.append(f"× {node.count if node.count is not None else '?'} runs")
    return "\n".join(lines)


def _tooltip(node: PlanNode) -> str:
    if node.kind == "param":
        return "flow parameter"
    if node.kind == "asset":
        return "asset"
    if node.kind == "map" and node.count is None:
        return "mapped task; how many runs is unknown: give its upstream a viz_return_value"
    return TOOLTIPS[node.call]


def _style(node: PlanNode) -> dict[str, str]:
    return STYLES[node.kind]


def _cluster_anchors(plan: Plan, expanded: set[str]) -> dict[str, str]:
    """For each cluster, a node inside it that edges to or from the cluster attach to."""
    anchors: dict[str, str] = {}
    for cluster in plan.clusters.values():
        last = next(reversed(cluster.members), None) if cluster.members else None
        if last is None:
            anchors[cluster.id] = f"{cluster.id}_empty"
        else:
            anchors[cluster.id] = f"{last}_0" if last in expanded else last
    return anchors


def _edges(plan: Plan, expanded: set[str], anchors: dict[str, str]) -> Iterator[tuple]:
    """(tail, head, attributes) of every edge, each drawn once."""
    seen: set[tuple[str, str, bool]] = set()
    for node in plan.nodes.values():
        if node.id in expanded:
            heads = [(f"{node.id}_{i}", item.inputs) for i, item in enumerate(node.items)]
        else:
            heads = [(node.id, node.inputs)]
        for head, inputs in heads:
            for key, refs in inputs.items():
                for ref in sorted(refs, key=_ref_order):
                    yield from _edge(plan, ref, head, key, expanded, anchors, seen)
    for cluster in plan.clusters.values():
        # A subflow input no task inside it takes (used by its own code, or passed on
        # only as its result) points at the subflow as a whole.
        used = {
            ref for node in plan.inside(cluster.id) for refs in node.inputs.values() for ref in refs
        }
        for key, refs in cluster.inputs.items():
            for ref in sorted(refs - used, key=_ref_order):
                for tail, head, attrs in _edge(
                    plan, ref, anchors[cluster.id], key, expanded, anchors, seen
                ):
                    yield tail, head, {**attrs, "lhead": cluster.id}


def _edge(
    plan: Plan,
    ref: Ref,
    head: str,
    key: str,
    expanded: set[str],
    anchors: dict[str, str],
    seen: set,
) -> Iterator[tuple]:
    """The edge(s) from where ``ref`` points to ``head``, unless already drawn."""
    for tail in _tails(plan, ref, expanded, anchors):
        mark = (tail, head, key == "wait_for")
        if mark in seen or tail == head:
            continue
        seen.add(mark)
        attrs = edge_attrs(key)
        if ref.node in plan.clusters:
            attrs["ltail"] = ref.node
        yield tail, head, attrs


def _tails(plan: Plan, ref: Ref, expanded: set[str], anchors: dict[str, str]) -> list[str]:
    """The drawn node(s) an input comes from."""
    if ref.node in anchors:
        return [anchors[ref.node]]
    if ref.node not in expanded:
        return [ref.node]
    if ref.index is not None:
        return [f"{ref.node}_{ref.index}"]
    return [f"{ref.node}_{i}" for i in range(plan.nodes[ref.node].count or 0)]


def _ref_order(ref: Ref) -> tuple[str, int]:
    return ref.node, -1 if ref.index is None else ref.index

"""The traced plan of a flow: nodes, their inputs, and subflow clusters.

The tracker fills a ``Plan`` while the flow body runs; ``_draw_plan`` turns it into a
graph. Keeping the two apart lets one trace be drawn collapsed or with maps expanded,
and lets tests read the structure without parsing DOT.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kernelflow.viz._placeholders import Ref

Inputs = dict[str, frozenset[Ref]]  # parameter name (or "wait_for") -> where it came from


@dataclass(slots=True)
class MapItem:
    """One run of a mapped task: its name (if it can be formed) and its inputs."""

    run_name: str | None
    inputs: Inputs


@dataclass(slots=True)
class PlanNode:
    """One node of the plan.

    Attributes:
        kind: "task" (a call or a submit), "map" (every run of one ``.map()`` call) or
            "param" (a parameter of the visualized flow).
        call: How a task was called: "call", "submit" or "map".
        cluster: The id of the subflow cluster the node is in; None at the top level.
        count: For a map: how many runs, or None when the iterable's length is unknown.
        items: For a map: each run, so the graph can be drawn with maps expanded.
        value: For a parameter: a short repr of the value it was given.
    """

    id: str
    kind: str
    name: str
    cluster: str | None = None
    call: str = "call"
    run_name: str | None = None
    inputs: Inputs = field(default_factory=dict)
    count: int | None = None
    items: list[MapItem] = field(default_factory=list)
    value: str | None = None


@dataclass(slots=True)
class PlanCluster:
    """A subflow call: drawn as a cluster around the nodes recorded inside it."""

    id: str
    name: str
    parent: str | None
    members: list[str] = field(default_factory=list)  # node ids, in call order
    inputs: Inputs = field(default_factory=dict)  # where its parameters came from


@dataclass(slots=True)
class Plan:
    """Everything a visualize trace found, in the order it was called."""

    flow_name: str
    nodes: dict[str, PlanNode] = field(default_factory=dict)
    clusters: dict[str, PlanCluster] = field(default_factory=dict)

    def add(self, node: PlanNode) -> PlanNode:
        self.nodes[node.id] = node
        if node.cluster is not None:
            self.clusters[node.cluster].members.append(node.id)
        return node

    def inside(self, cluster_id: str) -> list[PlanNode]:
        """The nodes in a cluster, also in the subflows nested in it."""
        found = []
        for node in self.nodes.values():
            scope = node.cluster
            while scope is not None and scope != cluster_id:
                scope = self.clusters[scope].parent
            if scope is not None:
                found.append(node)
        return found

    def referenced(self) -> set[str]:
        """Ids of every node or cluster some input points at."""
        found: set[str] = set()
        for inputs in [n.inputs for n in self.nodes.values()] + [
            c.inputs for c in self.clusters.values()
        ]:
            for refs in inputs.values():
                found.update(ref.node for ref in refs)
        return found

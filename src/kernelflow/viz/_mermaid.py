"""``Flow.generate_mermaid_graph()``: the traced plan as a Mermaid flowchart.

Written as Prefect writes it (``flowchart TD``, one node per task run labelled
``<task name>-<n>``, counted per task name in call order, and ``upstream --> downstream``
edges), so the text renders the same in a Markdown cell, on GitHub, or in Mermaid's
editor. Each run of a ``.map()`` is its own node; a subflow's runs sit in a
``subgraph`` named after it. Parameters and assets are not drawn (Prefect draws neither).
"""

from __future__ import annotations

import re
from collections import Counter

from kernelflow.viz._model import Plan
from kernelflow.viz._placeholders import Ref


def mermaid_of(plan: Plan) -> str:
    counts: Counter[str] = Counter()
    taken: set[str] = set()
    # graph node id -> the Mermaid ids of its runs (one for a call, one per mapped run)
    runs: dict[str, list[str]] = {}
    labels: dict[str, str] = {}

    def new_id(label: str) -> str:
        base = re.sub(r"\W", "_", label)
        mermaid_id, n = base, 1
        while mermaid_id in taken:  # names that differ only in punctuation
            n += 1
            mermaid_id = f"{base}_{n}"
        taken.add(mermaid_id)
        return mermaid_id

    for node in plan.nodes.values():
        if node.kind not in ("task", "map"):
            continue
        for _ in node.items if node.kind == "map" else [node]:
            label = f"{node.name}-{counts[node.name]}"
            counts[node.name] += 1
            mermaid_id = new_id(label)
            labels[mermaid_id] = label
            runs.setdefault(node.id, []).append(mermaid_id)

    def sources(refs: frozenset[Ref]) -> list[str]:
        found = []
        for ref in sorted(refs, key=lambda r: (r.node, -1 if r.index is None else r.index)):
            ids = runs.get(ref.node, [])
            if ref.index is not None and ref.index < len(ids):
                found.append(ids[ref.index])
            elif ref.index is None:
                found.extend(ids)
        return found

    lines = ["flowchart TD"]
    body: dict[str | None, list[str]] = {}
    for node in plan.nodes.values():
        for mermaid_id in runs.get(node.id, []):
            body.setdefault(node.cluster, []).append(f'{mermaid_id}["{labels[mermaid_id]}"]')
    _write_cluster(plan, None, body, lines, depth=1)
    edges: list[str] = []
    for node in plan.nodes.values():
        inputs_per_run = (
            [item.inputs for item in node.items] if node.kind == "map" else [node.inputs]
        )
        for mermaid_id, inputs in zip(runs.get(node.id, []), inputs_per_run, strict=False):
            for refs in inputs.values():
                edges.extend(f"{src} --> {mermaid_id}" for src in sources(refs))
    for cluster in plan.clusters.values():
        for refs in cluster.inputs.values():
            edges.extend(f"{src} --> {_cluster_id(cluster.id)}" for src in sources(refs))
    lines.extend(f"    {edge}" for edge in dict.fromkeys(edges))  # each edge once, in order
    return "\n".join(lines)


def _cluster_id(cluster_id: str) -> str:
    return re.sub(r"\W", "_", cluster_id)


def _write_cluster(
    plan: Plan, cluster: str | None, body: dict[str | None, list[str]], lines: list[str], depth: int
) -> None:
    indent = "    " * depth
    lines.extend(indent + line for line in body.get(cluster, []))
    for child in plan.clusters.values():
        if child.parent == cluster:
            lines.append(f'{indent}subgraph {_cluster_id(child.id)}["{child.name}"]')
            _write_cluster(plan, child.id, body, lines, depth + 1)
            lines.append(f"{indent}end")

"""Which way a graph runs: left to right, or wrapped like lines of text when too deep.

Graphviz lays ranks side by side in ``rankdir=LR``, so a chain of fifteen dependent runs
is fifteen boxes in one row, about 1,900 px wide: shrunk to fit a notebook cell its text
cannot be read. The width of a left-to-right drawing grows with its longest path (its
depth). So a graph deeper than fits a cell's width, and deeper than it is wide, is
wrapped: its ranks are cut into rows of at most ``MAX_RANKS_ACROSS`` nodes, each row
drawn left to right, row under row, as text is read. Fifteen steps become four rows of
four, at their natural size. A graph with subflow clusters, which rows cannot cross,
runs top to bottom instead.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# Ranks that fit a cell's ~900 px side by side: a run's node ("step-10", "Completed ·
# 150 ms") is about 165 px wide, 200 with its gap.
MAX_RANKS_ACROSS = 4


def depth_and_breadth(edges: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """The number of ranks (nodes on the longest path) and nodes in the widest rank of
    the graph these edges make (isolated nodes do not count; a cycle counts as flat)."""
    rank = ranks(edges)
    if not rank:
        return 0, 0
    widths: dict[int, int] = defaultdict(int)
    for r in rank.values():
        widths[r] += 1
    return max(rank.values()) + 1, max(widths.values())


def ranks(edges: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Each node's rank: the length of the longest path into it, in the edges' order of
    first appearance (a node on a cycle has none)."""
    below: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)  # node -> edges into it not yet walked
    for tail, head in dict.fromkeys(edges):  # each once, in order
        below[tail].append(head)
        waiting[head] += 1
        waiting.setdefault(tail, 0)
    rank = {node: 0 for node, count in waiting.items() if count == 0}
    ready = list(rank)
    while ready:
        node = ready.pop()
        for head in below[node]:
            rank[head] = max(rank.get(head, 0), rank[node] + 1)
            waiting[head] -= 1
            if waiting[head] == 0:
                ready.append(head)
    return {node: rank[node] for node in waiting if node in rank and not waiting[node]}


def orient(graph: Any, edges: Iterable[tuple[str, str]], clusters: bool = False) -> None:
    """Wrap ``graph`` into rows when it is too deep to run across a cell (top to bottom
    where it has ``clusters``)."""
    edges = list(edges)
    depth, breadth = depth_and_breadth(edges)
    if depth <= MAX_RANKS_ACROSS or depth <= breadth:
        return
    graph.graph_attr["rankdir"] = "TB"
    if clusters:
        return
    rows = _rows(ranks(edges))
    for row in rows:
        with graph.subgraph() as line:
            line.attr(rank="same")
            for node in row:
                line.node(node)
    # Each row starts under the last, at the left, as lines of text do: without these,
    # each row would start under the previous row's end, a staircase as wide as before.
    for upper, lower in itertools.pairwise(rows):
        graph.edge(upper[0], lower[0], style="invis", weight="100")


def _rows(rank: dict[str, int]) -> list[list[str]]:
    """The nodes in rank order, cut into rows of at most ``MAX_RANKS_ACROSS`` (a rank
    wider than that is a row of its own)."""
    by_rank: dict[int, list[str]] = defaultdict(list)
    for node, r in rank.items():
        by_rank[r].append(node)
    rows: list[list[str]] = [[]]
    for r in sorted(by_rank):
        nodes = by_rank[r]
        if rows[-1] and len(rows[-1]) + len(nodes) > MAX_RANKS_ACROSS:
            rows.append([])
        rows[-1].extend(nodes)
    return rows

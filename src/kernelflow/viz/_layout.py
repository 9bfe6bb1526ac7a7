"""Which way a graph runs: left to right, or top to bottom for long chains.

Graphviz lays ranks side by side in ``rankdir=LR``, so a chain of fifteen dependent runs
is fifteen boxes in one row, about 1,900 px wide: shrunk to fit a notebook cell its text
cannot be read. The width of a left-to-right drawing grows with its longest path (its
depth), the width of a top-to-bottom one with its widest rank. So a graph deeper than
fits a cell's width, and deeper than it is wide, is turned to run top to bottom, where
it keeps its natural size and its box scrolls.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

# Ranks that fit a cell's ~900 px side by side: a node is about 130 px wide with its gap.
MAX_RANKS_ACROSS = 6


def depth_and_breadth(edges: Iterable[tuple[str, str]]) -> tuple[int, int]:
    """The number of ranks (nodes on the longest path) and nodes in the widest rank of
    the graph these edges make (isolated nodes do not count; a cycle counts as flat)."""
    below: dict[str, list[str]] = defaultdict(list)
    waiting: dict[str, int] = defaultdict(int)  # node -> edges into it not yet walked
    for tail, head in set(edges):
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
    if not rank:
        return 0, 0
    widths: dict[int, int] = defaultdict(int)
    for r in rank.values():
        widths[r] += 1
    return max(rank.values()) + 1, max(widths.values())


def orient(graph: Any, edges: Iterable[tuple[str, str]]) -> None:
    """Turn ``graph`` top to bottom when it is too deep to run across a cell."""
    depth, breadth = depth_and_breadth(edges)
    if depth > MAX_RANKS_ACROSS and depth > breadth:
        graph.graph_attr["rankdir"] = "TB"

"""Reading a graph's DOT source back as nodes and edges, to assert its structure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_STATEMENT = re.compile(r"^\t+(\w+)(?: -> (\w+))?(?: \[(.*?)\])?\n(?=\t|\})", re.M | re.S)
_LABEL = re.compile(r'label=(?:"((?:[^"\\]|\\.)*)"|<(<.*>)>|(\S+))', re.S)


@dataclass
class Dot:
    """The nodes and edges of a graph's DOT source, for asserting structure."""

    source: str
    labels: dict[str, str] = field(default_factory=dict)  # node id -> label
    attrs: dict[str, str] = field(default_factory=dict)  # node id -> attribute text
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (tail, head, attrs)

    def __post_init__(self) -> None:
        for match in _STATEMENT.finditer(self.source):
            tail, head, attrs = match.groups()
            attrs = attrs or ""
            if head is not None:
                self.edges.append((tail, head, attrs))
            elif tail in self.labels and not attrs:
                continue  # named again without attributes (to share a rank): same node
            elif tail not in ("graph", "node", "edge"):
                found = _LABEL.search(attrs)
                label = next(g for g in found.groups() if g is not None) if found else tail
                if found and found.group(2):  # an HTML-like label: its rows as lines
                    label = re.sub(r"<[^>]+>", "", label.replace("</TR>", "\n")).strip()
                self.labels[tail] = label
                self.attrs[tail] = attrs

    def ids(self, first_line: str) -> list[str]:
        """Ids of the nodes whose label's first line is ``first_line``."""
        return [i for i, label in self.labels.items() if label.split("\n")[0] == first_line]

    def id(self, first_line: str) -> str:
        found = self.ids(first_line)
        assert len(found) == 1, f"{len(found)} nodes labelled {first_line!r}: {self.labels}"
        return found[0]

    def data_edges(self) -> set[tuple[str, str]]:
        return {(t, h) for t, h, a in self.edges if "dashed" not in a and "invis" not in a}

    def wait_for_edges(self) -> set[tuple[str, str]]:
        return {(t, h) for t, h, a in self.edges if "dashed" in a}

    def named_edges(self) -> set[tuple[str, str]]:
        """Data edges as (tail label, head label), first lines only."""
        first = {i: label.split("\n")[0] for i, label in self.labels.items()}
        return {(first[t], first[h]) for t, h in self.data_edges()}


def dot(graph) -> Dot:  # noqa: ANN001
    return Dot(graph.source)

"""The graph object both visualizers return, and what their drawings share.

``new_graph`` gives a ``graphviz.Digraph`` subclass whose notebook display is the SVG
drawing, or, when Graphviz's ``dot`` program is missing, a short note saying how to
install it (never a traceback). The DOT text is always there in ``.source``.

graphviz is imported here, and this module is only imported from inside the functions
that draw, so ``import kernelflow`` does not load it.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

try:
    import graphviz
except ImportError as error:  # a declared dependency, but say how to fix a broken install
    raise ImportError(
        "Drawing flow graphs needs the graphviz Python package: pip install graphviz"
    ) from error

from kernelflow.viz._picture import img_html

INSTALL_HINT = (
    "This graph cannot be drawn: Graphviz's `dot` program was not found on PATH.\n"
    "Install it, then display the graph again:\n"
    "  apt-get install graphviz    (Debian, Ubuntu)\n"
    "  conda install graphviz      (conda)\n"
    "  brew install graphviz       (macOS)\n"
    "The graph's DOT text is in its .source attribute."
)

FONT = "Helvetica"
MAP_COLOR = "#7c3aed"  # mapped tasks, in both graphs
EDGE_COLOR = "#475569"
WAIT_FOR_EDGE = {
    "style": "dashed",
    "color": "#94a3b8",
    "label": "wait_for",
    "fontsize": "9",
    "fontcolor": "#64748b",
}


class FlowGraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` that displays as a picture wherever a notebook is read.

    Its bundle carries the SVG, the same SVG as a sized ``<img>`` in HTML (what JupyterLab
    shows, also in a notebook reopened untrusted, where SVG outputs are not rendered),
    and a sentence for ``text/plain`` instead of the object's repr. Without ``dot`` it
    shows an install hint instead of failing.
    """

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, Any]:
        try:
            svg = self.pipe(format="svg", encoding="utf-8")
        except graphviz.ExecutableNotFound:
            return {
                "text/plain": INSTALL_HINT,
                "text/html": f"<pre>{html.escape(INSTALL_HINT)}</pre>",
            }
        bundle = {
            "image/svg+xml": svg,
            "text/html": img_html(svg, self.describe(), "kf-graph"),
            "text/plain": self.describe(),
        }
        return {k: v for k, v in bundle.items() if _wanted(k, include, exclude)}

    def describe(self) -> str:
        """One line for readers without pictures: which graph, and where its DOT text is."""
        nodes = sum(1 for line in self.body if _is_node(line))
        return f"Graph of {self.name!r}: {nodes} nodes (its DOT source is in .source)"


def _is_node(line: str) -> bool:
    head = line.strip().split(" ", 1)[0]
    return "[" in line and "->" not in line and head not in ("graph", "node", "edge", "legend")


def _wanted(mime: str, include: Iterable[str] | None, exclude: Iterable[str] | None) -> bool:
    return (include is None or mime in include) and (exclude is None or mime not in exclude)


def new_graph(name: str, title: str | None = None, rankdir: str = "LR") -> FlowGraph:
    """An empty graph with kernelflow's look; ``compound`` lets edges end at clusters.

    Args:
        name: The graph's name (the flow's).
        title: A heading drawn above the graph; None where a display shows one already.
    """
    attrs = {"rankdir": rankdir, "compound": "true", "fontname": FONT, "fontsize": "14"}
    attrs |= {"nodesep": "0.3", "ranksep": "0.45"}
    if title:
        attrs |= {"label": title, "labelloc": "t"}
    graph = FlowGraph(name=name, graph_attr=attrs)
    graph.attr("node", fontname=FONT, fontsize="11")
    graph.attr("edge", fontname=FONT, color=EDGE_COLOR, arrowsize="0.7")
    return graph


def add_legend(
    graph: graphviz.Digraph, entries: list[tuple[str, dict[str, str]]], notes: Iterable[str] = ()
) -> None:
    """A legend node, two lines wide: a swatch per style used, then notes about edges.

    Args:
        entries: (what it means, the node attributes that show it) for each style.
        notes: Short texts under the swatches (e.g. what a dashed edge means).
    """
    cells = ["<TD><B>legend</B></TD>"]
    for meaning, attrs in entries:
        fill = attrs.get("fillcolor", "white")
        border = attrs.get("color", "black")
        style = ' STYLE="dashed"' if "dashed" in attrs.get("style", "") else ""
        cells.append(
            f'<TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1"{style} WIDTH="18"> </TD>'
            f'<TD ALIGN="LEFT">{html.escape(meaning)}</TD>'
        )
    rows = [f"<TR>{''.join(cells)}</TR>"]
    if notes:
        text = html.escape(" · ".join(notes))
        rows.append(f'<TR><TD COLSPAN="{2 * len(entries) + 1}" ALIGN="LEFT">{text}</TD></TR>')
    table = (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="2">'
        + "".join(rows)
        + "</TABLE>>"
    )
    graph.node("legend", label=table, shape="plaintext", fontsize="10")


ASSET_EDGE = {"color": "#0d9488"}


def edge_attrs(key: str) -> dict[str, str]:
    """How an input edge is drawn: data solid, ``wait_for`` dashed, assets teal."""
    if key in ("asset", "materialized"):
        return dict(ASSET_EDGE)
    return dict(WAIT_FOR_EDGE) if key == "wait_for" else {}

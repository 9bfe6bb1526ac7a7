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
    """A ``graphviz.Digraph`` that shows an install hint instead of failing without ``dot``."""

    def _repr_mimebundle_(
        self, include: Iterable[str] | None = None, exclude: Iterable[str] | None = None, **_: Any
    ) -> dict[str, Any]:
        try:
            return super()._repr_mimebundle_(include, exclude)
        except graphviz.ExecutableNotFound:
            return {
                "text/plain": INSTALL_HINT,
                "text/html": f"<pre>{html.escape(INSTALL_HINT)}</pre>",
            }


def new_graph(title: str, rankdir: str = "LR") -> FlowGraph:
    """An empty graph with kernelflow's look; ``compound`` lets edges end at clusters."""
    graph = FlowGraph(
        name=title,
        graph_attr={
            "rankdir": rankdir,
            "compound": "true",
            "fontname": FONT,
            "label": title,
            "labelloc": "t",
            "fontsize": "14",
            "nodesep": "0.3",
            "ranksep": "0.45",
        },
    )
    graph.attr("node", fontname=FONT, fontsize="11")
    graph.attr("edge", fontname=FONT, color=EDGE_COLOR, arrowsize="0.7")
    return graph


def add_legend(
    graph: graphviz.Digraph, entries: list[tuple[str, dict[str, str]]], notes: Iterable[str] = ()
) -> None:
    """A legend node: one swatch per style used, then notes about the edges.

    Args:
        entries: (what it means, the node attributes that show it) for each style.
        notes: Lines of text under the swatches (e.g. what a dashed edge means).
    """
    rows = ['<TR><TD COLSPAN="2"><B>legend</B></TD></TR>']
    for meaning, attrs in entries:
        fill = attrs.get("fillcolor", "white")
        border = attrs.get("color", "black")
        style = ' STYLE="dashed"' if "dashed" in attrs.get("style", "") else ""
        rows.append(
            f'<TR><TD BGCOLOR="{fill}" COLOR="{border}" BORDER="1"{style} WIDTH="24"> </TD>'
            f'<TD ALIGN="LEFT">{html.escape(meaning)}</TD></TR>'
        )
    for note in notes:
        rows.append(f'<TR><TD COLSPAN="2" ALIGN="LEFT">{html.escape(note)}</TD></TR>')
    table = (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="3" CELLPADDING="2">'
        + "".join(rows)
        + "</TABLE>>"
    )
    graph.node("legend", label=table, shape="plaintext", fontsize="10")


def format_duration(seconds: float | None) -> str:
    """A run's duration for a node label: "12 ms", "3.4 s", "2m 05s"."""
    if seconds is None:
        return ""
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def edge_attrs(key: str) -> dict[str, str]:
    """How an input edge is drawn: data solid, ``wait_for`` dashed."""
    return dict(WAIT_FOR_EDGE) if key == "wait_for" else {}

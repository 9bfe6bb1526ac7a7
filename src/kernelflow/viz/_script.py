"""``Flow.visualize()`` outside a notebook: the graph written to an SVG file.

A notebook shows the returned graph by itself; a script or a terminal shows nothing,
so there the drawing is saved to ``$KERNELFLOW_HOME/graphs/<flow name>.svg`` (each call
replaces the flow's previous drawing) and a log line says where. Prefect renders a PNG
beside the script and opens a viewer; a file under kernelflow's home leaves the working
directory alone and works on machines with no display.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path

from kernelflow.viz._render import INSTALL_HINT, FlowGraph

_logger = logging.getLogger("kernelflow")


def in_notebook() -> bool:
    """Whether a Jupyter kernel runs this code (its display shows the graph itself)."""
    return "ipykernel" in sys.modules


def save_for_script(graph: FlowGraph, flow_name: str) -> Path | None:
    """Write ``graph`` as SVG under the home's ``graphs`` folder and log where; the
    path, or None when Graphviz's ``dot`` is missing (then the log says how to fix it)."""
    import graphviz

    from kernelflow._logging import run_logger
    from kernelflow._results.store import home, make_private_dirs

    run_logger()  # kernelflow's log handler, so the line below is seen in a script
    folder = home() / "graphs"
    make_private_dirs(str(folder))
    path = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', flow_name)}.svg"
    try:
        svg = graph.pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound:
        _logger.warning("%s", INSTALL_HINT)
        return None
    path.write_text(svg, encoding="utf-8")
    _logger.info("Graph of flow %r written to %s", flow_name, path)
    return path

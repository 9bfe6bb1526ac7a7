"""What a finished flow run shows: its timeline (a Gantt chart per worker) and its graph.

The timeline is the picture of concurrency vs parallelism: one row per worker thread
(or process), one bar per task run from its first Running state to its final state.
Bars too thin to see apart are merged, so a 10,000-task map draws a few hundred shapes.
"""

from __future__ import annotations

import html
import logging
from typing import Any

from kernelflow.notebook import _snapshot

_logger = logging.getLogger("kernelflow.notebook")

WIDTH = 640  # px of the time axis
LABEL = 150  # px for worker names
ROW = 18  # px per worker row
# dot takes about a second to lay out a few hundred nodes; past this the timeline and
# the counts say more than a graph nobody can read.
MAX_GRAPH_NODES = 500


Bar = tuple[float, float, str, Any]  # start, end, colour, the task run


def _bars(task_runs: list[Any]) -> dict[str, list[Bar]]:
    """``worker -> [(start, end, colour, run)]`` for every run that started and ended."""
    rows: dict[str, list[Bar]] = {}
    colour = _snapshot.colour
    for run in task_runs:
        start, end = run.start_time, run.end_time
        if start is not None and end is not None:
            rows.setdefault(run.worker or "?", []).append((start, end, colour(run.state), run))
    return rows


def _merged(bars: list[Bar], pixel: float) -> list[list[Any]]:
    """Join runs of thin bars of one colour less than a pixel apart.

    Returns ``[start, end, colour, run, n]`` lists. Bars at least two pixels wide stay
    apart, so each run that can be seen is its own bar with its own tooltip.
    """
    bars.sort(key=_start)
    merged: list[list[Any]] = []
    last: list[Any] = [None, float("-inf"), None, None, 0]
    last_thin = False
    for start, end, fill, run in bars:
        thin = end - start < 2 * pixel
        if thin and last_thin and fill == last[2] and start - last[1] < pixel:
            last[1] = max(last[1], end)
            last[4] += 1
        else:
            last = [start, end, fill, run, 1]
            last_thin = thin
            merged.append(last)
    return merged


def _start(bar: Bar) -> float:
    return bar[0]


def _tooltip(run: Any, n: int) -> str:
    # Written only for the bars drawn: a 10,000-run map draws a few hundred.
    if n > 1:
        return f"{n} task runs"
    return f"{run.name}: {run.state.name}, {_snapshot.seconds(run.end_time - run.start_time)}"


def timeline_svg(flow_run: Any) -> str:
    """An SVG Gantt chart of the flow run's task runs per worker ('' if none ran)."""
    rows = _bars(list(flow_run.task_runs))
    if not rows:
        return ""
    t0 = min(min(bar[0] for bar in bars) for bars in rows.values())
    t1 = max(max(bar[1] for bar in bars) for bars in rows.values())
    span = max(t1 - t0, 1e-6)
    scale = WIDTH / span
    merged = {worker: _merged(bars, 1 / scale) for worker, bars in rows.items()}
    order = sorted(merged, key=lambda worker: merged[worker][0][0])
    shapes = []
    for i, worker in enumerate(order):
        y = 20 + i * ROW
        name = html.escape(worker[:24])
        shapes.append(f'<text x="{LABEL - 6}" y="{y + 12}" text-anchor="end">{name}</text>')
        for start, end, fill, run, n in merged[worker]:
            x = LABEL + (start - t0) * scale
            w = max((end - start) * scale, 1.0)
            tip = html.escape(_tooltip(run, n))
            shapes.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW - 4}" '
                f'fill="{fill}" stroke="white" stroke-width="0.5"><title>{tip}</title></rect>'
            )
    height = 30 + len(order) * ROW
    axis = (
        f'<text x="{LABEL}" y="12">0 s</text>'
        f'<text x="{LABEL + WIDTH}" y="12" text-anchor="end">{_snapshot.seconds(span)}</text>'
    )
    return (
        f'<svg class="kf-timeline" xmlns="http://www.w3.org/2000/svg" width="{LABEL + WIDTH + 10}" '
        f'height="{height}" font-family="sans-serif" font-size="11">{axis}{"".join(shapes)}</svg>'
    )


def graph_svg(flow_run: Any) -> str:
    """The executed-run graph as SVG, or '' where there is none to draw.

    ``FlowRun.graph()`` comes from the visualizer; without it, or without graphviz's
    ``dot`` binary, the display shows the rest and says nothing rather than fail.
    """
    graph = getattr(flow_run, "graph", None)
    if graph is None or not 0 < _graph_nodes(flow_run.task_runs) <= MAX_GRAPH_NODES:
        return ""
    try:
        return graph().pipe(format="svg", encoding="utf-8")
    except Exception as error:  # no dot binary, or a graph too odd to lay out
        _logger.debug("No run graph for %s: %r", flow_run.name, error)
        return ""


def _graph_nodes(task_runs: list[Any]) -> int:
    """How many nodes the run graph draws: one per ``.map()`` call, one per other run."""
    groups = set()
    singles = 0
    for run in task_runs:
        if run.map_group is None:
            singles += 1
        else:
            groups.add(run.map_group)
    return singles + len(groups)


def finished_html(flow_run: Any) -> str:
    """The graph and the timeline of a finished flow run, as one block of HTML."""
    parts = []
    graph = graph_svg(flow_run)
    if graph:
        parts.append(f'<div class="kf-graph" style="overflow:auto;max-height:480px">{graph}</div>')
    timeline = timeline_svg(flow_run)
    if timeline:
        parts.append(f'<div class="kf-timeline-box" style="overflow:auto">{timeline}</div>')
    return "".join(parts)


def flow_html(
    flow_run: Any, charts: str | None = None, counts: _snapshot.Counts | None = None
) -> str:
    """The full HTML snapshot of a flow run: header, progress, failures, and once it is
    final its charts (``charts`` and ``counts``: if the caller has them already)."""
    counts = counts or _snapshot.count(list(flow_run.task_runs))
    body = _snapshot.progress_html(counts) + _snapshot.failures_html(counts.failures)
    if charts is None:
        charts = finished_html(flow_run) if flow_run.state.is_final() else ""
    return f'<div class="kf-flow">{_snapshot.flow_header_html(flow_run)}{body}{charts}</div>'

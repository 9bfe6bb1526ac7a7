"""A flow run's pictures: its timeline (a Gantt chart in lanes) and its run graph.

The timeline is the picture of concurrency vs parallelism. One bar per task run, from
its first Running state to its final state (a run still going ends at "now"), laid in
lanes: runs that overlap in time get lanes of their own, runs one after another share a
lane. Lanes are grouped by where the bodies ran: the main thread (a sync flow's direct
calls, an async flow's tasks on its event loop), this process's worker threads, or each
worker process. So ten async tasks awaited together draw ten lanes on the main thread,
a chain of fifteen steps one lane, and two processes two groups side by side, whatever
threads happened to exist. Bars too thin to see apart are merged, so a 10,000-task map
draws a few hundred shapes. Task runs of subflows count as the parent's: a flow whose
work is all in subflows shows that work.
"""

from __future__ import annotations

import base64
import heapq
import html
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kernelflow._history.text import duration
from kernelflow.notebook import _snapshot
from kernelflow.notebook._tally import count
from kernelflow.states import StateType
from kernelflow.viz import _picture
from kernelflow.viz._picture import img_html, inline_html
from kernelflow.viz._seen import NOW

_logger = logging.getLogger("kernelflow.notebook")

WIDTH = 640  # px of the time axis
LABEL = 170  # px for worker names
LABEL_CHARS = 28  # what fits in LABEL at the font size used
ROW = 18  # px per lane
TICKS = 5  # about this many labelled times on the axis
# dot takes about a second to lay out a few hundred nodes; past this the timeline and
# the counts say more than a graph nobody can read.
MAX_GRAPH_NODES = 500


Bar = tuple[float, float, str, Any]  # start, end, colour, the task run


def all_task_runs(flow_run: Any, seen: Any = NOW) -> Iterator[Any]:
    """The task runs of ``flow_run`` and of every subflow run in it, depth first (those
    ``seen``: a tally's snapshot leaves out runs created after it)."""
    yield from list(seen.task_runs(flow_run))
    for sub in list(getattr(flow_run, "subflow_runs", ())):
        yield from all_task_runs(sub, seen)


def task_run_lists(flow_run: Any) -> Iterator[list[Any]]:
    """The (growing) task-run lists of ``flow_run`` and of every subflow run in it."""
    yield flow_run.task_runs
    for sub in list(getattr(flow_run, "subflow_runs", ())):
        yield from task_run_lists(sub)


def _lanes(task_runs: list[Any], now: float, seen: Any = NOW) -> list[tuple[str, list[Bar]]]:
    """``[(label, bars)]``: every run that started, in lanes, grouped by where it ran
    (in the states ``seen``; a run still going then ends at ``now``).

    Within a group, each run goes to the first lane free when it starts, so the number
    of lanes is the most runs that overlapped there, and lane 1 is the busiest.
    """
    groups: dict[str, list[Bar]] = {}
    colour = _snapshot.colour
    for run in task_runs:
        start, state = run.start_time, seen.state(run)
        if start is not None and state.type is not StateType.PENDING:
            end = run.end_time if state.is_final() and run.end_time else now
            bar = (start, end, colour(state), run)
            groups.setdefault(_place(run.worker or "?"), []).append(bar)
    lanes = []
    for place, bars in groups.items():
        packed = _packed(bars)
        for number, lane in enumerate(packed, 1):
            lanes.append((_lane_label(place, number, len(packed)), lane))
    lanes.sort(key=lambda lane: lane[1][0][0])
    return lanes


def _place(worker: str) -> str:
    """The group a worker's lanes are drawn in: a process of its own, or a thread here."""
    if worker.startswith("process-") or "://" in worker:
        return worker  # a process-pool worker or a Dask worker
    return "main thread" if worker == "MainThread" else "worker threads"


def _packed(bars: list[Bar]) -> list[list[Bar]]:
    """``bars`` in the fewest lanes in which none overlap, each bar in the lowest lane free."""
    bars.sort(key=_start)
    lanes: list[list[Bar]] = []
    busy: list[tuple[float, int]] = []  # (end of its last bar, lane) for lanes in use
    free: list[int] = []
    for bar in bars:
        while busy and busy[0][0] <= bar[0]:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane = len(lanes)
            lanes.append([])
        lanes[lane].append(bar)
        heapq.heappush(busy, (bar[1], lane))
    return lanes


def _lane_label(place: str, number: int, lanes: int) -> str:
    if lanes == 1:
        return worker_label(place)
    suffix = f" · {number}"
    return worker_label(place, LABEL_CHARS - len(suffix)) + suffix


def _merged(bars: list[Bar], pixel: float) -> list[list[Any]]:
    """Join runs of thin bars of one colour less than a pixel apart.

    Returns ``[start, end, colour, run, n]`` lists. Bars at least two pixels wide stay
    apart, so each run that can be seen is its own bar with its own tooltip.
    """
    merged: list[list[Any]] = []  # bars come sorted by start
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


def _tooltip(run: Any, n: int, now: float) -> str:
    # Written only for the bars drawn: a 10,000-run map draws a few hundred.
    if n > 1:
        return f"{n} task runs"
    took = (run.end_time or now) - run.start_time
    return f"{run.name}: {run.state.name}, {duration(took)} on {run.worker}"


def worker_label(worker: str, chars: int = LABEL_CHARS) -> str:
    """A worker's name cut to ``chars``, keeping its end: Dask workers differ only in the
    port."""
    if len(worker) <= chars:
        return worker
    return worker[:8] + "…" + worker[-(chars - 9) :]


def axis_ticks(span: float) -> list[tuple[float, str]]:
    """About ``TICKS`` round times across ``span`` seconds, labelled in a unit that reads
    well at that scale (``0 ms 20 ms 40 ms``, ``0 s 0.5 s 1 s``, ``0 s 30 s 60 s``)."""
    raw = span / TICKS
    step = next((step for step in _STEPS if step >= raw), raw)
    ticks = []
    value = 0.0
    while value <= span * 1.0001:
        ticks.append((value, _tick_label(value, step)))
        value += step
    return ticks


# Round steps: 1-2-5 of a power of ten under a minute, whole minutes and hours above.
_STEPS = [base * 10.0**exp for exp in range(-4, 2) for base in (1, 2, 5)][:-1] + [
    60 * m for m in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600)
]


def _tick_label(value: float, step: float) -> str:
    if step < 1:
        digits = max(0, len(f"{step * 1000:g}".partition(".")[2]))
        return f"{value * 1000:.{digits}f} ms"
    if step < 60:
        return f"{value:g} s"
    minutes, secs = divmod(int(round(value)), 60)
    return f"{minutes}m {secs:02d}s" if secs else f"{minutes}m"


def timeline_svg(flow_run: Any, now: float | None = None, seen: Any = NOW) -> str:
    """An SVG Gantt chart of the flow run's task runs in lanes ('' if none started), as
    they are now, or as ``seen`` at ``now`` (a tally's snapshot and its time)."""
    now = time.time() if now is None else now
    lanes = _lanes(list(all_task_runs(flow_run, seen)), now, seen)
    if not lanes:
        return ""
    t0 = lanes[0][1][0][0]
    t1 = max(max(bar[1] for bar in bars) for _, bars in lanes)
    span = max(t1 - t0, 1e-6)
    scale = WIDTH / span
    height = 30 + len(lanes) * ROW
    shapes = [_axis(span, scale, height)]
    for i, (label, bars) in enumerate(lanes):
        y = 20 + i * ROW
        shapes.append(
            f'<text x="{LABEL - 6}" y="{y + 12}" text-anchor="end">{html.escape(label)}</text>'
        )
        for start, end, fill, run, n in _merged(bars, 1 / scale):
            x = LABEL + (start - t0) * scale
            w = max((end - start) * scale, 1.0)
            tip = html.escape(_tooltip(run, n, now))
            shapes.append(
                f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{ROW - 4}" '
                f'fill="{fill}" stroke="white" stroke-width="0.5"><title>{tip}</title></rect>'
            )
    return (
        f'<svg class="kf-timeline" xmlns="http://www.w3.org/2000/svg" '
        f'width="{LABEL + WIDTH + 30}" height="{height}" viewBox="0 0 {LABEL + WIDTH + 30} '
        f'{height}" font-family="sans-serif" font-size="11">{"".join(shapes)}</svg>'
    )


def _axis(span: float, scale: float, bottom: int) -> str:
    parts = []
    for value, label in axis_ticks(span):
        x = LABEL + value * scale
        parts.append(
            f'<line x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{bottom - 10}" stroke="#e0e0e0"/>'
            f'<text x="{x:.1f}" y="12" text-anchor="middle" fill="#555">{label}</text>'
        )
    return "".join(parts)


def graph_nodes(flow_run: Any) -> int:
    """How many nodes the run graph draws: one per ``.map()`` call, one per other run."""
    groups = set()
    singles = 0
    for run in all_task_runs(flow_run):
        if run.map_group is None:
            singles += 1
        else:
            groups.add((id(run.flow_run), run.map_group))
    return singles + len(groups)


class LiveGraph:
    """Draws a flow run's graph again and again as it runs, calling ``dot`` only when the
    graph changed since the last drawing."""

    def __init__(self) -> None:
        self._source: str | None = None
        self._svg = ""

    def svg(self, flow_run: Any, limit: int = MAX_GRAPH_NODES, seen: Any = None) -> str:
        """The run graph as SVG (no title: the display's header says it), or '' where
        there is none: no runs, more than ``limit`` nodes, no graphviz or ``dot``.
        ``seen``: the runs and states to draw (a tally's snapshot), else as they are."""
        if not 0 < graph_nodes(flow_run) <= limit:
            return ""
        try:
            from kernelflow.viz import run_graph

            graph = run_graph(flow_run, title=False, seen=seen)
            if graph.source != self._source:
                self._svg = graph.pipe(format="svg", encoding="utf-8")
                self._source = graph.source
        except Exception as error:  # no dot binary, or a graph too odd to lay out
            _logger.debug("No run graph for %s: %r", flow_run.name, error)
            return ""
        return self._svg


def graph_svg(flow_run: Any) -> str:
    """The run graph of a finished flow run as SVG ('' where there is none to draw)."""
    return LiveGraph().svg(flow_run)


@dataclass(frozen=True)
class Pictures:
    """A flow run's graph and timeline as SVG text ('' for one not drawn)."""

    graph: str = ""
    timeline: str = ""

    def html(self, inline: bool) -> str:
        """Both as HTML: ``inline`` SVG for a live widget (tooltips work), else ``<img>``
        tags that survive the sanitizers of untrusted notebooks and GitHub."""
        parts = []
        for svg, css, alt in (
            (self.graph, "kf-graph", "run graph"),
            (self.timeline, "kf-timeline-box", "timeline"),
        ):
            if svg:
                parts.append(inline_html(svg, css) if inline else img_html(svg, alt, css))
        return "".join(parts)

    def outputs(self, name: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """``(data, metadata)`` of each picture drawn, as an output of its own: SVG, a
        PNG for renderers that show no SVG, and a line of text. So the pictures survive
        renderers that drop or sanitize HTML, and nbconvert writes them as image files."""
        found = []
        for svg, what in ((self.graph, "run graph"), (self.timeline, "timeline")):
            if svg:
                data: dict[str, Any] = {"image/svg+xml": svg, "text/plain": f"<{what} of {name}>"}
                metadata: dict[str, Any] = {}
                drawn = _picture.png(svg)
                size = _picture.svg_size(svg)
                if drawn is not None:
                    data["image/png"] = base64.b64encode(drawn).decode("ascii")
                    if size:  # shown at the SVG's size, not at twice it
                        metadata["image/png"] = {"width": round(size[0]), "height": round(size[1])}
                found.append((data, metadata))
        return found


def draw(flow_run: Any) -> Pictures:
    return Pictures(graph_svg(flow_run), timeline_svg(flow_run))


def body_html(flow_run: Any, counts: _snapshot.Counts) -> str:
    """Header, bar and counts, the first failures, or the flow's own error."""
    paused = flow_run.state.is_paused()
    failures = _snapshot.failures_html(counts.failures)
    error = "" if failures else _snapshot.flow_error_html(flow_run)
    return (
        _snapshot.flow_header_html(flow_run)
        + _snapshot.progress_html(counts, paused=paused)
        + _snapshot.pauses_html(flow_run)
        + (failures or error)
    )


def flow_html(
    flow_run: Any,
    pictures: Pictures | None = None,
    counts: _snapshot.Counts | None = None,
    log: Any = None,
    inline: bool = False,
) -> str:
    """The HTML snapshot of a flow run: body, its pictures (those given; drawn here for a
    final run when None), and its log lines (``counts``: if the caller has tallied them
    already). ``Pictures()`` leaves them out: they are outputs of their own."""
    counts = counts or count(all_task_runs(flow_run))
    if pictures is None and flow_run.state.is_final():
        pictures = draw(flow_run)
    charts = pictures.html(inline) if pictures else ""
    logs = _snapshot.logs_html(log) if log is not None else ""
    return f'<div class="kf-flow">{body_html(flow_run, counts)}{charts}{logs}</div>'

"""Live views of futures, future lists and flow runs, built from core ipywidgets only.

Core widgets (HTML, IntProgress, boxes) render wherever ipywidgets does: JupyterLab,
Notebook 7, VS Code, Colab. Each view copies its record's state into the widgets in
``refresh``, which only the display loop calls (see ``_ticker``); traitlets send a
message only for a value that changed, so an idle tick costs no traffic.
"""

from __future__ import annotations

import time
from html import escape as _escape
from typing import Any

from kernelflow import _logging
from kernelflow._history.text import duration
from kernelflow.notebook import _charts, _snapshot
from kernelflow.notebook._tally import Tally


def ipywidgets() -> Any:
    """The ipywidgets module, imported on first display; a fix-it message if missing."""
    try:
        import ipywidgets as widgets
    except ImportError as error:
        raise ImportError(
            "Live displays need ipywidgets: pip install 'kernelflow[notebook]' "
            "(or pip install ipywidgets)."
        ) from error
    return widgets


class _FinalHook:
    """Calls ``on_final(view)`` once, on the display loop, when the view has drawn its
    final frame: the display then swaps the widget for static outputs."""

    _on_final: Any = None

    def ended(self) -> bool:
        """Whether the run (or every run) shown has reached a final state."""
        raise NotImplementedError

    def _finished(self) -> None:
        hook, self._on_final = self._on_final, None
        if hook is not None:
            hook(self)


class FutureView(_FinalHook):
    """A future as one line: run name, state badge, elapsed time, result or error preview.

    Attributes:
        widget: The ipywidgets box to display.
        state_name: The state name the widgets show now.
        refreshes: How many times ``refresh`` ran (tests check throttling with it).
    """

    def __init__(self, future: Any, on_final: Any = None) -> None:
        widgets = ipywidgets()
        self.run = future.task_run
        self.title = widgets.HTML(f"<b>{_escape(self.run.name)}</b>")
        self.badge = widgets.HTML()
        self.elapsed = widgets.HTML()
        self.preview = widgets.HTML()
        self.widget = widgets.HBox(
            [self.title, self.badge, self.elapsed, self.preview],
            layout=widgets.Layout(align_items="center", grid_gap="8px"),
            _dom_classes=["kf-future"],
        )
        self.state_name = ""
        self.refreshes = 0
        self._on_final = on_final
        self.refresh()

    def ended(self) -> bool:
        return self.run.state.is_final()

    def refresh(self) -> bool:
        self.refreshes += 1
        state = self.run.state
        if state.name != self.state_name:
            self.state_name = state.name
            self.badge.value = _snapshot.badge_html(state)
            detail = _snapshot.preview(state)
            self.preview.value = f"<code>{_escape(detail)}</code>" if detail else ""
        self.elapsed.value = duration(_snapshot.elapsed(self.run))
        if state.is_final():
            self._finished()
            return False
        return True


class FutureListView(_FinalHook):
    """A ``.map()`` result: a bar with a segment per state, counts, the first failures.

    Attributes:
        bar: HTML: the segmented bar and counts such as ``812/1000 completed, 3 failed``.
        failures: HTML listing the first failed runs and their errors.
        tally: The counts shown now.
    """

    def __init__(self, futures: list[Any], on_final: Any = None) -> None:
        widgets = ipywidgets()
        self.runs = [future.task_run for future in futures]
        self.bar = widgets.HTML()
        self.failures = widgets.HTML()
        self.widget = widgets.VBox([self.bar, self.failures], _dom_classes=["kf-future-list"])
        self.tally = _snapshot.Counts(total=-1)
        self._tally = Tally()
        self.refreshes = 0
        self._on_final = on_final
        self.refresh()

    def ended(self) -> bool:
        return all(run.state.is_final() for run in self.runs)

    def refresh(self) -> bool:
        self.refreshes += 1
        tally = self._tally.update([self.runs])
        if tally != self.tally:
            self.tally = tally
            self.bar.value = _snapshot.progress_html(tally)
            self.failures.value = _snapshot.failures_html(tally.failures)
        if tally.done:
            self._finished()
            return False
        return True


class FlowRunView(_FinalHook):
    """A flow run as it happens: header, a bar per state, failures, log lines, and live
    pictures (its graph so far, coloured by state, and a growing timeline).

    A flow's display opens in the cell as the flow starts, on its clock, and every widget
    costs the kernel a message to open: so a few HTML widgets, not a tree of them, all
    opened at once (JupyterLab lost the final static output of a display whose box gained
    a widget later, from the display thread). The final state and counts go out in one
    frame; the final pictures, which take a 10,000-run flow tens of milliseconds to draw,
    follow on the next tick, after the flow call has returned, and go straight into the
    static outputs that replace the widget (into the widget only where nothing replaces
    it). A running flow shows its pictures from its first frame, redrawn every
    ``PICTURE_INTERVAL`` seconds or more (see ``_draw_live_frame``), the graph only
    when it changed and only up to ``LIVE_GRAPH_NODES`` nodes (beyond, the counts say
    it). A frame with pictures takes the counts in the header and the states in the
    graph from one snapshot, and the frames between redraw only the header's clock and
    badge with those counts, so header and graph never disagree.

    Attributes:
        body: HTML: header (name, badge, elapsed), bar and counts, failures or error.
        charts: HTML: the run graph and the timeline.
        logs: HTML: the run's log lines, WARNING and up shown, the rest folded.
        pictures: The pictures drawn last.
        tally: The counts the body shows now.
    """

    def __init__(self, flow_run: Any, on_final: Any = None) -> None:
        widgets = ipywidgets()
        self.flow_run = flow_run
        self.body = widgets.HTML()
        self.charts = widgets.HTML()
        self.logs = widgets.HTML()
        self.widget = widgets.VBox(
            [self.body, self.charts, self.logs], _dom_classes=["kf-flow-run"]
        )
        self._on_final = on_final
        self.log = _logging.run_log(flow_run)
        if self.log is not None:
            self.log.shown = True
        self._log_version = -1
        self.pictures = _charts.Pictures()
        self._opened_at = time.monotonic()
        self._pictures_at = self._opened_at + FIRST_PICTURES
        self._graph = _charts.LiveGraph()
        self.state_name = ""
        self.tally = _snapshot.Counts(total=0)
        self._tally = Tally()
        self.refreshes = 0
        self._final_frame_sent = False
        self._charts_drawn = False
        self._snapshots = 0  # live frames with pictures so far: each its own snapshot
        self.refresh()
        if self._final_frame_sent:  # a finished run (last_run()): no flow clock to spare
            self._draw_charts()

    def ended(self) -> bool:
        return self.flow_run.state.is_final()

    def refresh(self) -> bool:
        self.refreshes += 1
        if self._final_frame_sent:
            if not self._charts_drawn:
                self._draw_charts()
            return False
        run = self.flow_run
        self.state_name = run.state.name
        final = run.state.is_final()
        if final or not self.charts.value:
            self.tally = self._tally.update(_charts.task_run_lists(run))
        if final and self.charts.value:
            # The live pictures are older than these final counts: none, rather than
            # ones that disagree, until the final pictures come on the next tick.
            self.charts.value = ""
        elif not final and time.monotonic() >= self._pictures_at and self._affordable():
            self._draw_live_frame()
        self.body.value = _frame(self._snapshots, _charts.body_html(run, self.tally))
        self._refresh_logs()
        self._final_frame_sent = final
        return True

    def _affordable(self) -> bool:
        """Whether a frame with pictures keeps the drawing within ~5% of the flow's time
        so far, at what drawing costs per task run in this session. A flow of a few
        hundred runs draws its first at FIRST_PICTURES; one of 10,000 (tens of ms to
        draw) after some 0.7 s, so a flow that ends sooner pays for no live picture."""
        predicted = _cost_per_run * self.tally.total
        if predicted <= CHEAP_FRAME:
            return True
        due = self._opened_at + 20 * predicted
        if time.monotonic() >= due:
            return True
        self._pictures_at = due
        return False

    def _draw_live_frame(self) -> None:
        # The drawing holds the GIL the flow's threads need: keep it under ~5% of the
        # time by waiting twenty times as long as it took before drawing again.
        global _cost_per_run
        cost = time.thread_time()
        run = self.flow_run
        self.tally = self._tally.update(_charts.task_run_lists(run), freeze=True)
        seen = self._tally.snapshot()
        self._snapshots += 1
        self.pictures = _charts.Pictures(
            self._graph.svg(run, LIVE_GRAPH_NODES, seen), _charts.timeline_svg(run, seen.at, seen)
        )
        self.charts.value = _frame(self._snapshots, self.pictures.html(inline=True))
        cost = time.thread_time() - cost
        self._pictures_at = time.monotonic() + max(PICTURE_INTERVAL, 20 * cost)
        if self.tally.total >= 100:  # enough runs for the per-run cost to dominate
            _cost_per_run = cost / self.tally.total

    def _refresh_logs(self) -> None:
        log = self.log
        if log is not None and log.version != self._log_version:
            self._log_version = log.version
            self.logs.value = _snapshot.logs_html(log)

    def _draw_charts(self) -> None:
        self._charts_drawn = True
        self.pictures = _charts.draw(self.flow_run)
        if self._on_final is None:  # the widget stays: it shows them
            self._refresh_logs()  # the flow's last lines ("Finished in state ...")
            self.charts.value = self.pictures.html(inline=True)
        self._finished()  # static outputs replace the widget, pictures and logs in them


def _frame(snapshot: int, html: str) -> str:
    """``html`` marked with the snapshot its counts come from: header and pictures are two
    widgets, each updated by a message of its own, so a browser may show one frame's
    header beside the last frame's pictures for a moment; the mark tells them apart."""
    return f'<div class="kf-frame" data-snapshot="{snapshot}">{html}</div>' if html else ""


FIRST_PICTURES = 0.1  # s: a flow quicker than this shows its pictures when it ends
PICTURE_INTERVAL = 0.5  # s between redraws of a running flow's pictures, at least
CHEAP_FRAME = 0.005  # s: a frame predicted to cost no more is drawn when due
# CPU seconds a live frame's pictures cost per task run: learnt from the session's last
# frame of 100 runs or more; until then, what a 10,000-run frame costs on a slow machine.
_cost_per_run = 4e-6
LIVE_GRAPH_NODES = 60  # a running flow's graph is drawn up to this many nodes

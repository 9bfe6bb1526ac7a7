"""Live views of futures, future lists and flow runs, built from core ipywidgets only.

Core widgets (HTML, IntProgress, boxes) render wherever ipywidgets does: JupyterLab,
Notebook 7, VS Code, Colab. Each view copies its record's state into the widgets in
``refresh``, which only the display loop calls (see ``_ticker``); traitlets send a
message only for a value that changed, so an idle tick costs no traffic.
"""

from __future__ import annotations

from html import escape as _escape
from typing import Any

from kernelflow.notebook import _charts, _snapshot


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


class FutureView:
    """A future as one line: run name, state badge, elapsed time, result or error preview.

    Attributes:
        widget: The ipywidgets box to display.
        state_name: The state name the widgets show now.
        refreshes: How many times ``refresh`` ran (tests check throttling with it).
    """

    def __init__(self, future: Any) -> None:
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
        self.refresh()

    def refresh(self) -> bool:
        self.refreshes += 1
        state = self.run.state
        if state.name != self.state_name:
            self.state_name = state.name
            self.badge.value = _snapshot.badge_html(state)
            detail = _snapshot.preview(state)
            self.preview.value = f"<code>{_escape(detail)}</code>" if detail else ""
        self.elapsed.value = _snapshot.seconds(_snapshot.elapsed(self.run))
        return not state.is_final()


class FutureListView:
    """A ``.map()`` result: a progress bar, counts per state and the first failures.

    Attributes:
        progress: The IntProgress: ``value`` finished runs of ``max``.
        counts: HTML such as ``812/1000 completed, 3 failed, 12 running``.
        failures: HTML listing the first failed runs and their errors.
        tally: The counts shown now.
    """

    def __init__(self, futures: list[Any]) -> None:
        widgets = ipywidgets()
        self.runs = [future.task_run for future in futures]
        self.progress = widgets.IntProgress(min=0, max=1, value=0)
        self.counts = widgets.HTML()
        self.failures = widgets.HTML()
        row = widgets.Layout(align_items="center")
        bar = widgets.HBox([self.progress, self.counts], layout=row)
        self.widget = widgets.VBox([bar, self.failures], _dom_classes=["kf-future-list"])
        self.tally = _snapshot.Counts(total=0)
        self.refreshes = 0
        self.refresh()

    def refresh(self) -> bool:
        self.refreshes += 1
        tally = _snapshot.count(self.runs)
        if tally != self.tally:
            self.tally = tally
            self.progress.max = max(tally.total, 1)
            self.progress.value = tally.finished if tally.total else 1
            self.progress.bar_style = _bar_style(tally)
            self.counts.value = f'<span class="kf-counts">{_escape(tally.text())}</span>'
            self.failures.value = _snapshot.failures_html(tally.failures)
        return not tally.done


class FlowRunView:
    """A flow run: name, state badge, elapsed time, task progress; graph and timeline
    once it is final.

    Two HTML widgets, not a tree of them: a flow's display opens in the cell as the flow
    starts, on its clock, and every widget costs the kernel a message to open. The final
    state and counts go out in one frame; the charts, which take a 10,000-run flow tens
    of milliseconds to draw, follow on the next tick, after the flow call has returned.

    Attributes:
        body: HTML: header (name, badge, elapsed), progress bar and counts, failures.
        charts: HTML: the run graph and the timeline, once the run is final.
        tally: The counts the body shows now.
    """

    def __init__(self, flow_run: Any, on_final: Any = None) -> None:
        widgets = ipywidgets()
        self.flow_run = flow_run
        self.body = widgets.HTML()
        self.charts = widgets.HTML()
        self.widget = widgets.VBox([self.body, self.charts], _dom_classes=["kf-flow-run"])
        self._on_final = on_final  # called once, on the display loop, with the charts drawn
        self.state_name = ""
        self.tally = _snapshot.Counts(total=0)
        self.refreshes = 0
        self._final_frame_sent = False
        self._charts_drawn = False
        self.refresh()
        if self._final_frame_sent:  # a finished run (last_run()): no flow clock to spare
            self._draw_charts()

    def refresh(self) -> bool:
        self.refreshes += 1
        if self._final_frame_sent:
            if not self._charts_drawn:
                self._draw_charts()
            return False
        run = self.flow_run
        self.state_name = run.state.name
        self._final_frame_sent = run.state.is_final()
        self.tally = _snapshot.count(list(run.task_runs))
        self.body.value = _charts.flow_html(run, charts="", counts=self.tally)
        return True

    def _draw_charts(self) -> None:
        self._charts_drawn = True
        self.charts.value = _charts.finished_html(self.flow_run)
        if self._on_final is not None:
            self._on_final(self)
            self._on_final = None


def _bar_style(tally: _snapshot.Counts) -> str:
    if tally.failed:
        return "danger"
    if tally.cancelled:
        return "warning"
    return "success" if tally.done else "info"

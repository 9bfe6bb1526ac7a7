"""Mimebundles for futures, future lists and flow runs, and the automatic flow-run display.

Every bundle carries ``text/plain`` and ``text/html`` snapshots of the state at display
time, so nbconvert, GitHub and a notebook reopened without widget state still show
something true, plus the live widget view when a kernel with ipywidgets can show one.
Outside a kernel the bundle is plain text only.
"""

from __future__ import annotations

import logging
import sys
import weakref
from typing import Any

from kernelflow._runs import FlowRun
from kernelflow.notebook import _charts, _snapshot
from kernelflow.notebook._ticker import ticker
from kernelflow.states import StateType

_logger = logging.getLogger("kernelflow.notebook")

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# The live views of each unfinished flow run, so its last frame can be sent at once.
_flow_views: weakref.WeakKeyDictionary[FlowRun, list[Any]] = weakref.WeakKeyDictionary()


def in_kernel() -> bool:
    """True inside a Jupyter kernel (where a widget can have a frontend)."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) is not None


def future_bundle(future: Any) -> dict[str, Any]:
    run = future.task_run
    plain = _snapshot.future_plain(run)
    return _bundle(plain, lambda view: _snapshot.future_html(run), future, "future")


def list_bundle(futures: list[Any]) -> dict[str, Any]:
    runs = [future.task_run for future in futures]
    plain = _snapshot.list_plain(runs)
    return _bundle(plain, lambda view: _snapshot.list_html(runs), futures, "list")


def flow_bundle(flow_run: Any) -> dict[str, Any]:
    def html(view: Any) -> str:
        # A finished run's view has drawn its charts already: draw them once, not twice.
        return _charts.flow_html(flow_run, view.charts.value if view else None)

    return _bundle(_snapshot.flow_plain(flow_run), html, flow_run, "flow")


def _bundle(plain: str, html: Any, record: Any, kind: str) -> dict[str, Any]:
    if not in_kernel():
        return {"text/plain": plain}
    try:
        view = _make_view(kind, record)
    except ImportError as error:  # no ipywidgets: the snapshots still tell the truth
        _logger.debug("No live display: %s", error)
        view = None
    bundle = {"text/plain": plain, "text/html": html(view)}
    if view is not None:
        bundle[WIDGET_MIME] = view.widget._repr_mimebundle_()[WIDGET_MIME]
        _watch(view, record if kind == "flow" else None)
    return bundle


def _watch(view: Any, flow_run: FlowRun | None) -> None:
    if flow_run is not None and not flow_run.state.is_final():
        _flow_views.setdefault(flow_run, []).append(view)
    ticker().watch(view)


def _make_view(kind: str, record: Any, on_final: Any = None) -> Any:
    from kernelflow.notebook import _widgets

    if kind == "future":
        return _widgets.FutureView(record)
    if kind == "list":
        return _widgets.FutureListView(record)
    return _widgets.FlowRunView(record, on_final)


def show_flow_run(flow_run: Any) -> None:
    """Display a live view of ``flow_run`` in the current cell.

    Once the run is final, the display's HTML and plain-text snapshots are replaced by
    final ones, so a notebook saved afterwards shows how the run ended even where
    widgets do not render.
    """
    if not in_kernel():  # turned on by hand outside a kernel: nowhere to show it
        return
    from IPython.display import display

    bundle = _flow_snapshots(flow_run)
    handle = None

    def update_snapshots(view: Any) -> None:
        if handle is not None:
            final = _flow_snapshots(flow_run, view.charts.value, view.tally)
            final[WIDGET_MIME] = bundle[WIDGET_MIME]
            handle.update(final, raw=True)

    try:
        view = _make_view("flow", flow_run, update_snapshots)
    except ImportError as error:
        _logger.debug("No live display: %s", error)
        display(bundle, raw=True)
        return
    bundle[WIDGET_MIME] = view.widget._repr_mimebundle_()[WIDGET_MIME]
    handle = display(bundle, raw=True, display_id=True)
    _watch(view, flow_run)


def _flow_snapshots(flow_run: Any, charts: str | None = None, counts: Any = None) -> dict:
    return {
        "text/plain": _snapshot.flow_plain(flow_run, counts),
        "text/html": _charts.flow_html(flow_run, charts, counts),
    }


def on_state_change(run: Any, old: Any, new: Any) -> None:
    """The flow-run observer that shows a top-level flow run as it starts.

    The changes it acts on, a flow run leaving Pending and reaching a final state,
    happen in the thread that called the flow: the cell's, so the display lands in that
    cell, and so does its last frame.
    """
    if new.type is StateType.RUNNING and old.type is StateType.PENDING and run.parent is None:
        show_flow_run(run)
    elif new.is_final():
        for view in _flow_views.pop(run, ()):
            ticker().refresh_now(view)

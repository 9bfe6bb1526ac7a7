"""How futures, future lists and flow runs show in a notebook, live and once they end.

In a kernel each is shown by ``show``: a live widget (with ``text/html`` and
``text/plain`` snapshots beside it) in an output with a display id, which is replaced,
once the run is final, by static outputs alone: ``text/plain`` and script-free HTML.
A flow run's graph and timeline then follow as outputs of their own (SVG, PNG and text,
into two outputs kept empty while it runs), so renderers that drop or sanitize HTML
(GitHub, VS Code's restricted mode, nbconvert to Markdown or PDF) still show them, and
each is shown once. A notebook saved afterwards needs no kernel and no widget state to
show how the runs ended: no "Running" forever, no "model not found". A record that is
final already when shown gets the static outputs at once.

IPython shows these objects through ``show`` because ``register`` hands their types to
its display formatter (the displayhook would otherwise make an ``execute_result``, which
cannot be updated). Their ``_repr_mimebundle_`` serves everything else: plain text
outside a kernel, static outputs for a final record, widget and snapshots otherwise.
"""

from __future__ import annotations

import logging
import sys
import threading
import weakref
from typing import Any

from kernelflow import _logging
from kernelflow._runs import FlowRun
from kernelflow.notebook import _charts, _snapshot
from kernelflow.notebook._tally import count
from kernelflow.notebook._ticker import ticker

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


def register() -> None:
    """Show futures, future lists and flow runs through ``show`` in this kernel."""
    from IPython import get_ipython

    from kernelflow.futures import TaskFuture, TaskFutureList

    shell = get_ipython()
    formatter = shell.display_formatter.ipython_display_formatter
    formatter.for_type(TaskFuture, lambda future: show("future", future))
    formatter.for_type(TaskFutureList, lambda futures: show("list", futures))
    formatter.for_type(FlowRun, lambda flow_run: show("flow", flow_run))
    from kernelflow.notebook._runs_table import register as register_history

    register_history(shell)  # runs(), compare(), timeline(), logs(): tables and charts
    if finish_ended_displays not in shell.events.callbacks["post_execute"]:
        shell.events.register("post_execute", finish_ended_displays)


# Views whose static outputs have not replaced them yet: added by ``show``, removed once
# ``finish`` has sent them (on the display loop) or ``finish_ended_displays`` gave up.
_live: weakref.WeakSet[Any] = weakref.WeakSet()
_live_lock = threading.Lock()  # the display loop removes while the kernel's thread reads

# How long the end of a cell waits for the static outputs of a run that ended in it. The
# final pictures, as SVG and PNG, take ~50 ms on a quiet machine and seconds on a loaded
# one; the display loop sends them in order, so only a stuck loop makes a cell wait this.
SWAP_WAIT = 15.0  # s


def _live_views() -> list[Any]:
    with _live_lock:
        return list(_live)


def _swapped(view: Any) -> None:
    with _live_lock:
        _live.discard(view)


def finish_ended_displays() -> None:
    """Before a cell ends, replace the displays of runs that ended by their static outputs.

    The display loop would do it on its next tick, but a tick between two cells sends an
    update that belongs to the cell that ended: nbclient (``make demo``, nbconvert
    --execute) drops those, and the saved notebook would keep a live widget. A swap the
    loop has begun is waited for too: its hook runs before the pictures are turned into
    outputs, which can outlast a cell ending just after its flow (``time.sleep(0.3)``).
    """
    for view in _live_views():
        if not view.ended():
            continue
        for _ in range(2):  # a flow: its final frame, then its pictures
            # The loop runs one callback at a time: this one runs after any swap under way.
            ticker().refresh_now(view, timeout=SWAP_WAIT)
            if view not in _live_views():
                break
        _swapped(view)  # or never will be: the loop has dropped a view that failed


# --- what each kind of record shows --------------------------------------------------


def _runs(kind: str, record: Any) -> Any:
    if kind == "future":
        return record.task_run
    if kind == "list":
        return [future.task_run for future in record]
    return record


def is_final(kind: str, record: Any) -> bool:
    runs = _runs(kind, record)
    if kind == "list":
        return all(run.state.is_final() for run in runs)
    return runs.state.is_final()


def static_bundle(
    kind: str, record: Any, view: Any = None, pictures: bool = True
) -> dict[str, Any]:
    """``text/plain`` and script-free ``text/html`` of the record as it is now (a view's
    counts and pictures reused where it has them; ``pictures``: a flow run's graph and
    timeline in its HTML, else left for outputs of their own)."""
    runs = _runs(kind, record)
    if kind == "future":
        plain, html = _snapshot.future_plain(runs), _snapshot.future_html(runs)
        return {"text/plain": plain, "text/html": html}
    counts = view.tally if view else count(_charts.all_task_runs(runs) if kind == "flow" else runs)
    if kind == "list":
        plain, html = _snapshot.list_plain(counts), _snapshot.list_html(counts)
        return {"text/plain": plain, "text/html": html}
    drawn = (view.pictures if view else None) if pictures else _charts.Pictures()
    log = view.log if view else None
    return {
        "text/plain": _snapshot.flow_plain(runs, counts, log),
        "text/html": _charts.flow_html(runs, drawn, counts, log),
    }


PICTURE_OUTPUTS = 2  # a flow run's graph and timeline


def static_outputs(kind: str, record: Any, view: Any = None) -> list[tuple[dict, dict]]:
    """``(data, metadata)`` of each static output ``show`` ends with: the record's text
    and HTML, then, for a flow run, each of its pictures (``EMPTY`` for one not drawn)."""
    outputs = [(static_bundle(kind, record, view, pictures=False), {})]
    if kind == "flow":
        drawn = view.pictures if view else _charts.draw(record)
        pictures = drawn.outputs(record.name)
        outputs += pictures + [(EMPTY, {})] * (PICTURE_OUTPUTS - len(pictures))
    return outputs


EMPTY: dict[str, Any] = {"text/plain": ""}  # an output that shows nothing, kept for later


def _make_view(kind: str, record: Any, on_final: Any = None) -> Any:
    from kernelflow.notebook import _widgets

    if kind == "future":
        return _widgets.FutureView(record, on_final)
    if kind == "list":
        return _widgets.FutureListView(record, on_final)
    return _widgets.FlowRunView(record, on_final)


# --- showing ---------------------------------------------------------------------------


def show(kind: str, record: Any) -> None:
    """Display ``record`` in the current cell: live until final, then static."""
    from IPython.display import display

    if is_final(kind, record):
        for data, metadata in static_outputs(kind, record):
            if data is not EMPTY:
                display(data, raw=True, metadata=metadata)
        return
    handles: list[Any] = []

    def finish(view: Any) -> None:
        # On the display loop, once the view has drawn its final frame (or below, when
        # it ended while the view was being made and nothing was displayed yet).
        if handles:
            outputs = static_outputs(kind, record, view)
            for handle, (data, metadata) in zip(handles, outputs, strict=True):
                handle.update(data, raw=True, metadata=metadata)
        _swapped(view)

    try:
        view = _make_view(kind, record, finish)
    except ImportError as error:  # no ipywidgets: the snapshot still tells the truth
        _logger.debug("No live display: %s", error)
        display(static_bundle(kind, record), raw=True)
        return
    bundle = static_bundle(kind, record, view)
    bundle[WIDGET_MIME] = view.widget._repr_mimebundle_()[WIDGET_MIME]
    handles.append(display(bundle, raw=True, display_id=True))
    if kind == "flow":  # where its pictures go once it ends (the widget shows them live)
        handles += [display(EMPTY, raw=True, display_id=True) for _ in range(PICTURE_OUTPUTS)]
    if view._on_final is None:  # it ended while the view was being made
        finish(view)
        return
    with _live_lock:
        _live.add(view)
    _watch(view, record if kind == "flow" else None)


def _watch(view: Any, flow_run: FlowRun | None) -> None:
    if flow_run is not None and not flow_run.state.is_final():
        _flow_views.setdefault(flow_run, []).append(view)
    ticker().watch(view)


def bundle(kind: str, record: Any) -> dict[str, Any]:
    """The ``_repr_mimebundle_`` of a record, for frontends that ask for one directly."""
    if not in_kernel():
        return {"text/plain": static_bundle(kind, record)["text/plain"]}
    if is_final(kind, record):
        return static_bundle(kind, record)
    try:
        view = _make_view(kind, record)
    except ImportError as error:
        _logger.debug("No live display: %s", error)
        return static_bundle(kind, record)
    result = static_bundle(kind, record, view)
    result[WIDGET_MIME] = view.widget._repr_mimebundle_()[WIDGET_MIME]
    _watch(view, record if kind == "flow" else None)
    return result


def show_flow_run(flow_run: Any) -> None:
    """Display a live view of ``flow_run`` in the current cell (nothing outside a kernel)."""
    if in_kernel():  # turned on by hand outside a kernel: nowhere to show it
        show("flow", flow_run)


def on_state_change(run: Any, old: Any, new: Any) -> None:
    """The flow-run observer that shows a top-level flow run as it starts.

    The changes it acts on, a flow run's first change (to Running, or to a Pending that
    says what it waits for, such as a cluster starting) and its final state, happen in
    the thread that called the flow: the cell's, so the display lands in that cell, and
    so does its last frame.
    """
    if old is run.history[0] and run.parent is None:
        show_flow_run(run)
    elif new.is_final():
        for view in _flow_views.pop(run, ()):
            ticker().refresh_now(view)


def keep_logs(enabled: bool) -> None:
    """Flow runs' log lines go to their displays (True) or to stderr (False)."""
    _logging.keep_run_logs(enabled)

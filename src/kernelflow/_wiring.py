"""What serves each hook of ``kernelflow._layer_hooks``: the upper layers' side.

``import kernelflow`` calls ``install()``. Each function here imports what it needs when
first called, so ``import kernelflow`` loads no graph, history or display code.
"""

from __future__ import annotations

from typing import Any

from kernelflow import _layer_hooks


def _retry(flow_run: Any) -> Any:
    from kernelflow._engine.resume import retry

    return retry(flow_run)


def _retry_past(past_flow_run: Any) -> Any:
    from kernelflow._engine.resume import retry_past

    return retry_past(past_flow_run)


def _run_graph(flow_run: Any, expand_maps: bool) -> Any:
    from kernelflow.viz import run_graph

    return run_graph(flow_run, expand_maps=expand_maps)


def _run_logs(top_flow_run: Any) -> Any:
    from kernelflow._history import reading
    from kernelflow._history.text import LogLines

    return LogLines(reading.logs(top_flow_run.id.hex))


def _run_timeline(flow_run: Any) -> Any:
    from kernelflow._history.text import Timeline

    return Timeline(flow_run)


def _visualize(flow: Any, args: tuple, kwargs: dict[str, Any], expand_maps: bool) -> Any:
    from kernelflow.viz import visualize_flow
    from kernelflow.viz._script import in_notebook, save_for_script

    graph = visualize_flow(flow, args, kwargs, expand_maps=expand_maps)
    if not in_notebook():
        save_for_script(graph, flow.name)
    return graph


def _mermaid(flow: Any, args: tuple, kwargs: dict[str, Any]) -> str:
    from kernelflow.viz import mermaid_graph

    return mermaid_graph(flow, args, kwargs)


def _rich_display(kind: str, record: Any) -> dict[str, Any]:
    # Records never import presentation: the display code loads only when a frontend
    # asks to show a run or a future (``kernelflow.last_run()`` in a cell).
    from kernelflow.notebook import _display

    return _display.bundle(kind, record)


def _state_details(state: Any) -> Any:
    from kernelflow._state_owners import details_of

    return details_of(state)


def install() -> None:
    """Serve every hook of ``kernelflow._layer_hooks``."""
    _layer_hooks.retry_flow_run.install(_retry)
    _layer_hooks.retry_past_run.install(_retry_past)
    _layer_hooks.run_graph.install(_run_graph)
    _layer_hooks.run_logs.install(_run_logs)
    _layer_hooks.run_timeline.install(_run_timeline)
    _layer_hooks.visualize_flow.install(_visualize)
    _layer_hooks.mermaid_graph.install(_mermaid)
    _layer_hooks.rich_display.install(_rich_display)
    _layer_hooks.state_details.install(_state_details)

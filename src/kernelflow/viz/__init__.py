"""Presentation: flow graphs drawn with Graphviz.

    visualize_flow(flow, args, kwargs)   Flow.visualize(): trace the body, draw the plan
    draw_run(flow_run)                   FlowRun.graph(): what ran, coloured by state
    mermaid_graph(flow, args, kwargs)    Flow.generate_mermaid_graph(): the plan as Mermaid

The engine never imports this package; ``Flow.visualize`` and ``FlowRun.graph`` import
it when called, so ``import kernelflow`` loads neither it nor graphviz.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelflow._runs import FlowRun
    from kernelflow.flows import Flow
    from kernelflow.viz._render import FlowGraph

__all__ = ["mermaid_graph", "visualize_flow", "run_graph"]


def visualize_flow(
    flow: Flow, args: tuple, kwargs: dict[str, Any], expand_maps: bool = False
) -> FlowGraph:
    """Trace ``flow``'s body with ``args``/``kwargs`` (no task runs) and draw the plan."""
    from kernelflow.viz._draw_plan import draw_plan
    from kernelflow.viz._tracker import trace

    plan = trace(flow, args, kwargs)
    return draw_plan(plan, expand_maps=expand_maps)


def mermaid_graph(flow: Flow, args: tuple, kwargs: dict[str, Any]) -> str:
    """Trace ``flow``'s body as ``visualize_flow`` does; the plan as Mermaid text."""
    from kernelflow.viz._mermaid import mermaid_of
    from kernelflow.viz._tracker import trace

    return mermaid_of(trace(flow, args, kwargs))


def run_graph(
    flow_run: FlowRun, expand_maps: bool = False, title: bool = True, seen: Any = None
) -> FlowGraph:
    """The graph of what ``flow_run`` did, nodes coloured by state (``title``: its name,
    state and duration drawn above it; ``seen``: the runs and states to draw, by default
    as they are now, see ``_seen.Seen``)."""
    from kernelflow.viz._draw_run import draw_run
    from kernelflow.viz._seen import NOW

    return draw_run(flow_run, expand_maps=expand_maps, title=title, seen=seen or NOW)

"""The seams where a lower layer asks an upper one for work, installed from above.

A few methods of records and definitions do work that belongs to a layer above them:
``FlowRun.retry()`` runs the flow again (the engine), ``FlowRun.graph()`` and
``Flow.visualize()`` draw (``viz``), ``FlowRun.logs()`` and ``timeline()`` read the run
history, ``State.state_details`` searches the session's runs, and a future or run shown
by a frontend asks the notebook layer for its rich display. Each calls a ``Hook`` here;
``kernelflow._wiring`` installs what serves it when ``import kernelflow`` runs. So the
public spelling stays where Prefect has it, and nothing below imports what is above
(the layers are in ``pyproject.toml``'s import-linter contract).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Hook:
    """One seam: called below, served by the function an upper layer installs."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._serve: Callable[..., Any] | None = None

    def install(self, serve: Callable[..., Any]) -> None:
        self._serve = serve

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._serve is None:
            raise RuntimeError(
                f"{self.name} has nothing installed to serve it: kernelflow._wiring.install() "
                "does that when `import kernelflow` runs; import kernelflow first."
            )
        return self._serve(*args, **kwargs)


retry_flow_run = Hook("FlowRun.retry()")  # (flow_run) -> what calling the flow returns
retry_past_run = Hook("PastFlowRun.retry()")  # (past_flow_run) -> the same
run_graph = Hook("FlowRun.graph()")  # (flow_run, expand_maps) -> a graph
run_logs = Hook("FlowRun.logs()")  # (top-level flow_run) -> its tree's log lines
run_timeline = Hook("FlowRun.timeline()")  # (flow_run) -> a chart
visualize_flow = Hook("Flow.visualize()")  # (flow, args, kwargs, expand_maps) -> a graph
mermaid_graph = Hook("Flow.generate_mermaid_graph()")  # (flow, args, kwargs) -> text
rich_display = Hook("_repr_mimebundle_()")  # (kind, record) -> a mime bundle
state_details = Hook("State.state_details")  # (state) -> StateDetails

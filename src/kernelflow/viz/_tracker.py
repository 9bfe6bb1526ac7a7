"""Tracing a flow body for ``Flow.visualize()``: task calls record nodes, nothing runs.

``visualize_flow`` sets a ``Tracker`` in the ``visualize_tracker`` context variable and
calls the flow function. ``Task.__call__/submit/map`` and ``Flow.__call__`` see the
tracker and hand the call to it: it records a node with the upstream lineage found in
the arguments and returns a placeholder (see ``_placeholders``). The flow's own code,
everything that is not a task, really runs.
"""

from __future__ import annotations

import itertools
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from kernelflow._annotations import allow_failure, quote, unmapped
from kernelflow._context import flow_run_context, visualize_tracker
from kernelflow._engine.mapping import iterated_by_map
from kernelflow.exceptions import MappingLengthMismatch, MappingMissingIterable
from kernelflow.states import Completed
from kernelflow.tasks import format_run_name
from kernelflow.viz._model import Inputs, MapItem, Plan, PlanCluster, PlanNode
from kernelflow.viz._placeholders import (
    UNKNOWN,
    Ref,
    Traced,
    VizFuture,
    VizFutureList,
    is_unknown,
    ready,
    refs_in,
    resolve_returned,
    unwrap,
)

if TYPE_CHECKING:
    from kernelflow.flows import Flow
    from kernelflow.tasks import Task

# The subflow cluster the code being traced is in (None: the visualized flow itself). A
# context variable, so concurrent async subflows each see their own.
_cluster: ContextVar[str | None] = ContextVar("kernelflow_viz_cluster", default=None)


class Tracker:
    """Records the task calls, maps and subflow calls of one visualize trace."""

    def __init__(self, flow: Flow) -> None:
        self.plan = Plan(flow.name)
        self._ids = itertools.count()
        self._async: dict[str | None, bool] = {None: flow.isasync}
        self._made: dict[str, list[str]] = {}  # node id -> keys of the assets it materializes
        self._asset_ids: dict[str, str] = {}  # asset key -> its node id

    # --- entry points called by Task and Flow (the seams in tasks.py and flows.py) ------

    def record_task_call(
        self,
        task: Task,
        kind: str,
        args: tuple,
        kwargs: dict,
        wait_for: Any,
        return_state: bool = False,
    ) -> Any:
        """Record ``task`` called as ``kind`` ("call", "submit", "map"); return a stand-in
        (a Completed state holding it, for ``return_state=True``)."""
        waits = refs_in(list(wait_for or ()))
        if kind == "map":
            parameters = task.signature.bind(args, kwargs, defaults=False)
            futures = self._record_map(task, parameters, waits)
            return [future.state for future in futures] if return_state else futures
        parameters = task.signature.bind(args, kwargs)
        node = self.plan.add(
            PlanNode(
                f"t{next(self._ids)}",
                "task",
                task.name,
                _cluster.get(),
                call=kind,
                run_name=run_name(task, parameters),
                inputs=_inputs(parameters, waits),
            )
        )
        self._link_assets(node, task)
        value = Traced(_stand_in(task), frozenset({Ref(node.id)}))
        if kind == "submit":
            future = VizFuture(Ref(node.id), value)
            return future.state if return_state else future
        result = Completed(value) if return_state else value
        if task.isasync and self._async[_cluster.get()]:
            return ready(result)  # an async task called in an async flow gives an awaitable
        return result

    def record_subflow_call(
        self, flow: Flow, args: tuple, kwargs: dict, return_state: bool = False
    ) -> Any:
        """Trace a subflow's body inside a new cluster; return what its caller would get."""
        if flow.isasync:
            return self._trace_subflow_async(flow, args, kwargs, return_state)
        cluster, call_args, call_kwargs, token = self._enter_subflow(flow, args, kwargs)
        try:
            returned = flow.fn(*call_args, **call_kwargs)
        finally:
            _cluster.reset(token)
        return _subflow_result(returned, cluster, return_state)

    async def _trace_subflow_async(
        self, flow: Flow, args: tuple, kwargs: dict, return_state: bool
    ) -> Any:
        cluster, call_args, call_kwargs, token = self._enter_subflow(flow, args, kwargs)
        try:
            returned = await flow.fn(*call_args, **call_kwargs)
        finally:
            _cluster.reset(token)
        return _subflow_result(returned, cluster, return_state)

    def _enter_subflow(self, flow: Flow, args: tuple, kwargs: dict) -> tuple:
        parameters = flow.bind_parameters(args, kwargs)
        cluster = PlanCluster(
            f"cluster_s{next(self._ids)}",
            flow.name,
            _cluster.get(),
            inputs=_inputs(parameters, frozenset()),
        )
        self.plan.clusters[cluster.id] = cluster
        self._async[cluster.id] = flow.isasync
        call_args, call_kwargs = flow.signature.split(parameters)
        return cluster, call_args, call_kwargs, _cluster.set(cluster.id)

    # --- the visualized flow's parameters -----------------------------------------------

    def bind_parameters(self, flow: Flow, args: tuple, kwargs: dict) -> dict[str, Any]:
        """The flow's parameters as placeholders; ones not given are unknown placeholders,
        so a flow can be drawn without making up arguments for it."""
        bound = flow.signature.signature.bind_partial(*args, **kwargs)
        bound.apply_defaults()
        parameters: dict[str, Any] = {}
        for name in flow.signature.signature.parameters:
            given = name in bound.arguments
            value = bound.arguments[name] if given else UNKNOWN
            node = self.plan.add(
                PlanNode(
                    f"p_{name}",
                    "param",
                    name,
                    value=_short_repr(value) if given else None,
                )
            )
            parameters[name] = Traced(value, frozenset({Ref(node.id)}) | refs_in(value))
        return parameters

    # --- mapping ----------------------------------------------------------------------

    def _record_map(self, task: Task, parameters: dict[str, Any], waits: frozenset[Ref]) -> Any:
        """Record one group node for every run of a ``.map()`` call."""
        parameters = task.signature.explode_var_keyword(parameters)
        iterables, static = _split_mapped(parameters)
        count = _map_count(iterables, parameters)
        group = f"m{next(self._ids)}"
        items = []
        for index in range(count or 1):
            call = {
                key: (values[index] if values is not None else parameters[key])
                for key, values in iterables.items()
            }
            call.update(static)
            for key, default in task.signature.defaults.items():
                call.setdefault(key, default)
            name = run_name(task, task.signature.collapse_var_keyword(call)) if count else None
            items.append(MapItem(name, _inputs(call, waits)))
        node = self.plan.add(
            PlanNode(
                group,
                "map",
                task.name,
                _cluster.get(),
                call="map",
                count=count,
                items=items,
                inputs=_merge_inputs(item.inputs for item in items),
                run_name=task.task_run_name if isinstance(task.task_run_name, str) else None,
            )
        )
        self._link_assets(node, task)
        stand_in = _stand_in(task)
        if count is None:
            ref = Ref(node.id)
            return VizFutureList([VizFuture(ref, Traced(stand_in, frozenset({ref})))], group, None)
        futures = [
            VizFuture(Ref(group, i), Traced(stand_in, frozenset({Ref(group, i)})))
            for i in range(count)
        ]
        return VizFutureList(futures, group, count)

    # --- assets ----------------------------------------------------------------------

    def _link_assets(self, node: PlanNode, task: Task) -> None:
        """Edges from the assets ``task`` reads to ``node``, and from it to those it makes.

        As at run time, a materializing task given the result of another one reads what
        that one materializes."""
        if not task.has_assets:
            return
        made = [asset.key for asset in getattr(task, "assets", ())]
        reads = [asset.key for asset in task.asset_deps]
        if made:
            upstream = {ref.node for refs in node.inputs.values() for ref in refs}
            reads += [key for ref in upstream for key in self._made.get(ref, ())]
        read_refs = frozenset(Ref(self._asset_node(key).id) for key in reads)
        if read_refs:
            for inputs in [node.inputs] + [item.inputs for item in node.items]:
                inputs["asset"] = read_refs
        for key in made:
            asset = self._asset_node(key)
            asset.inputs["materialized"] = asset.inputs.get("materialized", frozenset()) | {
                Ref(node.id)
            }
        self._made[node.id] = made

    def _asset_node(self, key: str) -> PlanNode:
        node_id = self._asset_ids.get(key)
        if node_id is None:
            node_id = self._asset_ids[key] = f"asset{len(self._asset_ids)}"
            self.plan.add(PlanNode(node_id, "asset", key))
        return self.plan.nodes[node_id]

    # --- naming, for error messages --------------------------------------------------------

    def describe_node(self, node_id: str) -> str:
        node = self.plan.nodes.get(node_id)
        if node is not None:
            kind = {"param": "parameter", "asset": "asset"}.get(node.kind, "task")
            return f"{kind} {node.name!r}"
        cluster = self.plan.clusters.get(node_id)
        return f"subflow {cluster.name!r}" if cluster else node_id


def _split_mapped(parameters: dict[str, Any]) -> tuple[dict[str, list | None], dict[str, Any]]:
    """Which parameters ``.map()`` iterates over (None: a placeholder of unknown length)
    and which go whole to every run, by the runner's rules."""
    iterables: dict[str, list | None] = {}
    static: dict[str, Any] = {}
    for key, value in parameters.items():
        inner = value.unwrap() if isinstance(value, (allow_failure, quote)) else value
        if isinstance(inner, VizFuture):
            inner = inner.result()  # the runner maps over a future's value
        if isinstance(inner, unmapped):
            static[key] = inner.value
        elif isinstance(inner, VizFutureList) and inner.count is None or is_unknown(inner):
            iterables[key] = None
        elif iterated_by_map(unwrap(inner)):
            iterables[key] = list(inner)
        else:
            static[key] = value
    return iterables, static


def _map_count(iterables: dict[str, list | None], parameters: dict[str, Any]) -> int | None:
    if not iterables:
        raise MappingMissingIterable(
            "No iterable parameters were received. Parameters for map must include at least "
            f"one iterable. Parameters: {parameters}"
        )
    lengths = {key: len(values) for key, values in iterables.items() if values is not None}
    if len(set(lengths.values())) > 1:
        raise MappingLengthMismatch(
            "Received iterable parameters with different lengths. Parameters for map must "
            f"all be the same length. Got lengths: {lengths}"
        )
    return next(iter(lengths.values()), None)


def _inputs(parameters: dict[str, Any], waits: frozenset[Ref]) -> Inputs:
    inputs = {name: refs for name, value in parameters.items() if (refs := refs_in(value))}
    if waits:
        inputs["wait_for"] = waits
    return inputs


def _merge_inputs(all_inputs: Any) -> Inputs:
    merged: dict[str, set[Ref]] = {}
    for inputs in all_inputs:
        for name, refs in inputs.items():
            merged.setdefault(name, set()).update(refs)
    return {name: frozenset(refs) for name, refs in merged.items()}


def _stand_in(task: Task) -> Any:
    return UNKNOWN if task.viz_return_value is None else task.viz_return_value


def _subflow_result(returned: Any, cluster: PlanCluster, return_state: bool) -> Any:
    """What the subflow call gives its caller: its return value, with lineage. A value
    that came from none of its tasks still depends on the subflow as a whole."""
    value = resolve_returned(returned)
    if not refs_in(value):
        value = Traced(value, frozenset({Ref(cluster.id)}))
    return Completed(value) if return_state else value


class _CannotForm:
    """Stands in for an unknown parameter while forming a run name: any use fails."""

    def __format__(self, spec: str) -> str:
        raise LookupError

    __str__ = __repr__ = __format__  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:
        raise LookupError


def run_name(task: Task, parameters: dict[str, Any]) -> str | None:
    """The run's ``task_run_name``, if the task has one and its inputs are known."""
    template = task.task_run_name
    if template is None:
        return None
    values = {k: _CannotForm() if is_unknown(v) else unwrap(v) for k, v in parameters.items()}
    try:
        return format_run_name(template, values)
    except Exception:  # a name that needs runtime context or unknown values: leave it out
        return None


def _short_repr(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def trace(flow: Flow, args: tuple, kwargs: dict) -> Plan:
    """Run ``flow``'s body with a tracker active and return what it recorded."""
    tracker = Tracker(flow)
    call_args, call_kwargs = flow.signature.split(tracker.bind_parameters(flow, args, kwargs))
    if flow.isasync:
        from kernelflow._loops import run_coroutine_sync

        run_coroutine_sync(_traced_async_body(tracker, flow, call_args, call_kwargs))
        return tracker.plan
    token = visualize_tracker.set(tracker)
    # Not inside any flow run while tracing, even if visualize is called from one.
    run_token = flow_run_context.set(None)
    try:
        flow.fn(*call_args, **call_kwargs)
    finally:
        flow_run_context.reset(run_token)
        visualize_tracker.reset(token)
    return tracker.plan


async def _traced_async_body(tracker: Tracker, flow: Flow, args: list, kwargs: dict) -> Any:
    # Set inside the coroutine, so only the asyncio task driving it sees the tracker.
    visualize_tracker.set(tracker)
    flow_run_context.set(None)
    return await flow.fn(*args, **kwargs)

"""Retry a flow run from where it failed: ``FlowRun.retry()``.

A retry calls the same flow with the same parameters, as a new flow run linked to the
original (``retry_of``), and lets each task run reuse what the original's matching run
returned instead of running, when three things hold:

- the task is unchanged: its source digest now is the one recorded when the original
  flow run ended (``TASK_SOURCE``'s notion: the task and the helpers it calls, comment
  and formatting edits aside). A task redefined in a cell runs again;
- its inputs are unchanged: each resolved parameter is the very object, or an equal
  one, that the original run received, and holds what it held when that run ended;
- its result is unchanged: no later step changed it in place (``_digests``: the
  content is digested when the run ends and at the retry; a value too large to digest
  is reused unchecked, and its state message says so);
- everything upstream of it was reused too. A run downstream of a run that ran again
  runs again, even if its inputs happen to be equal: a fixed step can change what the
  steps after it do in ways its return value does not show.

Runs are matched by where they stand: the same task in the same (sub)flow, in the order
the original ran them, so the 47 completed items of a 50-item map are reused and the 3
failed ones run again. Only completed runs are reused (failed, crashed, cancelled and
never-run ones run), and only while the original run's values are still kept (see
``_runs.RUN_VALUES_KEPT``). A reused run ends "Cached", with a message naming the run it
came from.

Reuse is decided where the run is called or submitted (``settle_reused``) whenever it can
be: a reused run has nothing to run, so it goes to no pool, driver or worker and costs
little more than its record. Runs that must wait first (for an upstream run still
going, or a paused flow), and runs with completion hooks (which run where runs run),
are decided by their lifecycle instead, by the same ``RetryPlan``.

A run of an earlier session (``PastFlowRun``, read from the run history) is retried the
same way, with what the history holds in place of values: its flow is found by name,
and only task runs whose results were persisted can be reused, read from the result
store and matched by their inputs' digests (``retry_from_history``).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from kernelflow._engine.task_engine import resolve_inputs, settle
from kernelflow.states import State

if TYPE_CHECKING:
    from kernelflow._context import FlowRunContext
    from kernelflow._engine.inputs import Upstream
    from kernelflow._engine.retry_plan import RetryPlan
    from kernelflow._runs import FlowRun, TaskRun
    from kernelflow.futures import TaskFuture
    from kernelflow.tasks import Task

# The plan of the retry being started in this context; the flow engine moves it onto
# the flow run's context, where every driver's lifecycle can read it.
starting_retry: ContextVar[RetryPlan | None] = ContextVar("kernelflow_retry", default=None)


def retry(original: FlowRun, flow: Any = None, parameters: dict[str, Any] | None = None) -> Any:
    """Run ``original``'s flow again with its parameters, reusing what still holds.

    Returns what calling the flow returns: its value, or for an async flow an awaitable.

    Raises:
        ValueError: ``original`` is a subflow run, or still running.
        RunValuesReleased: the original's values are no longer kept.
    """
    from kernelflow._engine.retry_plan import RetryPlan  # here: only a retry needs it

    plan = RetryPlan(original)
    return _run_plan(
        plan, flow or original.flow, original.parameters if parameters is None else parameters
    )


def retry_past(original: Any) -> Any:
    """Retry a flow run read from the run history (``PastFlowRun``), in this session.

    Its flow is found by name among the flows defined now (once the cells that define
    it ran again). Task runs whose results were persisted (a cache policy,
    ``persist_result=True``) are reused from the result store when their task and inputs
    are unchanged; the others run again, and a log line says which and why.

    Raises:
        LookupError: no flow of that name is defined in this session.
        ValueError: its parameters could not be kept, or it is a subflow run.
    """
    from kernelflow._engine.retry_from_history import defined_flow
    from kernelflow._engine.retry_plan import RetryPlan
    from kernelflow._logging import run_logger

    if original.row["parent_id"] is not None:
        raise ValueError(
            f"Flow run {original.name!r} is a subflow run: retry the flow run it belongs "
            "to, and its subflows are retried with it."
        )
    flow = defined_flow(original.flow_name)
    parameters = original.values
    if parameters is None:
        raise ValueError(
            f"Flow run {original.name!r} cannot be retried from the run history: its "
            f"parameters ({original.parameter_previews}) could not be stored (they do not "
            f"pickle, or are over 1 MB). Call {original.flow_name}(...) with them instead."
        )
    plan = RetryPlan(original)
    run_logger().info("%s", plan.report())
    return _run_plan(plan, flow, parameters)


def _run_plan(plan: RetryPlan, flow: Any, parameters: dict[str, Any]) -> Any:
    args, kwargs = flow.signature.split(parameters)
    if flow.isasync:

        async def retried() -> Any:
            token = starting_retry.set(plan)
            try:
                return await flow(*args, **kwargs)
            finally:
                starting_retry.reset(token)

        return retried()
    token = starting_retry.set(plan)
    try:
        return flow(*args, **kwargs)
    finally:
        starting_retry.reset(token)


def settle_reused(
    task: Task,
    run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    upstream: Upstream,
    flow_ctx: FlowRunContext,
    future: TaskFuture | None = None,
) -> State | None:
    """End a just-recorded run Cached now, in this thread, if its retry reuses it.

    Returns:
        Its final state; None if it is not reused or cannot be decided yet: then it
        runs its lifecycle as any run does (which decides reuse after its waits).
    """
    plan: RetryPlan | None = flow_ctx.retry_plan
    if plan is None or task.on_completion_hooks or not flow_ctx.gate.open:
        return None
    if upstream.futures and not all(f.done() for f in upstream.futures):
        return None
    if upstream.needs_resolving or wait_for:
        parameters = resolve_inputs(task, run, parameters, wait_for)
        if isinstance(parameters, State):  # a failed upstream: not reused, its lifecycle
            return None  # fails it as usual
    reused = plan.reused_state(task, run, parameters)
    if reused is None:
        return None
    try:
        settle(task, run, reused)  # no hooks apply: a run with completion hooks is not here
    finally:
        if future is not None:
            future._resolve()
    return run.state

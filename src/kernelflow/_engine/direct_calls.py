"""Direct task calls (``my_task(...)``): the run happens in the caller's thread or loop."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from kernelflow._context import FlowRunContext, flow_run_context
from kernelflow._engine.drivers import drive_async, drive_sync
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.inputs import find_upstream
from kernelflow._engine.plans import plain_call, plain_task, run_plain
from kernelflow._engine.resume import settle_reused
from kernelflow._engine.task_engine import create_task_run, task_lifecycle
from kernelflow._runs import result_of
from kernelflow.states import StateType

if TYPE_CHECKING:
    from kernelflow.tasks import Task


_COMPLETED = StateType.COMPLETED


def call_task(task: Task, parameters: dict[str, Any], wait_for: Any, return_state: bool) -> Any:
    """Run ``task`` now. An async task gives an awaitable where the caller is async code
    (outside any flow, or in an async flow); in a sync flow it runs to completion."""
    __tracebackhide__ = True
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None and flow_ctx.deadline is not None:
        check_deadline(flow_ctx)
    upstream = find_upstream(parameters, flow_ctx.flow_run if flow_ctx else None, wait_for)
    plain = task._plain
    plain = (plain or plain is None and plain_task(task)) and plain_call(
        task, upstream, wait_for, flow_ctx
    )
    run, _ = create_task_run(task, parameters, wait_for, flow_ctx, upstream=upstream, started=plain)
    if plain:  # the common case (plans.py): made Running, its body called here and now
        state = run_plain(task, run, parameters, flow_ctx)
        if return_state or state._returned:
            return state
        # result_of's answer, without its checks for a Completed: a plain run keeps its
        # value in its state (no result store, no released value yet)
        return state.data if state.type is _COMPLETED else result_of(state)
    if task.isasync and (flow_ctx is None or flow_ctx.is_async):
        return _call_async(task, run, parameters, wait_for, upstream, flow_ctx, return_state)
    state = looked = None
    if flow_ctx is not None and flow_ctx.retry_plan is not None:  # a retry may reuse it
        state = settle_reused(task, run, parameters, wait_for, upstream, flow_ctx)
    elif task.caches:  # a hit is settled without the lifecycle (cache_hits.py)
        state, looked = _cache_hits().take_hit(task, run, parameters, wait_for, upstream, flow_ctx)
    if state is None:
        lifecycle = task_lifecycle(task, run, parameters, wait_for, upstream, flow_ctx, looked)
        state = drive_sync(RunHandle(run, lifecycle))
    return state if return_state or state._returned else result_of(state)


async def _call_async(
    task: Task,
    run: Any,
    parameters: dict,
    wait_for: Any,
    upstream: Any,
    flow_ctx: FlowRunContext | None,
    return_state: bool,
) -> Any:
    __tracebackhide__ = True
    lifecycle = task_lifecycle(task, run, parameters, wait_for, upstream, flow_ctx)
    state = await drive_async(RunHandle(run, lifecycle))
    return state if return_state or state._returned else result_of(state)


@functools.cache
def _cache_hits() -> Any:
    # Loaded with the result store on first use, not at import (as ``task_engine._caching``).
    from kernelflow._engine import cache_hits

    return cache_hits


def check_deadline(ctx: FlowRunContext) -> None:
    """A checkpoint of the flow run's scope (a sync flow body blocked in a long C call
    cannot be stopped from outside, so each task call checks)."""
    if ctx.deadline is not None:
        ctx.deadline.check()

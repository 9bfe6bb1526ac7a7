"""A direct call of a cached task: its first look at the store, and a hit settled there.

The lifecycle (``task_engine.task_lifecycle``) looks a cached run up before its first
attempt; on a hit it only settles the run and calls its hooks. A direct call whose
lifecycle would take no step before that look (no futures to wait for or resolve, no
``wait_for``, its flow run not paused and not a retry) takes the look here, in the
caller's thread: ``caching.first_look``, the lifecycle's own. A hit is then settled as
the lifecycle settles it (``finish``; ``settle`` alone when the task has no hooks to
call), without the generator, the run handle and the driver. A miss goes on into the
lifecycle with what the look found, so nothing is looked up twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kernelflow._engine.caching import NOT_CACHED, CacheLookup, first_look
from kernelflow._engine.drivers import drive_sync
from kernelflow._engine.handle import RunHandle, crash_if_unfinished
from kernelflow._engine.task_engine import finish, settle

if TYPE_CHECKING:
    from kernelflow._context import FlowRunContext
    from kernelflow._engine.inputs import Upstream
    from kernelflow._runs import TaskRun
    from kernelflow.states import State
    from kernelflow.tasks import Task


def take_hit(
    task: Task,
    run: TaskRun,
    parameters: dict,
    wait_for: Any,
    upstream: Upstream,
    flow_ctx: FlowRunContext | None,
) -> tuple[State | None, CacheLookup | None]:
    """(the final state of a hit, None) or (None, what the lifecycle goes on with: the
    look's miss, ``NOT_CACHED``, or None if the look must wait for the lifecycle's
    earlier steps). The task caches (``task.caches``)."""
    __tracebackhide__ = True
    if wait_for or upstream.futures or upstream.needs_resolving:
        return None, None  # its inputs are not final yet: the lifecycle waits first
    if flow_ctx is not None and (flow_ctx.retry_plan is not None or not flow_ctx.gate.open):
        return None, None  # a retry may reuse the original run; a paused flow holds it
    try:
        lookup = first_look(task, run, parameters, flow_ctx)
        if lookup is None:
            return None, NOT_CACHED
        state = lookup.state
        if state is None:
            return None, lookup
        if task.on_completion_hooks or task.on_failure_hooks:  # calls: the driver's
            return drive_sync(RunHandle(run, finish(task, run, state))), None
        return (state if settle(task, run, state) is not None else run.state), None
    except BaseException as error:  # an interrupt, or kernelflow itself failed
        crash_if_unfinished(run, error)
        raise

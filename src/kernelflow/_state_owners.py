"""``State.state_details``: which task run and flow run a state belongs to.

A State does not point at its run (states are made before they are given to a run, and
the engine's hot path stays as it is). So the first read of ``state_details`` looks for
the run that holds the state (as its current state or in its history): first around the
code that asks (its flow run's tree), then in the session's run history, newest first.
The answer is kept on the state. A state that no run holds (made by user code and never
returned from a run, or of an old run whose values were released) has no ids.

States sit below runs, so ``State.state_details`` reaches this module through
``kernelflow._layer_hooks.state_details``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kernelflow._state_details import NO_DETAILS, StateDetails

if TYPE_CHECKING:
    from kernelflow.states import State


def details_of(state: State) -> StateDetails:
    """The run ids of ``state``, found as the module docstring says."""
    from kernelflow._runs import TaskRun

    run = _holder(state)
    if run is None:
        return NO_DETAILS
    if isinstance(run, TaskRun):
        flow_run = run.flow_run
        return StateDetails(flow_run_id=flow_run.id if flow_run else None, task_run_id=run.id)
    return StateDetails(flow_run_id=run.id)


def _holder(state: State) -> Any:
    for root in _roots():
        for run in _walk(root):
            if run.holds(state):
                return run
    return None


def _roots() -> Iterator[Any]:
    from kernelflow._context import flow_run_context, task_run_context
    from kernelflow._run_history import runs

    task_ctx = task_run_context.get()
    if task_ctx is not None:
        yield task_ctx.task_run
        if getattr(task_ctx.task_run, "flow_run", None) is not None:
            yield _top(task_ctx.task_run.flow_run)
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None:
        yield _top(flow_ctx.flow_run)
    yield from reversed(runs())


def _top(flow_run: Any) -> Any:
    while getattr(flow_run, "parent", None) is not None:
        flow_run = flow_run.parent
    return flow_run


def _walk(root: Any) -> Iterator[Any]:
    # A loop, not recursion: subflows nest as deep as plain calls do.
    pending = [root]
    while pending:
        run = pending.pop()
        if not hasattr(run, "history"):  # a worker process's light RunInfo
            continue
        yield run
        pending.extend(getattr(run, "task_runs", ()))
        pending.extend(getattr(run, "subflow_runs", ()))

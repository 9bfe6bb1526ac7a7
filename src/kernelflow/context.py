"""Run contexts, under Prefect's module path (``prefect.context``).

``tags(...)`` adds tags to the task runs started in its block; ``get_run_context()``
gives the context of the current task run (``.task``, ``.task_run``) or, outside a
task, of the current flow run (``.flow``, ``.flow_run``, ``.task_runner``), and raises
``MissingContextError`` outside both. The context classes are here under Prefect's
names; kernelflow has no settings or client contexts.
"""

from __future__ import annotations

from kernelflow._context import FlowRunContext, TaskRunContext, flow_run_context, tags
from kernelflow._context import task_run_context as _task_run_context
from kernelflow.exceptions import MissingContextError

__all__ = ["FlowRunContext", "TaskRunContext", "get_run_context", "tags"]


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The current task run's context, else the current flow run's.

    Raises:
        MissingContextError: called outside any task or flow run.
    """
    task_ctx = _task_run_context.get()
    if task_ctx is not None:
        return task_ctx
    flow_ctx = flow_run_context.get()
    if flow_ctx is not None:
        return flow_ctx
    raise MissingContextError(
        "No run context: get_run_context() works only inside a flow or task run."
    )

"""What a retry compares its tasks against: each task's source digest, taken when a flow
run ends (``TASK_SOURCE``'s notion: the task and the helpers it calls, comment and
formatting edits aside). A task edited or redefined since runs again at a retry
(``retry_plan.RetryPlan``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kernelflow._results.keys import combine
from kernelflow._results.source import source_parts

if TYPE_CHECKING:
    from kernelflow._runs import FlowRun
    from kernelflow.tasks import Task


def remember_sources(flow_run: FlowRun) -> None:
    """Record the source digest of each task the flow run ran (called when it ends): a
    later edit of a task or helper must not be mistaken for the code that produced the
    original values."""
    digests: dict[str, str] = {}
    seen: set[int] = set()
    for run in flow_run.task_runs:
        task = run.task
        if id(task) not in seen:
            seen.add(id(task))
            digests[task.name] = source_digest(task)
    flow_run.task_sources = digests


def source_digest(task: Task) -> str:
    try:
        return combine("source", source_parts(task.fn))
    except Exception:  # no source to read (a builtin, a C function): never reusable
        import uuid

        return f"unknown-{uuid.uuid4()}"

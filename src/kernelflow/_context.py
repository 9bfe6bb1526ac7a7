"""The context variables that say which flow run and task run the current code is in.

Context variables (not thread-locals) so that runners carry them into worker threads
with ``contextvars.copy_context()``, and so that asyncio tasks each see their own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelflow._runs import FlowRun, TaskRun
    from kernelflow.futures import TaskFuture
    from kernelflow.task_runners import TaskRunner


def _open_gate() -> threading.Event:
    gate = threading.Event()
    gate.set()
    return gate


@dataclass(slots=True)
class FlowRunContext:
    """What code running inside a flow run needs: the run record, its runner, its futures."""

    flow: Any
    flow_run: FlowRun
    task_runner: TaskRunner
    log_prints: bool = False
    is_async: bool = False  # an async flow: async tasks called in it give awaitables
    loop: Any = None  # an async flow's event loop, where its submitted async tasks run
    deadline: float | None = None  # time.monotonic() past which the flow has timed out
    futures: list[TaskFuture] = field(default_factory=list)
    # Set while the flow run may start task runs; cleared while it is paused.
    gate: threading.Event = field(default_factory=_open_gate)
    retry_plan: Any = None  # a RetryPlan when the run retries an earlier one (FlowRun.retry)


@dataclass(slots=True)
class TaskRunContext:
    """What code running inside a task run can see about it."""

    task: Any
    task_run: TaskRun


flow_run_context: ContextVar[FlowRunContext | None] = ContextVar(
    "kernelflow_flow_run", default=None
)
task_run_context: ContextVar[TaskRunContext | None] = ContextVar(
    "kernelflow_task_run", default=None
)
current_tags: ContextVar[frozenset[str]] = ContextVar("kernelflow_tags", default=frozenset())
# Set while Flow.visualize() traces a flow body: task calls record nodes instead of running.
visualize_tracker: ContextVar[Any] = ContextVar("kernelflow_visualize_tracker", default=None)


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every task run started inside the ``with`` block (nesting adds up)."""
    combined = current_tags.get() | frozenset(names)
    token = current_tags.set(combined)
    try:
        yield combined
    finally:
        current_tags.reset(token)

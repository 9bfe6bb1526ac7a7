"""The context variables that say which flow run and task run the current code is in.

Context variables (not thread-locals) so that runners carry them into worker threads
with ``contextvars.copy_context()``, and so that asyncio tasks each see their own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kernelflow._runs import FlowRun, TaskRun
    from kernelflow._scopes.scope import Scope
    from kernelflow.futures import TaskFuture
    from kernelflow.task_runners import TaskRunner


class Gate(threading.Event):
    """Open (set) while a flow run may start task runs; closed while it is paused.

    A ``threading.Event`` that also calls back when it opens, so the callback driver can
    hold a run at a closed gate without blocking a thread on it.
    """

    def __init__(self) -> None:
        super().__init__()
        super().set()
        # Whether it is set, as a plain attribute: every task run looks, and is_set() is
        # a Python call.
        self.open = True
        self._callbacks: list[Callable[[], Any]] = []
        self._callbacks_lock = threading.Lock()

    def set(self) -> None:
        with self._callbacks_lock:
            super().set()
            self.open = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def clear(self) -> None:
        with self._callbacks_lock:
            self.open = False
            super().clear()

    def when_open(self, callback: Callable[[], Any]) -> None:
        """Call ``callback()`` once the gate is open: now if it is, else in ``set()``."""
        with self._callbacks_lock:
            if not self.is_set():
                self._callbacks.append(callback)
                return
        callback()


# The two contexts are plain classes, not dataclasses: a dataclass is made at import,
# which every new process pays for at its first ``import kernelflow``.


class FlowRunContext:
    """What code running inside a flow run needs: the run record, its runner, its futures."""

    __slots__ = (
        "flow",
        "flow_run",
        "task_runner",
        "log_prints",
        "is_async",
        "loop",
        "deadline",
        "scope",
        "futures",
        "gate",
        "retry_plan",
        "handle",
    )

    def __init__(
        self,
        flow: Any,
        flow_run: FlowRun,
        task_runner: TaskRunner,
        log_prints: bool = False,
        is_async: bool = False,
        loop: Any = None,
        deadline: Scope | None = None,
        scope: Scope | None = None,
        futures: list[TaskFuture] | None = None,
        gate: Gate | None = None,
        retry_plan: Any = None,
        handle: Any = None,
    ) -> None:
        self.flow = flow
        self.flow_run = flow_run
        self.task_runner = task_runner
        self.log_prints = log_prints
        self.is_async = is_async  # an async flow: async tasks called in it give awaitables
        self.loop = loop  # an async flow's event loop, where its submitted async tasks run
        self.deadline = deadline  # past it, the flow run has timed out (None: no limit)
        # The flow run's scope (its attempt's, while one runs): cancelling it cancels the
        # flow run's task runs, and the scopes of its subflows.
        self.scope = scope
        self.futures: list[TaskFuture] = [] if futures is None else futures
        # Set while the flow run may start task runs; cleared while it is paused.
        self.gate = Gate() if gate is None else gate
        self.retry_plan = retry_plan  # a RetryPlan when the run retries an earlier one
        # The flow run's handle (flow_engine._FlowHandle): its body's pause reports to it.
        self.handle = handle

    def __repr__(self) -> str:
        return f"FlowRunContext(flow_run={self.flow_run!r})"

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The current flow run's context, or None outside a flow run (Prefect's spelling)."""
        return flow_run_context.get()


class TaskRunContext:
    """What code running inside a task run can see about it."""

    __slots__ = ("task", "task_run")

    def __init__(self, task: Any, task_run: TaskRun) -> None:
        self.task = task
        self.task_run = task_run

    def __repr__(self) -> str:
        return f"TaskRunContext(task_run={self.task_run!r})"

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The current task run's context, or None outside a task run (Prefect's spelling)."""
        return task_run_context.get()


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

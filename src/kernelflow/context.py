"""Run contexts, under Prefect's module path (``prefect.context``).

``tags(...)`` adds tags to the task runs started in its block; ``get_run_context()``
gives the context of the current task run (``.task``, ``.task_run``) or, outside a
task, of the current flow run (``.flow``, ``.flow_run``, ``.task_runner``), and raises
``MissingContextError`` outside both. The context classes are here under Prefect's
names (``FlowRunContext.get()``, ``TaskRunContext.get()``, ``TagsContext.get()``);
kernelflow has no settings or client contexts. ``with_context(fn)`` carries the current
run into a function run by ``multiprocessing``, so ``get_run_logger()`` works there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kernelflow._context import (
    FlowRunContext,
    TaskRunContext,
    current_tags,
    flow_run_context,
    tags,
)
from kernelflow._context import task_run_context as _task_run_context
from kernelflow.exceptions import MissingContextError

__all__ = [
    "FlowRunContext",
    "TagsContext",
    "TaskRunContext",
    "get_run_context",
    "tags",
    "with_context",
]


@dataclass
class TagsContext:
    """The tags of the enclosing ``tags(...)`` blocks, as Prefect's ``TagsContext``."""

    current_tags: set[str] = field(default_factory=set)

    @classmethod
    def get(cls) -> TagsContext:
        """The tags in force here (an empty set outside any ``tags`` block)."""
        return cls(set(current_tags.get()))


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


class _ContextWrappedCallable:
    """``fn`` with a copy of the run it was wrapped in, for another process.

    Plain data (names, ids, tags), so ``pickle`` (what ``multiprocessing`` uses) can
    send it; ``fn`` itself must be picklable, as for any ``multiprocessing.Pool``.
    """

    def __init__(self, fn: Callable[..., Any], run: tuple | None, tags: frozenset[str]) -> None:
        self.fn = fn
        self._run = run
        self._tags = tags

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import contextvars

        return contextvars.copy_context().run(self._call, args, kwargs)

    def _call(self, args: tuple, kwargs: dict) -> Any:
        from kernelflow._runners.wire import RunInfo

        current_tags.set(self._tags)
        if self._run is not None:
            kind, run_id, name, flow = self._run
            flow_run = RunInfo(flow[0], flow[1]) if flow else None
            record = RunInfo(run_id, name, tags=self._tags, flow_run=flow_run)
            if kind == "task":
                _task_run_context.set(TaskRunContext(None, record))
            else:  # a flow run: the logger needs only its name (no runner there)
                _task_run_context.set(None)
                flow_run_context.set(FlowRunContext(None, record, None))  # type: ignore[arg-type]
        return self.fn(*args, **kwargs)


def with_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn`` so it runs in the current task or flow run's context, in any process.

    For ``multiprocessing.Pool``, ``ProcessPoolExecutor`` or ``multiprocessing.Process``
    started from inside a task: ``pool.map(with_context(work), items)``. In ``work``,
    ``get_run_logger()`` logs as the run, and ``runtime.task_run.name``, ``.id`` and the
    ``tags`` are the run's. Parameters and the run's futures do not travel.
    """
    run: tuple | None = None
    run_tags = current_tags.get()
    task_ctx = _task_run_context.get()
    flow_ctx = flow_run_context.get()
    if task_ctx is not None:
        record = task_ctx.task_run
        flow = getattr(record, "flow_run", None)
        flow_info = (str(flow.id), flow.name) if flow is not None else None
        run = ("task", str(record.id), record.name, flow_info)
        run_tags = frozenset(record.tags)  # the task's own tags and the blocks' around it
    elif flow_ctx is not None:
        run = ("flow", str(flow_ctx.flow_run.id), flow_ctx.flow_run.name, None)
    return _ContextWrappedCallable(fn, run, run_tags)

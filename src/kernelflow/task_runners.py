"""Task runners decide where submitted task runs execute.

A runner is little more than a choice of where runs execute: it records the run, hands
the engine's ``run_task_sync`` to its pool in a copy of the caller's context, and returns
a ``TaskFuture``. It knows nothing about display; the live views observe the run
records instead.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import sys
from collections import deque
from collections.abc import Iterable
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

from kernelflow._context import flow_run_context
from kernelflow._engine.mapping import mapped_calls, top_level_dependencies
from kernelflow._engine.task_engine import (
    at_map_position,
    create_task_run,
    run_task_async,
    run_task_sync,
)
from kernelflow._engine.worker_pool import DaemonThreadPool
from kernelflow.futures import LoopWork, TaskFuture, TaskFutureList, Work, worker_thread

if TYPE_CHECKING:
    from typing_extensions import Self

    from kernelflow.tasks import Task

# The process and Dask runners are loaded on first use by the module __getattr__ below.
__all__ = ["TaskRunner", "ThreadPoolTaskRunner", "ProcessPoolTaskRunner", "DaskTaskRunner"]  # noqa: F822


class TaskRunner(abc.ABC):
    """Base class of task runners: where ``Task.submit`` and ``Task.map`` send runs.

    A runner is a context manager: it accepts work only between ``__enter__`` and
    ``__exit__``. Flows start a fresh ``duplicate()`` of their runner for each run.
    """

    def __init__(self) -> None:
        self.logger = logging.getLogger(f"kernelflow.task_runner.{self.name}")
        self._started = False

    @property
    def name(self) -> str:
        """The runner's short name: ``ThreadPoolTaskRunner`` -> ``"threadpool"``."""
        return type(self).__name__.lower().replace("taskrunner", "")

    @abc.abstractmethod
    def duplicate(self) -> Self:
        """A new, unstarted runner with the same configuration."""

    @abc.abstractmethod
    def submit(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Iterable[TaskFuture] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> TaskFuture:
        """Start one run of ``task`` with ``parameters`` and return its future."""

    def cancel_all(self) -> None:  # noqa: B027 - optional: runners that cannot cancel keep it
        """Cancel every run not yet finished (runners that can, override this)."""

    def _new_run(
        self, task: Task, parameters: dict[str, Any], wait_for: Any, dependencies: Any
    ) -> tuple[TaskFuture, Any, Any]:
        """Record a Pending run; its future (listed with the flow run's), upstream, flow context.

        Raises:
            RuntimeError: the runner is not started.
        """
        if not self._started:
            raise RuntimeError("Task runner is not started")
        flow_ctx = flow_run_context.get()
        run, upstream = create_task_run(task, parameters, wait_for, flow_ctx, dependencies)
        future: TaskFuture = TaskFuture(run)
        if flow_ctx is not None:
            flow_ctx.futures.append(future)
        return future, upstream, flow_ctx

    def map(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Iterable[TaskFuture] | None = None,
    ) -> TaskFutureList:
        """Submit one run per element of the iterable parameters.

        Non-iterable parameters, and iterables wrapped in ``unmapped``, are passed whole
        to every run. Top-level futures are resolved first so their values can be mapped.

        Raises:
            MappingMissingIterable: no parameter is iterable.
            MappingLengthMismatch: the iterables differ in length.
        """
        if not self._started:
            raise RuntimeError("The task runner must be started before submitting work.")
        flow_ctx = flow_run_context.get()
        flow_run = flow_ctx.flow_run if flow_ctx else None
        dependencies = top_level_dependencies(parameters, flow_run)
        calls = mapped_calls(task, parameters, flow_run)
        group = flow_run.next_map_group() if flow_run else 0
        return TaskFutureList(self._submit_mapped(task, calls, group, wait_for, dependencies))

    def _submit_mapped(
        self,
        task: Task,
        calls: list[dict[str, Any]],
        group: int,
        wait_for: Any,
        dependencies: dict[str, Any],
    ) -> list[TaskFuture]:
        """Submit each mapped call; runners that can batch the calls override this."""
        futures = []
        for index, parameters in enumerate(calls):
            with at_map_position(group, index):
                futures.append(self.submit(task, parameters, wait_for, dependencies))
        return futures

    def __enter__(self) -> Self:
        if self._started:
            raise RuntimeError("This task runner is already started")
        self._started = True
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._started = False


class ThreadPoolTaskRunner(TaskRunner):
    """Runs tasks concurrently in a pool of threads (the default runner).

    Threads give concurrency for I/O-bound work; for CPU-bound Python code use the
    process or Dask runner. A run cancelled while it executes (a kernel interrupt) is
    marked Cancelled and its thread abandoned: Python cannot stop a running thread.

    Args:
        max_workers: The most threads at once; None means no limit, as in Prefect.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}.")
        self._max_workers = sys.maxsize if max_workers is None else max_workers
        self._executor: DaemonThreadPool | None = None
        self._unfinished: dict[TaskFuture, Work | LoopWork] = {}

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(max_workers=self._max_workers)

    def submit(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Iterable[TaskFuture] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> TaskFuture:
        if self._executor is None:
            raise RuntimeError("Task runner is not started")
        future = self._prepare(task, parameters, wait_for, dependencies)
        if type(future._work) is Work:
            self._executor.submit(copy_context().run, future._work)
        return future

    def _submit_mapped(
        self,
        task: Task,
        calls: list[dict[str, Any]],
        group: int,
        wait_for: Any,
        dependencies: dict[str, Any],
    ) -> list[TaskFuture]:
        """Record every mapped run first, then let at most ``max_workers`` pool jobs drain
        them from one queue.

        One executor job per run would wake a pool thread per run while this thread is
        still submitting, and the threads would fight it for the GIL: on a large map that
        costs more than the runs themselves. Runs still start in order, at most
        ``max_workers`` at a time.
        """
        if not self._started or self._executor is None:
            raise RuntimeError("Task runner is not started")
        futures = []
        queue: deque[Work] = deque()
        for index, parameters in enumerate(calls):
            with at_map_position(group, index):
                future = self._prepare(task, parameters, wait_for, dependencies)
            futures.append(future)
            if type(future._work) is Work:
                queue.append(future._work)
        for _ in range(min(len(queue), self._max_workers)):
            self._executor.submit(copy_context().run, _drain, queue)
        return futures

    def _prepare(
        self, task: Task, parameters: dict[str, Any], wait_for: Any, dependencies: Any
    ) -> TaskFuture:
        """Record the run and make its future; an async task in an async flow is already
        scheduled on the flow's loop, a thread run is left for the caller to dispatch."""
        future, upstream, flow_ctx = self._new_run(task, parameters, wait_for, dependencies)
        args = (task, future.task_run, parameters, wait_for, upstream, flow_ctx)
        if task.isasync and flow_ctx is not None and flow_ctx.loop is not None:
            # An async task in an async flow: an asyncio task on the flow's own loop, so
            # such runs are concurrent without threads and share the loop's objects.
            scheduled = asyncio.run_coroutine_threadsafe(run_task_async(*args), flow_ctx.loop)
            future._work = LoopWork(scheduled, flow_ctx.loop)
            scheduled.add_done_callback(lambda _: self._finished(future))
        else:
            future._work = Work(future, self._unfinished, run_task_sync, *args)
        # Plain dict operations, atomic under the GIL: a lock here would be contended by
        # every worker finishing a run, and each contended acquire hands the GIL around.
        self._unfinished[future] = future._work
        return future

    def _finished(self, future: TaskFuture) -> None:
        self._unfinished.pop(future, None)
        future._resolve()

    def cancel_all(self) -> None:
        """Cancel queued runs and mark running ones Cancelled, without waiting for them.

        Running threads are abandoned (Python cannot stop them), so an interrupted
        notebook cell returns at once. A started runner gets a fresh pool and stays usable.
        """
        unfinished = list(self._unfinished)
        self._unfinished.clear()
        for future in unfinished:
            future.cancel()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor() if self._started else None

    def _new_executor(self) -> DaemonThreadPool:
        return DaemonThreadPool(self._max_workers, "kernelflow-worker", _mark_worker_thread)

    def __enter__(self) -> ThreadPoolTaskRunner:
        super().__enter__()
        self._executor = self._new_executor()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        super().__exit__(*exc_info)
        self.cancel_all()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ThreadPoolTaskRunner):
            return False
        return self._max_workers == other._max_workers

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        workers = "unbounded" if self._max_workers == sys.maxsize else self._max_workers
        return f"ThreadPoolTaskRunner(max_workers={workers})"


def _mark_worker_thread() -> None:
    worker_thread.active = True


def _drain(queue: deque[Work]) -> None:
    """A pool job: run queued work until the queue is empty (work another thread already
    claimed, by helping or cancelling, is skipped by ``Work.__call__``)."""
    while True:
        try:
            work = queue.popleft()
        except IndexError:
            return
        work()


def __getattr__(name: str) -> Any:
    # The process and Dask runners live in their own modules; importing them here on
    # demand keeps `import kernelflow` light.
    if name == "ProcessPoolTaskRunner":
        from kernelflow._runners.process import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner
    if name == "DaskTaskRunner":
        from kernelflow._runners.dask import DaskTaskRunner

        return DaskTaskRunner
    raise AttributeError(f"module 'kernelflow.task_runners' has no attribute {name!r}")

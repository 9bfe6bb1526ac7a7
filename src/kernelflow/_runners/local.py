"""``TaskRunner``, what every runner does, and ``ThreadPoolTaskRunner``, which drives its
runs in this process (pool threads, or an async flow's loop).

A runner is little more than a choice of where runs execute: it records the run, makes
its lifecycle and run handle, hands the handle to its pool (in a copy of the caller's
context) to be driven, and returns a ``TaskFuture``. It never sets a state: it reports
to the handle and cancels through it. It knows nothing about display; the live views
observe the run records instead. ``kernelflow.task_runners`` is their public face.
"""

from __future__ import annotations

import abc
import logging
import sys
from collections.abc import Iterable
from contextvars import copy_context
from typing import TYPE_CHECKING, Any

from kernelflow._context import flow_run_context
from kernelflow._engine.drivers import drive_async
from kernelflow._engine.mapping import mapped_calls, top_level_dependencies
from kernelflow._engine.resume import settle_reused
from kernelflow._engine.task_engine import at_map_position, create_task_run, task_lifecycle
from kernelflow._lazy_imports import asyncio
from kernelflow._runners.thread_pool import DaemonThreadPool
from kernelflow._runners.threads import LoopRun, RunQueue, ThreadRun, mark_worker_thread
from kernelflow.futures import TaskFuture, TaskFutureList

if TYPE_CHECKING:
    from typing_extensions import Self

    from kernelflow.tasks import Task


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

    def startup_message(self) -> str | None:
        """What entering this runner is about to do when that takes a while (starting a
        cluster), else None. A flow run says it while Pending, so its display is not
        blank meanwhile."""
        return None

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

    def unfinished_futures(self) -> list[TaskFuture]:
        """The futures of this runner's runs that have not ended (runners that keep
        track override this)."""
        return []

    def _new_run(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Any,
        dependencies: Any,
        position: tuple[int, int] | None = None,
    ) -> tuple[TaskFuture, Any, Any]:
        """Record a Pending run; its future (listed with the flow run's), upstream, flow context.

        A run a retry reuses ends here (``resume.settle_reused``): not to be dispatched.

        Raises:
            RuntimeError: the runner is not started.
        """
        if not self._started:
            raise RuntimeError("Task runner is not started")
        flow_ctx = flow_run_context.get()
        run, upstream = create_task_run(
            task, parameters, wait_for, flow_ctx, dependencies, position
        )
        future: TaskFuture = TaskFuture(run)
        if flow_ctx is not None:
            flow_ctx.futures.append(future)
            if flow_ctx.retry_plan is not None:
                settle_reused(task, run, parameters, wait_for, upstream, flow_ctx, future)
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
    marked Cancelled and stopped by CancelledRun raised in its thread at its next Python
    line (a thread blocked in one long C call, such as a sleep, stops when it returns).

    Args:
        max_workers: The most threads at once; None means no limit, as in Prefect. With
            no limit, runs start on one thread, and more are added while runs are held
            up (they wait on I/O or sleep, or long ones hold every thread): waiting runs
            still all run at once within milliseconds, while quick ones stay on one
            thread, the fastest under the GIL.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        super().__init__()
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}.")
        self._max_workers = sys.maxsize if max_workers is None else max_workers
        self._grows = max_workers is None
        self._executor: DaemonThreadPool | None = None
        self._queue: RunQueue | None = None
        self._unfinished: dict[TaskFuture, ThreadRun | LoopRun] = {}

    def duplicate(self) -> ThreadPoolTaskRunner:
        return type(self)(max_workers=None if self._grows else self._max_workers)

    def submit(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Iterable[TaskFuture] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> TaskFuture:
        if self._queue is None:
            raise RuntimeError("Task runner is not started")
        future, handle = self._prepare(task, parameters, wait_for, dependencies)
        if type(handle) is ThreadRun:
            self._queue.put(handle, copy_context())
            self._queue.start()
        return future

    def _submit_mapped(
        self,
        task: Task,
        calls: list[dict[str, Any]],
        group: int,
        wait_for: Any,
        dependencies: dict[str, Any],
    ) -> list[TaskFuture]:
        """Record and queue every mapped run first, then start the drainers.

        Drainers started at the first run would run while this thread is still
        submitting, and fight it for the GIL: on a large map that costs more than the runs
        themselves. Runs still start in order. The handles are held by the queue alone,
        so each is freed as soon as its run ends (a list of them here kept them alive
        while the drainers started: 25% more garbage-collector work on a 10k map).
        """
        queue = self._queue
        if not self._started or queue is None:
            raise RuntimeError("Task runner is not started")
        context = copy_context()
        futures = []
        for index, parameters in enumerate(calls):
            future, handle = self._prepare(task, parameters, wait_for, dependencies, (group, index))
            futures.append(future)
            if type(handle) is ThreadRun:
                queue.put(handle, context)
        queue.start()
        return futures

    def _prepare(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Any,
        dependencies: Any,
        position: tuple[int, int] | None = None,
    ) -> tuple[TaskFuture, ThreadRun | LoopRun | None]:
        """Record the run (element ``position`` of a map) and make its handle; an async
        task in an async flow is already scheduled on the flow's loop, a thread run is left
        for the caller to dispatch. A run a retry reused has ended already: no handle."""
        future, upstream, flow_ctx = self._new_run(
            task, parameters, wait_for, dependencies, position
        )
        if future._final:  # a run a retry reused has ended already
            return future, None
        run = future.task_run
        if task.isasync and flow_ctx is not None and flow_ctx.loop is not None:
            # An async task in an async flow: an asyncio task on the flow's own loop, so
            # such runs are concurrent without threads and share the loop's objects.
            handle: ThreadRun | LoopRun = LoopRun(
                run,
                task_lifecycle(task, run, parameters, wait_for, upstream, flow_ctx),
                future,
                flow_ctx.loop,
            )
            handle.scheduled = asyncio.run_coroutine_threadsafe(drive_async(handle), flow_ctx.loop)
            handle.scheduled.add_done_callback(lambda _: self._unfinished.pop(future, None))
        else:
            handle = ThreadRun(
                task, run, parameters, wait_for, upstream, flow_ctx, future, self._unfinished
            )
        future._handle = handle
        # Plain dict operations, atomic under the GIL: a lock here would be contended by
        # every worker finishing a run, and each contended acquire hands the GIL around.
        self._unfinished[future] = handle
        return future, handle

    def unfinished_futures(self) -> list[TaskFuture]:
        return list(self._unfinished)

    def cancel_all(self) -> None:
        """Cancel queued runs and mark running ones Cancelled, without waiting for them.

        Running bodies are stopped at their next Python line, not waited for, so an
        interrupted notebook cell returns at once. A started runner gets a fresh pool
        and stays usable.
        """
        unfinished = list(self._unfinished.values())
        self._unfinished.clear()
        for handle in unfinished:
            handle.cancel()
        if self._queue is not None:
            self._queue.clear()  # the drainers of the old pool see nothing left to do
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            if self._started:  # a fresh pool: the runner stays usable
                self._start_pool()
            else:
                self._executor = self._queue = None

    def _start_pool(self) -> None:
        self._executor = DaemonThreadPool(
            self._max_workers, "kernelflow-worker", mark_worker_thread
        )
        limit = None if self._grows else self._max_workers
        self._queue = RunQueue(self._executor, limit, self._unfinished)

    def __enter__(self) -> ThreadPoolTaskRunner:
        super().__enter__()
        self._start_pool()
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

"""Task runners decide where submitted task runs execute.

A runner is little more than a choice of ``concurrent.futures.Executor``: it records the
run, hands the engine's ``run_task_sync`` to its executor in a copy of the caller's
context, and returns a ``TaskFuture``. It knows nothing about display; the live views
observe the run records instead.
"""

from __future__ import annotations

import abc
import logging
import sys
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from functools import partial
from io import IOBase
from typing import TYPE_CHECKING, Any

from kernelflow._annotations import allow_failure, quote, unmapped
from kernelflow._context import flow_run_context
from kernelflow._engine.inputs import Resolved, find_upstream
from kernelflow._engine.task_engine import create_task_run, map_position, run_task_sync
from kernelflow._runs import set_state
from kernelflow.exceptions import MappingLengthMismatch, MappingMissingIterable, UpstreamTaskError
from kernelflow.futures import TaskFuture, TaskFutureList, Work, worker_thread
from kernelflow.states import Cancelled

if TYPE_CHECKING:
    from typing_extensions import Self

    from kernelflow.tasks import Task

__all__ = ["TaskRunner", "ThreadPoolTaskRunner", "ProcessPoolTaskRunner", "DaskTaskRunner"]


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

    def cancel_all(self) -> None:
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
        # Top-level futures are resolved to map over their data; note the edges first.
        dependencies = {
            name: edges
            for name, edges in find_upstream(
                {k: v for k, v in parameters.items() if isinstance(v, TaskFuture)}, flow_run
            ).edges.items()
        }
        parameters = {name: _resolve_top_level(value) for name, value in parameters.items()}
        parameters = task.signature.explode_var_keyword(parameters)

        iterable: dict[str, list[Any]] = {}
        static: dict[str, Any] = {}
        annotated: dict[str, Any] = {}
        for key, value in parameters.items():
            if isinstance(value, (allow_failure, quote)):
                annotated[key] = value
                value = value.unwrap()
            if isinstance(value, unmapped):
                static[key] = value.value
            elif _isiterable(value):
                iterable[key] = list(value)
            else:
                static[key] = value
        if not iterable:
            raise MappingMissingIterable(
                "No iterable parameters were received. Parameters for map must include at "
                f"least one iterable. Parameters: {parameters}"
            )
        lengths = {key: len(values) for key, values in iterable.items()}
        if len(set(lengths.values())) > 1:
            raise MappingLengthMismatch(
                "Received iterable parameters with different lengths. Parameters for map "
                f"must all be the same length. Got lengths: {lengths}"
            )
        # Static values are searched for futures once here, not once per mapped run.
        for key, value in static.items():
            if key not in annotated and not find_upstream({key: value}, flow_run).needs_resolving:
                static[key] = Resolved(value)
        defaults = task.signature.defaults
        group = flow_run.next_map_group() if flow_run else 0
        futures = TaskFutureList()
        for index in range(next(iter(lengths.values()))):
            call_parameters = {key: values[index] for key, values in iterable.items()}
            call_parameters.update(static)
            for key, value in defaults.items():
                call_parameters.setdefault(key, value)
            for key, annotation in annotated.items():
                call_parameters[key] = annotation.rewrap(call_parameters[key])
            call_parameters = task.signature.collapse_var_keyword(call_parameters)
            token = map_position.set((group, index))
            try:
                futures.append(self.submit(task, call_parameters, wait_for, dependencies))
            finally:
                map_position.reset(token)
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
        self._executor: ThreadPoolExecutor | None = None
        self._unfinished: dict[TaskFuture, Work] = {}
        self._lock = threading.Lock()

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
        future, upstream, flow_ctx = self._new_run(task, parameters, wait_for, dependencies)
        run = future.task_run
        call = partial(run_task_sync, task, run, parameters, wait_for, upstream, flow_ctx)
        work = future._work = Work(call, future)
        with self._lock:
            self._unfinished[future] = work
        future._done.add_done_callback(partial(self._forget, future))
        self._executor.submit(copy_context().run, work)
        return future

    def _forget(self, future: TaskFuture, _done: Any) -> None:
        with self._lock:
            self._unfinished.pop(future, None)

    def cancel_all(self) -> None:
        """Cancel queued runs and mark running ones Cancelled, without waiting for them.

        Running threads are abandoned (Python cannot stop them), so an interrupted
        notebook cell returns at once. A started runner gets a fresh pool and stays usable.
        """
        with self._lock:
            unfinished = list(self._unfinished.items())
            self._unfinished.clear()
        for future, work in unfinished:
            if work.claim():
                message = "Cancelled before it started."
            else:
                message = "Cancelled while running; its thread was abandoned."
            set_state(future.task_run, Cancelled(message))
            future._resolve()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor() if self._started else None

    def _new_executor(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=self._max_workers,
            thread_name_prefix="kernelflow-worker",
            initializer=_mark_worker_thread,
        )

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


def _resolve_top_level(value: Any, tolerate_failure: bool = False) -> Any:
    """A top-level future becomes its value (waiting for it); annotations are kept."""
    if isinstance(value, TaskFuture):
        value.wait()
        if not value.state.is_completed() and not tolerate_failure:
            raise UpstreamTaskError(
                f"Cannot map over the result of task run {value.task_run.name!r}: it ended "
                f"{value.state.name} ({value.state.message})."
            )
        return value.state.result(raise_on_failure=False)
    if isinstance(value, (allow_failure, unmapped)):
        tolerate_failure = tolerate_failure or isinstance(value, allow_failure)
        return value.rewrap(_resolve_top_level(value.value, tolerate_failure))
    return value  # quote(...) is passed through untouched


def _isiterable(value: Any) -> bool:
    # Strings, bytes and files iterate, but are almost always meant as single values.
    if isinstance(value, (str, bytes, IOBase)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True


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

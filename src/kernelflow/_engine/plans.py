"""A task run's plan: which of the lifecycle's steps its task and its call ask for.

``task_engine.task_lifecycle`` holds every step a task run may take: wait for upstream
futures, resolve its inputs, wait at a paused flow's gate, be reused by a retry, look up
and store a cached result, retry, time out, call hooks, record assets. Most runs take
none of them: a trivial task called directly is recorded, called and settled. A run
whose plan is plain is carried out by ``run_plain``, the same steps the lifecycle takes
for it (``attempt_state``, ``settle``: nothing written twice), without the generator,
the effects, the run handle and the driver the other steps need.

What the task's options imply is worked out once per task (``plain_task``) and kept on
it: ``with_options`` makes a new task, and the decorator forms of the hooks
(``@my_task.on_failure``) forget it. What each call adds is looked at per call
(``plain_call``): futures among its inputs, ``wait_for``, and its flow run's deadline,
pause, retry plan, result persistence and ``log_prints``.
"""

from __future__ import annotations

from threading import get_ident
from typing import TYPE_CHECKING, Any

from kernelflow._context import TaskRunContext, task_run_context
from kernelflow._engine.bound_calls import bound_call
from kernelflow._engine.drivers import thread_name, worker_name
from kernelflow._engine.handle import crash_if_unfinished
from kernelflow._engine.task_engine import attempt_state, run_bindings, settle
from kernelflow._logging import print_logger
from kernelflow._runs import set_state
from kernelflow.states import StateType

if TYPE_CHECKING:
    from kernelflow._context import FlowRunContext
    from kernelflow._engine.handle import RunHandle
    from kernelflow._engine.inputs import Upstream
    from kernelflow._runs import TaskRun
    from kernelflow.states import State
    from kernelflow.tasks import Task


def plain_task(task: Task) -> bool:
    """Whether ``task``'s options leave its runs none of the lifecycle's optional steps
    (kept on the task as ``_plain``; None until first asked, and after a hook is added)."""
    plain = task._plain
    if plain is None:
        plain = task._plain = not (
            task.isasync
            or task.isgenerator
            or task.timeout_seconds is not None
            or task.retries
            or task.caches
            or task.has_assets
            or task.on_completion_hooks
            or task.on_failure_hooks
            or task.on_running_hooks
            or task.on_commit_hooks
            or task.on_rollback_hooks
        )
    return plain


def plain_call(
    task: Task, upstream: Upstream, wait_for: Any, flow_ctx: FlowRunContext | None
) -> bool:
    """Whether this run of a plain task asks for nothing more: no futures to wait for or
    resolve, and a flow run (if any) with no deadline, not paused, not a retry, and not
    persisting the results of tasks that said nothing about theirs."""
    if wait_for or upstream.futures or upstream.needs_resolving:
        return False
    if flow_ctx is None:
        return True
    return (
        flow_ctx.deadline is None
        and flow_ctx.retry_plan is None
        and flow_ctx.gate.open
        and not (task.caches_if_persisted and flow_ctx.flow.persist_result)
    )


def run_plain(task: Task, run: TaskRun, parameters: dict, flow_ctx: FlowRunContext | None) -> State:
    """Carry out a plain run in this thread: Running, one call of its body, its final
    state; what the lifecycle does for such a run, step for step (``task_lifecycle``,
    ``attempts``, ``settle``), and what the run handle does if anything else is raised."""
    __tracebackhide__ = True
    try:
        signature = task.signature  # split, without its call in the usual case:
        args, kwargs = ((), parameters) if signature.by_keyword else signature.split(parameters)
        run.run_count = 1
        run.worker = thread_name.name or worker_name()
        if run.start_time is None:  # not made Running (someone watches it): started now
            set_state(run, StateType.RUNNING)
        if print_logger.get() is None and not (
            task.log_prints or (task.log_prints is None and flow_ctx and flow_ctx.log_prints)
        ):  # the usual: the run's own context, nothing more
            token = task_run_context.set(TaskRunContext(task, run))
            try:
                value, error = task.fn(*args, **kwargs), None
            except BaseException as raised:
                value, error = None, raised
            finally:
                task_run_context.reset(token)
        else:
            bindings, _ = run_bindings(task, run, flow_ctx)
            try:
                value, error = bound_call(task.fn, args, kwargs, bindings), None
            except BaseException as raised:
                value, error = None, raised
        state = attempt_state(run, value, error)
        if settle(task, run, state) is None:
            return run.state  # already ended elsewhere
        return state
    except BaseException as error:  # an interrupt, or kernelflow itself failed
        crash_if_unfinished(run, error)
        raise


def run_plain_handled(
    handle: RunHandle, task: Task, parameters: dict, flow_ctx: FlowRunContext | None
) -> None:
    """Carry out a plain run that has a future (a submitted or mapped run) in this thread:
    what ``drive_sync`` does with its lifecycle, through the same handle calls (the body's
    start, its thread for a cancel, the end under the handle's lock)."""
    __tracebackhide__ = True
    run = handle.run
    try:
        signature = task.signature  # split, without its call in the usual case:
        args, kwargs = ((), parameters) if signature.by_keyword else signature.split(parameters)
        run.run_count = 1
        bindings, _ = run_bindings(task, run, flow_ctx)
        # Running, and the body's thread named, so that a cancel stops the body there
        if not handle.body_started(thread_name.name or worker_name(), None, get_ident()):
            return  # cancelled first: the cancel ended it
        try:
            value, error = bound_call(task.fn, args, kwargs, bindings), None
        except BaseException as raised:
            value, error = None, raised
    except BaseException as error:  # kernelflow itself failed
        handle.body_returned()
        handle.abort(error)
        raise

    def end() -> State:
        state = attempt_state(run, value, error)
        return state if settle(task, run, state) is not None else run.state

    handle.close_with(end)

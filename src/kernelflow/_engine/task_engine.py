"""The life of a task run, written once for every driver and runner.

create_task_run      record the run and its upstream edges (at call/submit time)
task_lifecycle       wait for upstreams -> resolve inputs -> wait while paused -> cache
                     lookup (or claim) -> attempts (retry, timeout) -> cache store ->
                     final state -> hooks

The lifecycle only yields effects (``effects.py``); a driver carries them out, in the
caller's thread or loop for a direct call (``direct_calls.py``), or a runner's. What a
runner learns (a worker started the body, the run was cancelled) reaches the run through
its ``RunHandle``, so every state of a task run is set here or there, nowhere else.
"""

from __future__ import annotations

import dataclasses
import functools
import random
import time
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from kernelflow import _transactions as transactions
from kernelflow._context import FlowRunContext, TaskRunContext, current_tags, task_run_context
from kernelflow._engine.effects import (
    Bindings,
    CallBody,
    Lifecycle,
    Sleep,
    WaitFor,
    WaitUntilOpen,
)
from kernelflow._engine.hooks import run_hooks
from kernelflow._engine.inputs import (
    Upstream,
    check_wait_for,
    find_upstream,
    resolve,
    waits_for_itself,
)
from kernelflow._engine.returns import PLAIN_VALUES, needs_looking_at, returned_state
from kernelflow._engine.user_frames import from_user_code
from kernelflow._lazy_imports import asyncio
from kernelflow._logging import (
    enable_print_redirection,
    log_completed,
    print_logger,
    run_logger,
)
from kernelflow._runs import TaskRun, set_state
from kernelflow.exceptions import (
    CrashedRun,
    DeadlineExceeded,
    SerializationError,
    UpstreamTaskError,
)
from kernelflow.states import (
    Cancelled,
    Crashed,
    Failed,
    Retrying,
    Running,
    State,
    StateType,
    TimedOut,
    _new_state,
)

if TYPE_CHECKING:
    from kernelflow.tasks import Task


# Set by TaskRunner.map around each submit: (map group, index) of the run being created.
# Runners keep Prefect's submit(task, parameters, wait_for, dependencies) signature, so
# the map position travels beside it rather than through it. (The thread runner records
# mapped runs itself and passes it directly: setting a context variable copies part of
# the context, a fair share of recording a trivial mapped run.)
map_position: ContextVar[tuple[int, int] | None] = ContextVar(
    "kernelflow_map_position", default=None
)


class at_map_position:  # noqa: N801 - used as a function; a class: one per mapped run
    """Runs created in the block are element ``index`` of the ``.map()`` call ``group``."""

    __slots__ = ("_position", "_token")

    def __init__(self, group: int, index: int) -> None:
        self._position = (group, index)

    def __enter__(self) -> None:
        self._token = map_position.set(self._position)

    def __exit__(self, *exc_info: Any) -> None:
        map_position.reset(self._token)


def create_task_run(
    task: Task,
    parameters: dict[str, Any],
    wait_for: Any,
    flow_ctx: FlowRunContext | None,
    dependencies: dict[str, Any] | None = None,
    position: tuple[int, int] | None = None,
    upstream: Upstream | None = None,
    started: bool = False,
) -> tuple[TaskRun, Upstream]:
    """Record a new Pending task run, with the upstream edges its inputs give it
    (``upstream``, if the caller found them already); a mapped run's ``position`` is
    (map group, index), else ``map_position``'s. ``started``: see ``TaskRun``."""
    flow_run = flow_ctx.flow_run if flow_ctx else None
    if upstream is None:
        upstream = find_upstream(parameters, flow_run, wait_for)
    edges = upstream.edges
    if dependencies:
        edges = dict(edges)
        for name, ids in dependencies.items():
            edges[name] = edges.get(name, frozenset()) | frozenset(ids)
    if position is None:
        position = map_position.get()
    group, index = position if position else (None, None)
    run = TaskRun(  # by position: keywords cost a share of recording a trivial run
        task,
        task.make_run_name(parameters, flow_run, not upstream.needs_resolving),
        parameters,
        flow_run,
        task.tags | context_tags if (context_tags := current_tags.get()) else task.tags,
        edges,
        index,  # map_index
        group,  # map_group
        transactions._current.get(),  # its transaction, taken here: remote runs end elsewhere
        upstream.possible,
        started,
    )
    if flow_run is not None:
        flow_run.task_runs.append(run)
    return run, upstream


def task_lifecycle(
    task: Task,
    run: TaskRun,
    parameters: dict,
    wait_for: Any,
    upstream: Upstream,
    flow_ctx: FlowRunContext | None,
    looked: Any = None,
) -> Lifecycle[State]:
    """One run, from Pending to its final state (see the module docstring for the steps);
    ``looked``: the cache's first look, taken already by a direct call (``cache_hits``)."""
    deadline = flow_ctx.deadline if flow_ctx else None
    if upstream.futures:
        all_done = yield WaitFor(upstream.futures, deadline)
        if not all_done:
            return (yield from finish(task, run, Cancelled("The flow run timed out first.")))
    if upstream.needs_resolving or wait_for:
        parameters = resolve_inputs(task, run, parameters, wait_for)
        if isinstance(parameters, State):  # an upstream failed (or it waits for itself)
            return (yield from finish(task, run, parameters))
    if flow_ctx is not None and not flow_ctx.gate.is_set():
        yield WaitUntilOpen(flow_ctx.gate)  # the flow run is paused: start nothing new
    if flow_ctx is not None and flow_ctx.retry_plan is not None:
        reused = flow_ctx.retry_plan.reused_state(task, run, parameters)
        if reused is not None:  # a retry from failure: the original run's value holds
            return (yield from finish(task, run, reused))
    lookup = None
    if task.caches or (
        task.caches_if_persisted and flow_ctx is not None and flow_ctx.flow.persist_result
    ):  # the task set nothing about results, and its flow persists them
        lookup = yield from _caching().cache_lookup(task, run, parameters, flow_ctx, looked)
    if lookup is not None and lookup.state is not None:  # a cache hit: nothing to run
        return (yield from finish(task, run, lookup.state))
    try:
        state = yield from attempts(task, run, parameters, flow_ctx)
        if lookup is not None:
            state = lookup.record(task, run, state)  # stores only a completed result
    except (GeneratorExit, KeyboardInterrupt, asyncio.CancelledError):  # cancelled, stopped
        if lookup is not None:
            lookup.release(cancelled="an identical run was cancelled before it stored a result")
        raise
    finally:
        if lookup is not None:
            lookup.release()  # an identical run waiting on this one may go on
    return (yield from finish(task, run, state))


@functools.cache
def _caching() -> Any:
    # The result store loads on first use (not at import), and then once: an import
    # statement here would cost every cached run a microsecond.
    from kernelflow._engine import caching

    return caching


def resolve_inputs(task: Task, run: TaskRun, parameters: dict, wait_for: Any) -> dict | State:
    """The parameters with futures made values (the run's record and name updated), or
    the Failed state the run ends in. Its upstream runs must have ended."""
    if wait_for and waits_for_itself(wait_for, run):
        return Failed(
            ValueError(
                f"Task run {run.name!r} waits for itself (its own future is in its "
                "wait_for): that is a deadlock. Pass wait_for a copy of the list."
            )
        )
    try:
        check_wait_for(wait_for)
        parameters = resolve(parameters)
    except UpstreamTaskError as error:
        # Without the frames that resolved the inputs, where nothing failed: from the
        # failed upstream run's own code (``inputs._upstream_error``).
        return Failed(error.with_traceback(from_user_code(error.__traceback__)))
    run.parameters = parameters
    if task.task_run_name is not None:  # named now that futures became values
        run.name = task.templated_run_name(parameters) or run.name
    return parameters


def attempts(
    task: Task, run: TaskRun, parameters: dict, flow_ctx: FlowRunContext | None
) -> Lifecycle[State]:
    """Call the task until it completes or its retries run out; the would-be final state.

    The driver marks the run Running when a worker starts the body (``RunHandle``), and
    the attempt's ``timeout_seconds`` counts from then, cut short by the flow's deadline.
    """
    args, kwargs = task.signature.split(parameters)
    body = _body(task, run, args, kwargs, flow_ctx)
    running_hooks = task.on_running_hooks
    while True:
        run.run_count += 1
        if running_hooks:  # before the body, as the run enters Running (each attempt)
            state = Running() if run.run_count == 1 else run.state
            yield from run_hooks(running_hooks, task, run, state, run_logger(task_run=run))
        outcome = yield body
        state = attempt_state(run, outcome.value, outcome.error)
        if outcome.ended is not None:
            state = _ended_at(state, outcome.ended)
        if outcome.error is None:
            return state
        if body.deadline is not None and body.deadline.expired():
            return state  # the flow run's time is up: no retry could start
        delay = _retry_delay(task, run, state)
        if delay is None:
            return state
        message = f"Retry {run.run_count} of {task.retries} in {delay:.3g}s after {state.message}"
        run_logger(task_run=run).info(message)
        if not set_state(run, Retrying(message)):
            return run.state
        yield Sleep(delay, body.deadline)


def attempt_state(run: TaskRun, value: Any = None, error: BaseException | None = None) -> State:
    """What one attempt's body did, as a state: Completed with what it returned (or the
    State it returned), else what its error means (an interrupt travels on)."""
    if error is None:
        if type(value) not in PLAIN_VALUES and needs_looking_at(value):  # see returns.py
            return returned_state(value, run.flow_run.task_runs if run.flow_run else ())
        return _new_state(_COMPLETED, "Completed", None, value, time.time())  # Completed(value)
    return _failure_state(run, error)


def _ended_at(state: State, ended: float) -> State:
    # A run's record shows when its body ended on the worker, not when the reply arrived.
    return dataclasses.replace(state, timestamp=ended)


def _body(
    task: Task, run: TaskRun, args: tuple, kwargs: dict, flow_ctx: FlowRunContext | None
) -> CallBody:
    bindings, log_prints = run_bindings(task, run, flow_ctx)
    fn = task.fn
    if task.isgenerator:  # iterated inside the run, so retries and timeouts cover it
        from kernelflow._engine.streaming import generator_body

        fn = generator_body(fn)
    return CallBody(
        fn,
        args,
        kwargs,
        task.isasync,
        task.timeout_seconds,
        flow_ctx.deadline if flow_ctx else None,
        bindings,
        log_prints,
        bool(task.on_commit_hooks or task.on_rollback_hooks),
    )


def finish(task: Task, run: TaskRun, state: State) -> Lifecycle[State]:
    """Set the final state, link the result for graph edges, and run the hooks."""
    hooks = settle(task, run, state)
    if hooks is None:
        return run.state  # already ended elsewhere (cancelled by an interrupt)
    if hooks:
        yield from run_hooks(hooks, task, run, state, run_logger(task_run=run))
    return state


def settle(task: Task, run: TaskRun, state: State) -> tuple | None:
    """Set the final state, link the result, record assets, tell the transaction; the
    hooks that apply now, or None if the run had already ended elsewhere."""
    kind = state.type
    if kind is _COMPLETED and run.flow_run is not None:
        run.flow_run.link_result(run, state.data)
    if not set_state(run, state):
        return None
    if task.has_assets:
        from kernelflow._assets import record_assets

        record_assets(task, run, kind is _COMPLETED)
    if kind is _COMPLETED:
        log_completed(run, state)  # Prefect's "Finished in state Completed()" line
        if run.transaction is not None:
            transactions.task_completed(task, run)
        return task.on_completion_hooks
    if kind is _FAILED or kind is _CRASHED:
        _log_failure(task, run, state)
        transactions.task_failed(run)
        return task.on_failure_hooks
    return ()


_COMPLETED, _FAILED, _CRASHED = StateType.COMPLETED, StateType.FAILED, StateType.CRASHED


def _failure_state(run: TaskRun, error: BaseException) -> State:
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        # The user stopped the run (the notebook's Stop button): it travels on to whoever
        # is waiting, and the handle ends the run Cancelled as it leaves the lifecycle.
        raise error
    if not isinstance(error, Exception) or isinstance(error, CrashedRun):
        return Crashed(error)  # its worker was lost: not retried, it would kill the next
    if isinstance(error, DeadlineExceeded):  # its own time ran out, not a TimeoutError it raised
        return TimedOut(error)
    return Failed(error)


def _retry_delay(task: Task, run: TaskRun, state: State) -> float | None:
    """Seconds to wait before the next attempt, or None if the run should not retry."""
    if not state.is_failed() or run.run_count > task.retries:
        return None
    if isinstance(state.data, SerializationError):
        return None  # the same arguments or result would fail to travel again
    if task.retry_condition_fn is not None:
        try:
            if not task.retry_condition_fn(task, run, state):
                return None
        except Exception:
            run_logger(task_run=run).exception("retry_condition_fn raised; not retrying.")
            return None
    delays = task.retry_delays
    delay = delays[min(run.run_count - 1, len(delays) - 1)] if delays else 0.0
    jitter = task.retry_jitter_factor
    if jitter and delay:
        delay = random.uniform(max(0.0, delay * (1 - jitter)), delay * (1 + jitter))
    return delay


def run_bindings(
    task: Task, run: TaskRun, flow_ctx: FlowRunContext | None
) -> tuple[Bindings, bool]:
    """The context variables the task body sees (its own run, where print goes, and the
    run's own transaction if its task has commit or rollback hooks); whether prints go
    to the run's log."""
    log_prints = task.log_prints
    if log_prints is None:
        log_prints = flow_ctx.log_prints if flow_ctx else False
    if log_prints:
        enable_print_redirection()
        bindings = (
            (task_run_context, TaskRunContext(task, run)),
            (print_logger, run_logger(task_run=run)),
        )
    elif print_logger.get() is not None:  # a task with log_prints=False in such a flow
        bindings = ((task_run_context, TaskRunContext(task, run)), (print_logger, None))
    else:
        bindings = ((task_run_context, TaskRunContext(task, run)),)
    if task.on_commit_hooks or task.on_rollback_hooks:  # the run gets its own transaction
        own = transactions.run_transaction(task, run)
        bindings = (*bindings, (transactions._current, own))
    return bindings, bool(log_prints)


def _log_failure(task: Task, run: TaskRun, state: State) -> None:
    log = run_logger(task_run=run)
    if isinstance(state.data, UpstreamTaskError):
        log.debug("Not run: %s", state.message)
    else:
        # Prefect's suffix, for readers (and code) that look for why it stopped retrying
        exhausted = " - Retries are exhausted" if task.retries and run.run_count > 0 else ""
        log.error("Finished in state %r%s", state, exhausted, exc_info=state.data)

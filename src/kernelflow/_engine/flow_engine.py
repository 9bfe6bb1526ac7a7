"""The life of a flow run, written once for sync and async flows.

    run_flow_sync / run_flow_async   validate parameters, record the run, start a fresh
                                     runner, drive the lifecycle, hand back the state
    flow_lifecycle                   (subflow) resolve input futures -> attempt the body
                                     (retry, timeout; Paused and back while the body
                                     pauses) -> resolve returned futures -> wait for the
                                     rest -> final state -> hooks; stopped anywhere (an
                                     interrupt), it still ends the run and runs its
                                     hooks before the error travels on. Every state of
                                     a flow run is set here.
    FlowHandle (flow_handle.py)      the flow run's handle: its body's pause reports to
                                     it, and it sends what happened into the lifecycle

A sync flow body runs in the calling thread: in a notebook that is the cell's thread,
so displays and prints land in the cell. At its timeout an exception is raised inside
the body (as Prefect does; an alarm signal on the main thread, which also ends a
blocking call); the flow run's scope also bounds every wait and is checked at every
task call.
"""

from __future__ import annotations

import random
import threading
import types
from typing import TYPE_CHECKING, Any

from kernelflow._context import FlowRunContext, current_tags, flow_run_context
from kernelflow._engine.drivers import drive_async, drive_sync
from kernelflow._engine.effects import (
    BODY_EVENTS,
    AwaitingBody,
    Bindings,
    BodyEvent,
    CallBody,
    Lifecycle,
    Outcome,
    PauseEnded,
    Sleep,
    WaitFor,
)
from kernelflow._engine.flow_handle import FlowHandle as _FlowHandle
from kernelflow._engine.hooks import run_hooks
from kernelflow._engine.inputs import check_wait_for, find_upstream, resolve
from kernelflow._engine.resume import starting_retry
from kernelflow._engine.returns import futures_to_states, needs_looking_at, returned_state
from kernelflow._engine.sources import remember_sources
from kernelflow._engine.user_frames import user_code_only
from kernelflow._lazy_imports import asyncio
from kernelflow._logging import enable_print_redirection, print_logger, run_logger
from kernelflow._run_history import record_top_level_run
from kernelflow._runs import FlowRun, set_state
from kernelflow._scopes.scope import Scope
from kernelflow.exceptions import CancelledRun, ParameterTypeError, UpstreamTaskError
from kernelflow.states import (
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Paused,
    Pending,
    Retrying,
    Running,
    State,
    TimedOut,
)

if TYPE_CHECKING:
    from kernelflow.flows import Flow


def run_flow_sync(flow: Flow, args: tuple, kwargs: dict, wait_for: Any = None) -> State:
    """Run ``flow`` in this thread to a final state."""
    __tracebackhide__ = True
    flow_run, parameters, parent = _create_flow_run(flow, args, kwargs, wait_for)
    with _starting(flow, flow_run) as runner:
        ctx = _enter(flow, flow_run, runner)
        token = flow_run_context.set(ctx)
        try:
            lifecycle = flow_lifecycle(flow, flow_run, parameters, ctx, wait_for)
            return drive_sync(_FlowHandle(flow_run, lifecycle, ctx))
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt) and parent is None:
                # One line that says what stopped, ending at the user's line it stopped
                # (IPython shows a traceback's last frame even when it is ours).
                stopped = KeyboardInterrupt(_interrupted(flow_run))
                raise stopped.with_traceback(user_code_only(error.__traceback__)) from None
            raise
        finally:
            flow_run_context.reset(token)


def _interrupted(run: FlowRun) -> str:
    runs = list(run.task_runs)
    pending = [run]
    while pending:  # the task runs of its subflows too
        for sub in pending.pop().subflow_runs:
            runs += sub.task_runs
            pending.append(sub)
    cancelled = [r.name for r in runs if r.state.is_cancelled()]
    named = ", ".join(cancelled[:8]) + (" ..." if len(cancelled) > 8 else "")
    what = f"cancelled {len(cancelled)} task run(s): {named}" if cancelled else "no task run left"
    return f"Flow run {run.name!r} stopped; {what}"


async def run_flow_async(flow: Flow, args: tuple, kwargs: dict, wait_for: Any = None) -> State:
    """Run ``flow`` on the running event loop to a final state."""
    __tracebackhide__ = True
    flow_run, parameters, parent = _create_flow_run(flow, args, kwargs, wait_for)
    with _starting(flow, flow_run) as runner:
        ctx = _enter(flow, flow_run, runner)
        ctx.loop = asyncio.get_running_loop()
        token = flow_run_context.set(ctx)
        heartbeat = _wake_regularly(ctx.loop)
        try:
            lifecycle = flow_lifecycle(flow, flow_run, parameters, ctx, wait_for)
            return await drive_async(_FlowHandle(flow_run, lifecycle, ctx))
        except BaseException as error:
            if isinstance(error, asyncio.CancelledError):
                await _take_pending_cancel()
            raise
        finally:
            heartbeat.cancel()
            flow_run_context.reset(token)


class _wake_regularly:  # noqa: N801 - a handle, named for what it does
    """Wake the loop every 0.1 s while an async flow runs.

    ipykernel turns an interrupt during an async cell into a callback on the cell's
    loop, which runs only when the loop next wakes: a flow awaiting a long sleep would
    not stop until the sleep ended (ipykernel issue 881). Waking it regularly makes the
    Stop button take effect within 0.1 s.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._timer = loop.call_later(0.1, self._beat)

    def _beat(self) -> None:
        self._timer = self._loop.call_later(0.1, self._beat)

    def cancel(self) -> None:
        self._timer.cancel()


async def _take_pending_cancel() -> None:
    """Receive a cancel of this task that is still on its way, so it ends here.

    A blocking wait in the body that drove the loop re-entrantly (``futures.py``) raises
    CancelledError itself when the task is cancelled (ipykernel's interrupt), since the
    task cannot receive it there; the cancel is then still pending, and would strike the
    caller again at its next await (in ipykernel: before it sends the cell's reply).
    """
    try:
        await asyncio.sleep(0)
    except asyncio.CancelledError:
        pass


def flow_lifecycle(
    flow: Flow,
    run: FlowRun,
    parameters: dict[str, Any],
    ctx: FlowRunContext,
    wait_for: Any = None,
) -> Lifecycle[State]:
    own = ctx.scope
    try:
        return (yield from _flow_run(ctx, parameters, wait_for))
    except GeneratorExit:
        raise  # closed: nothing may be yielded any more
    except BaseException as error:
        # Stopped (an interrupt in the body or thrown in by the driver while it waited)
        # or broken: the lifecycle still ends the run, hooks included, then the error
        # travels on to the caller.
        if not run.state.is_final():
            # Stopped while paused (a pause in a task run, or an interrupt that landed
            # in this lifecycle as it took the pause): it leaves Paused first, as from
            # a pause the error ended, so any final state is legal.
            _leave_pause(run, f"Pause ended by {type(error).__name__}.")
            state = stopped_state(error)
            ctx.scope.cancel(state.message)  # its task runs and subflows end with it
            yield from _finish(flow, run, state)
        raise
    finally:
        own.left_parent()  # a parent's later cancel no longer concerns this run


def _flow_run(ctx: FlowRunContext, parameters: dict[str, Any], wait_for: Any) -> Lifecycle[State]:
    flow, run = ctx.flow, ctx.flow_run
    prepared = yield from _prepare(flow, run, parameters, wait_for)
    if isinstance(prepared, State):  # it cannot start: a failed upstream, bad parameters
        return (yield from _finish(flow, run, prepared))
    run.parameters = parameters = prepared
    log = run_logger(flow_run=run)
    args, kwargs = flow.signature.split(parameters)
    bindings = _body_bindings(ctx)
    outer = ctx.scope  # the flow run's own scope, inside its parent's
    attempt = 0
    while True:
        attempt += 1
        set_state(run, Running() if attempt == 1 else Retrying(_retry_message(attempt, flow)))
        if flow.on_running_hooks:
            yield from run_hooks(flow.on_running_hooks, flow, run, run.state, log)
        _begin_attempt(ctx, flow, outer)
        body = CallBody(
            flow.body,  # fn, wrapped for a generator flow (Flow.body)
            args,
            kwargs,
            flow.isasync,
            # A sync body under no timeout of its own runs in its parent's thread, where
            # the parent's guard already stops it at the parent's deadline.
            deadline=ctx.deadline if flow.isasync or flow.timeout_seconds is not None else None,
            bindings=bindings,
            what="Flow run",
            in_this_thread=not flow.isasync,
        )
        outcome = yield from _call_body(run, body)
        if outcome.error is None:
            state = yield from _complete(outcome.value, ctx)
        else:
            state = _failure_state(outcome.error, run)
        state = _timed_out(state, ctx, flow)
        ctx.scope.left_parent()
        if not state.is_failed() or attempt > flow.retries:
            return (yield from _finish(flow, run, state))
        log.info("%s; retrying in %gs", state.message, flow.retry_delay_seconds)
        yield Sleep(flow.retry_delay_seconds, outer.timed())


def _call_body(run: FlowRun, body: CallBody) -> Lifecycle[Outcome]:
    """The body's outcome; while the body runs, the states it implies.

    What the body does to its run meanwhile (it paused, its pause ended) comes in as a
    body event (``effects.BodyEvent``) from the run's handle: the state it implies is
    set here, and ``AwaitingBody`` goes back to the handle, never to a driver. The
    driver's next step is the body's outcome.
    """
    received = yield body
    while isinstance(received, BODY_EVENTS):
        received = yield _take(run, received)
    # The pause that paused it may not have ended: one in a task run, which outlives the
    # body, or one whose end an interrupt cut short. The flow run goes on to its end.
    _leave_pause(run, "The body ended while the flow run was paused.")
    return received


def _take(run: FlowRun, event: BodyEvent) -> AwaitingBody:
    """Set the state a body event implies (the only place a flow run becomes Paused).

    Raises nothing of its own: the handle that sent the event is not the lifecycle's
    driver. An interrupt that lands here all the same is the handle's to pass on.
    """
    if type(event) is PauseEnded:
        _leave_pause(run, event.how)  # (a pause it refused left the run as it was)
        return _TAKEN
    if run.state.is_paused():
        return AwaitingBody(
            f"pause_flow_run() found flow run {run.name!r} paused already (by another "
            "thread of it): a flow run waits in one pause at a time."
        )
    set_state(run, Paused(f"Waiting to be resumed (key {event.key!r})."))
    return _TAKEN


_TAKEN = AwaitingBody()


def _leave_pause(run: FlowRun, how: str) -> None:
    """Move the run out of Paused, if it is (``how``: what ended the pause)."""
    if run.state.is_paused():
        set_state(run, Running(how))


def _begin_attempt(ctx: FlowRunContext, flow: Flow, outer: Scope) -> None:
    """The attempt's scope, inside the flow run's: its timeout from now, and its cancel
    (Stop, the timeout, a parent's cancel) cancels every run the attempt started. The
    runner holds those runs, so a task run needs no scope of its own for this (a large
    map allocates none); each cancelled run's handle reacts to its own scope."""
    scope = ctx.scope = Scope.inside(outer, flow.timeout_seconds, "Flow run")
    runner = ctx.task_runner
    scope.on_cancel(lambda _: runner.cancel_all())
    ctx.deadline = scope.timed()


def _prepare(
    flow: Flow, run: FlowRun, parameters: dict[str, Any], wait_for: Any
) -> Lifecycle[dict[str, Any] | State]:
    """Name the run, wait for its upstreams, then its parameters (or why it fails)."""
    if flow.flow_run_name is not None:  # named once per call, with the run's context on
        try:
            run.name = flow.make_run_name(run.parameters)
        except Exception as error:  # e.g. the callable returned no string: the call fails
            return Failed(error)
    run_logger(flow_run=run).info("Beginning flow run %r for flow %r", run.name, flow.name)
    upstream = find_upstream(parameters, run.parent, wait_for)
    if upstream.futures:
        yield WaitFor(upstream.futures)
    try:
        check_wait_for(wait_for)
        if upstream.needs_resolving:
            parameters = resolve(parameters)
        return flow.validate(parameters)
    except (UpstreamTaskError, ParameterTypeError) as error:
        return Failed(error)


def _complete(value: Any, ctx: FlowRunContext) -> Lifecycle[State]:
    """Wait for the body's futures, then the final state from its return value."""
    # Wait for every run the body started (runs may start more while we wait).
    waited = 0
    while waited < len(ctx.futures):
        pending = ctx.futures[waited:]
        waited += len(pending)
        if not (yield WaitFor(pending, ctx.deadline)):
            return TimedOut(TimeoutError("The flow run timed out waiting for its task runs."))
    if isinstance(value, types.GeneratorType):  # not portable: Prefect keeps its items
        value = list(value)
    state = Completed(value)
    if needs_looking_at(value):  # futures become their States; States decide (returns.py)
        run = ctx.flow_run
        state = returned_state(futures_to_states(value), (*run.task_runs, *run.subflow_runs))
    _warn_unobserved_failures(ctx)
    return state


def _warn_unobserved_failures(ctx: FlowRunContext) -> None:
    # As in Prefect 3, the return value decides the flow's state. A failed run that the
    # flow never looked at would then pass silently, so say so.
    failed = [
        f.task_run.name
        for f in ctx.futures
        if not f._observed and (f.task_run.state.is_failed() or f.task_run.state.is_crashed())
    ]
    if failed:
        shown = ", ".join(failed[:10]) + (" ..." if len(failed) > 10 else "")
        run_logger(flow_run=ctx.flow_run).warning(
            "%d task run(s) failed, but the flow never used their futures, so it did not fail: %s",
            len(failed),
            shown,
        )


def _failure_state(error: BaseException, run: FlowRun) -> State:
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        raise error  # handled by the caller: cancel everything, then re-raise
    if isinstance(error, CancelledRun) and not _from_a_child(error, run):
        return Cancelled(str(error), error)  # this run's own: cancelled while paused
    if not isinstance(error, Exception):
        return Crashed(error)
    return Failed(error)


def _from_a_child(error: BaseException, run: FlowRun) -> bool:
    # A cancelled task or subflow whose result the body asked for: as in Prefect, the
    # flow fails with it (it is not the flow that was cancelled).
    return any(error is child.state.data for child in (*run.task_runs, *run.subflow_runs))


def _timed_out(state: State, ctx: FlowRunContext, flow: Flow) -> State:
    """A run still going at its deadline is TimedOut, whatever its body did afterwards."""
    if ctx.deadline is None or not ctx.deadline.expired():
        return state
    error = ctx.deadline.error()
    ctx.scope.cancel(str(error))  # the runs it started end now
    return TimedOut(error)


def _finish(flow: Flow, run: FlowRun, state: State) -> Lifecycle[State]:
    remember_sources(run)  # what a later retry compares its tasks against
    if run.parent is not None and state.is_completed():
        run.parent.link_result(run, state.data)  # a task given the result gets an edge
    set_state(run, state)
    log = run_logger(flow_run=run)
    if state.is_completed():
        log.info("Finished in state %r", state)
    else:
        log.error("Finished in state %r", state)
    hooks = _final_hooks(flow, state)
    if hooks:
        yield from run_hooks(hooks, flow, run, state, log)
    return state


def _final_hooks(flow: Flow, state: State) -> list:
    """The hooks for a final state, as Prefect picks them (a crash is not a failure)."""
    if state.is_completed():
        return flow.on_completion_hooks
    if state.is_failed():
        return flow.on_failure_hooks
    if state.is_crashed():
        return flow.on_crashed_hooks
    if state.is_cancelled():
        return flow.on_cancellation_hooks
    return []


def _create_flow_run(
    flow: Flow, args: tuple, kwargs: dict, wait_for: Any
) -> tuple[FlowRun, dict, Any]:
    parameters = flow.bind_parameters(args, kwargs)  # raises ParameterTypeError
    parent_ctx = flow_run_context.get()
    parent = parent_ctx.flow_run if parent_ctx else None
    upstream = find_upstream(parameters, parent, wait_for).edges if parent else {}
    name = f"{flow.name}-{random.getrandbits(24):06x}"  # 6 random hex digits, no UUID
    run = FlowRun(flow, name, parameters, parent, upstream, current_tags.get())
    run.worker = threading.current_thread().name
    if parent is None:
        record_top_level_run(run)
    else:
        parent.subflow_runs.append(run)
    return run, parameters, parent


def _starting(flow: Flow, run: FlowRun) -> Any:
    """The flow run's own runner, not yet entered. When entering it takes a while (a
    cluster starting), the run says so while Pending: its display shows that meanwhile."""
    runner = flow.task_runner.duplicate()
    message = runner.startup_message()
    if message is not None:
        set_state(run, Pending(message))
    return runner


def _enter(flow: Flow, run: FlowRun, runner: Any) -> FlowRunContext:
    parent = flow_run_context.get()
    plan = parent.retry_plan if parent is not None else starting_retry.get()
    if plan is not None and run.parent is None:
        run.retry_of = plan.original
    return FlowRunContext(
        flow,
        run,
        runner,
        log_prints=bool(flow.log_prints),
        is_async=flow.isasync,
        deadline=parent.deadline if parent is not None else None,  # nests in the parent's
        # The flow run's scope: its parent's cancel reaches it (and so its attempts').
        scope=Scope.inside(parent.scope if parent is not None else None, None, "Flow run"),
        retry_plan=plan,
    )


def _body_bindings(ctx: FlowRunContext) -> Bindings:
    if not ctx.log_prints:
        return ()
    enable_print_redirection()
    return ((print_logger, run_logger(flow_run=ctx.flow_run)),)


def _retry_message(attempt: int, flow: Flow) -> str:
    return f"Retry {attempt - 1} of {flow.retries}"


def stopped_state(error: BaseException) -> State:
    """The final state of a flow run stopped by ``error`` outside its body's control."""
    if isinstance(error, (KeyboardInterrupt, asyncio.CancelledError)):
        return Cancelled("Interrupted by the user.", error)
    return Crashed(error, f"kernelflow failed running this flow: {error!r}")

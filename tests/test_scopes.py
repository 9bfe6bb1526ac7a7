"""A cancel or a timeout ends the work it names (issue 24): the body stops, a shared
cache claim is untouched by one waiter's end, and a pause always leaves a final state."""

from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures._base as futures_base
import functools
import signal
import threading
import time

import pytest

import kernelflow
from kernelflow import flow, pause_flow_run, task
from kernelflow._engine.claims import Claim
from kernelflow._engine.semantics import wait_async
from kernelflow._scopes.in_thread_deadline import set_async_exc
from kernelflow._scopes.scope import Scope
from kernelflow.cache_policies import INPUTS, TASK_SOURCE
from kernelflow.context import FlowRunContext
from kernelflow.exceptions import CancelledRun, FlowPauseTimeout
from kernelflow.task_runners import ThreadPoolTaskRunner

log: list = []  # module globals: TASK_SOURCE would hash closure values
started = threading.Event()


@pytest.fixture(autouse=True)
def _empty_log():
    log.clear()
    started.clear()


async def cancel_after(awaitable, seconds):
    """Await ``awaitable`` in a task of its own, cancel it after ``seconds``, see it end."""
    running = asyncio.ensure_future(awaitable)
    await asyncio.sleep(seconds)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running


# --- a cancelled or timed-out async body stops --------------------------------------


def test_cancelling_a_submitted_async_task_stops_its_body():
    @task(timeout_seconds=10)
    async def slow():
        await asyncio.sleep(1)
        log.append("after the sleep")

    @flow
    async def pipeline():
        future = slow.submit()
        await asyncio.sleep(0.2)
        future.cancel()
        await asyncio.sleep(1.3)  # long past the body's sleep
        return future.state.name

    assert asyncio.run(pipeline()) == "Cancelled"
    assert log == []


def test_cancelling_an_async_flow_with_a_timeout_stops_its_body():
    # What the Stop button does to an async cell: the awaiting task is cancelled.
    @flow(timeout_seconds=10)
    async def long_flow():
        await asyncio.sleep(1)
        log.append("after the sleep")

    async def main():
        await cancel_after(long_flow(), 0.2)
        await asyncio.sleep(1.3)

    asyncio.run(main())
    assert log == []
    assert kernelflow.last_run().state.is_cancelled()


def test_an_async_task_past_its_timeout_is_ended_before_it_is_recorded():
    @task(timeout_seconds=0.2)
    async def slow():
        try:
            await asyncio.sleep(1)
        finally:
            log.append("cleanup")  # runs before the TimedOut state is recorded

    @flow
    async def pipeline():
        state = await slow(return_state=True)
        log.append(state.name)

    asyncio.run(pipeline())
    assert log == ["cleanup", "TimedOut"]


# --- one waiter's end never changes a shared cache claim ----------------------------


def test_one_waiters_timeout_leaves_the_claim_to_the_others():
    @task(cache_policy=INPUTS + TASK_SOURCE)
    async def slow_square(x):
        started.set()
        await asyncio.sleep(0.6)
        return x * x

    @flow
    async def holder():
        return await slow_square(7)

    @flow(timeout_seconds=0.2)
    async def impatient():
        return await slow_square(7)

    @flow
    def patient():
        return slow_square(7)

    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        first = pool.submit(lambda: asyncio.run(holder()))
        assert started.wait(5)
        short = pool.submit(lambda: asyncio.run(impatient(return_state=True)))
        time.sleep(0.05)
        other = pool.submit(patient, return_state=True)
        assert short.result(5).name == "TimedOut"
        assert first.result(5) == 49
        state = other.result(5)
    assert state.is_completed(), state
    assert state.result() == 49


def test_a_cancelled_async_waiter_leaves_the_claim_to_the_others():
    claim = Claim.take("scopes-test-key", (threading.get_ident(), None))
    view = Claim.take("scopes-test-key", (None, None))

    asyncio.run(cancel_after(wait_async((view.released,), None), 0.05))
    assert not claim.released.cancelled()
    claim.release()
    assert claim.released.result(0) is None


def test_a_claim_wait_past_its_deadline_ends_timed_out_whatever_the_timeout_class(
    monkeypatch,
):
    # On Python 3.10 concurrent.futures raises its own TimeoutError, not the builtin one:
    # the claim wait must not depend on which class a timed-out result() raises.
    class FuturesTimeout(Exception):
        pass

    monkeypatch.setattr(futures_base, "TimeoutError", FuturesTimeout)

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def slow_cube(x):
        started.set()
        time.sleep(0.6)
        return x**3

    @flow
    def holder():
        return slow_cube(3)

    @flow(timeout_seconds=0.2)
    def impatient():
        return slow_cube(3)

    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        first = pool.submit(holder)
        assert started.wait(5)
        state = impatient(return_state=True)
        assert first.result(5) == 27
    assert state.name == "TimedOut", state
    waiter = kernelflow.last_run().task_runs[0]  # never started: cancelled by the deadline
    assert waiter.state.name == "Cancelled", waiter.history
    assert "Flow run exceeded timeout" in waiter.state.message


# --- every path out of a pause ends in a final state ------------------------------


def test_a_caught_pause_timeout_lets_the_flow_complete():
    @flow
    def patient():
        try:
            pause_flow_run(timeout=0.2)
        except FlowPauseTimeout:
            return "gave up waiting"

    assert patient() == "gave up waiting"
    run = kernelflow.last_run()
    assert [s.name for s in run.history] == ["Pending", "Running", "Paused", "Running", "Completed"]


def test_a_pause_timeout_caught_in_a_subflow_lets_the_parent_complete():
    @flow
    def child():
        try:
            pause_flow_run(timeout=0.2)
        except FlowPauseTimeout:
            return "child gave up"

    @flow
    def parent():
        return child()

    assert parent() == "child gave up"
    sub = kernelflow.last_run().subflow_runs[0]
    assert sub.state.is_completed()


def test_a_caught_pause_timeout_in_an_async_flow_lets_it_complete():
    @flow
    async def patient():
        try:
            await pause_flow_run(timeout=0.2)
        except FlowPauseTimeout:
            return "gave up waiting"

    assert asyncio.run(patient()) == "gave up waiting"
    assert kernelflow.last_run().state.is_completed()


class Stop(BaseException):
    pass


def test_a_base_exception_in_a_pause_crashes_the_flow():
    @flow
    def stopped():
        pause_flow_run(timeout=10)

    def stop_the_pause(waiting_thread):
        wait_until_paused()
        set_async_exc(waiting_thread, Stop)  # raised in the pause's wait loop

    helper = threading.Thread(target=stop_the_pause, args=(threading.get_ident(),))
    helper.start()
    with pytest.raises(Stop):
        stopped()
    helper.join()
    run = kernelflow.last_run()
    assert run.state.is_crashed(), run.history
    assert [s.name for s in run.history][-3:] == ["Paused", "Running", "Crashed"]


def test_a_cancel_answer_caught_by_the_body_lets_the_flow_complete():
    @flow
    def forgiving():
        try:
            pause_flow_run(timeout=10)
        except CancelledRun:
            return "went on without approval"

    def cancel_it():
        wait_until_paused()
        kernelflow.cancel_flow_run(kernelflow.paused_runs()[0])

    helper = threading.Thread(target=cancel_it)
    helper.start()
    assert forgiving() == "went on without approval"
    helper.join()
    assert kernelflow.last_run().state.is_completed()


@pytest.mark.parametrize("is_async", [False, True])
def test_a_pause_ends_with_its_flow_runs_scope(is_async):
    if is_async:

        @flow(timeout_seconds=0.3)
        async def limited():
            await pause_flow_run(timeout=30)

        def call():
            return asyncio.run(limited(return_state=True))
    else:

        @flow(timeout_seconds=0.3)
        def limited():
            pause_flow_run(timeout=30)

        call = functools.partial(limited, return_state=True)

    began = time.monotonic()
    state = call()
    assert time.monotonic() - began < 2
    assert state.name == "TimedOut"
    names = [s.name for s in kernelflow.last_run().history]
    assert names[-3:] == ["Paused", "Running", "TimedOut"]
    assert not kernelflow.paused_runs()


def wait_until_paused():
    for _ in range(500):
        if kernelflow.paused_runs():
            return
        time.sleep(0.01)
    raise AssertionError("the flow never paused")


# --- deep async subflows (issue 30, point 11) ---------------------------------------


def test_async_subflows_nest_as_deep_as_sync_ones():
    @flow
    async def nested(depth):
        if depth == 0:
            return 0
        return 1 + await nested(depth - 1)

    assert asyncio.run(nested(300)) == 300


# --- a sync flow on the main thread is stopped inside a blocking call -------------


def test_a_sync_flow_sleeping_past_its_timeout_ends_at_the_timeout():
    @flow(timeout_seconds=0.5)
    def sleepy():
        time.sleep(5)
        log.append("after the sleep")

    def keep(signum, frame):  # the program's own handler, which must come back
        pass

    previous = signal.signal(signal.SIGALRM, keep)
    try:
        began = time.monotonic()
        state = sleepy(return_state=True)
        took = time.monotonic() - began
        assert signal.getsignal(signal.SIGALRM) is keep
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert state.name == "TimedOut"
    assert took < 2, took
    assert log == []


def test_nested_timeouts_on_the_main_thread_each_end_at_their_own_deadline():
    @flow(timeout_seconds=0.3)
    def inner():
        time.sleep(5)

    @flow(timeout_seconds=1.0)
    def outer():
        log.append(inner(return_state=True).name)
        time.sleep(5)
        log.append("after the outer sleep")

    began = time.monotonic()
    state = outer(return_state=True)
    assert state.name == "TimedOut"
    assert log == ["TimedOut"]
    assert time.monotonic() - began < 2.5


# --- a cancel or timeout stops a body in a thread ---------------------------------


def sleep_then_log(seconds):
    """A body that sleeps in short steps (Python runs between them), then logs."""
    for _ in range(int(seconds / 0.02)):
        time.sleep(0.02)
    log.append("after the sleep")


def cancel_its_scope(future):
    # Whoever cancels the run's scope, the run's handle reacts (future.cancel() is one way).
    future._handle.scope().cancel("Stopped by the test.")
    assert not future.cancel()  # its scope was cancelled already: nothing to do


@pytest.mark.parametrize(
    ("cancel", "message"),
    [
        (lambda future: future.cancel(), "Cancelled while running"),
        (cancel_its_scope, "Stopped by the test."),
    ],
)
def test_a_cancelled_thread_run_stops_its_body(cancel, message):
    body = task(sleep_then_log)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline():
        future = body.submit(0.6)
        while not future.state.is_running():
            time.sleep(0.005)
        cancel(future)
        time.sleep(1)  # long past the body's sleep
        return future.state.name, future.state.message

    name, said = pipeline()
    assert name == "Cancelled" and said.startswith(message)
    assert log == []


def test_a_timed_out_thread_run_stops_its_body():
    body = task(sleep_then_log, timeout_seconds=0.2)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline():
        body.submit(0.6).wait()
        time.sleep(0.8)  # long past the body's sleep

    pipeline()
    run = kernelflow.last_run().task_runs[0]
    assert run.state.name == "TimedOut"
    assert "C call" not in run.state.message  # it was stopped between two sleeps
    assert log == []


# --- one scope tree: a cancel is a scope's, and reaches everything inside it ----------


def test_a_cancelled_scope_reaches_the_scopes_inside_it_until_they_leave():
    flow_run = Scope.inside(None, None, "Flow run")
    first, second = (Scope.inside(flow_run, None, "Flow run") for _ in range(2))
    heard = []
    first.on_cancel(lambda reason: heard.append(("first", reason)))
    second.on_cancel(lambda reason: heard.append(("second", reason)))
    first.left_parent()  # its attempt is over: the run's later cancel is not its concern
    assert flow_run.cancel("Stop")
    assert not flow_run.cancel("again")  # the first reason stands
    assert heard == [("second", "Stop")]
    assert first.cancelled == "Stop"  # a checkpoint inside it still sees the run's cancel
    assert first.timed() is None and Scope.inside(None, 5, "Flow run").timed() is not None


def test_a_flow_runs_cancelled_scope_cancels_the_task_runs_of_its_subflows():
    # The parent's scope holds its subflow's, which holds the subflow's task runs: a
    # cancel of the parent's scope (what Stop and its timeout do) reaches them all.
    body = task(sleep_then_log)
    scopes = []

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def child():
        future = body.submit(2)
        scopes.append(FlowRunContext.get().scope)
        future.wait()
        return future.state.name

    @flow
    def parent():
        outer = FlowRunContext.get().scope
        threading.Timer(0.3, outer.cancel, ("Stopped by the test.",)).start()
        return child()

    began = time.monotonic()
    state = parent()
    assert state == "Cancelled"
    assert time.monotonic() - began < 1.5  # not the body's 2 s
    assert scopes[0].cancelled == "Stopped by the test."
    time.sleep(0.3)
    assert log == []

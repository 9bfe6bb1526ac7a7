"""One Scope for flow and task timeouts; a sync flow's own code stops at its timeout."""

from __future__ import annotations

import time

import pytest

from kernelflow import flow, task
from kernelflow._scopes.scope import FakeClock, Scope, use_clock
from kernelflow.exceptions import CancelledRun, DeadlineExceeded


def test_a_sync_flow_body_busy_in_python_is_stopped_at_its_timeout():
    @flow(timeout_seconds=0.3)
    def spins():
        n = 0
        while True:  # no task call, no wait: only the timeout can end it
            n += 1

    began = time.monotonic()
    state = spins(return_state=True)
    assert state.name == "TimedOut"
    assert isinstance(state.data, TimeoutError)
    assert time.monotonic() - began < 2


def test_a_flow_that_ends_in_time_is_never_interrupted_afterwards():
    @flow(timeout_seconds=0.2)
    def quick():
        return 1

    assert quick() == 1
    time.sleep(0.4)  # past the deadline: nothing may be raised in this thread now


def test_a_timeout_error_raised_by_task_code_is_a_failure_not_a_timeout():
    @task(timeout_seconds=5)
    def calls_an_api():
        raise TimeoutError("the API did not answer")

    @flow
    def uses_it():
        return calls_an_api(return_state=True)

    state = uses_it(return_state=True).result(raise_on_failure=False)  # the task's state
    assert state.name == "Failed" and not isinstance(state.data, DeadlineExceeded)


def test_a_task_timeout_is_timed_out_with_a_message_naming_the_limit():
    @task(timeout_seconds=0.1)
    def slow():
        time.sleep(1)

    state = slow(return_state=True)
    assert state.name == "TimedOut" and isinstance(state.data, DeadlineExceeded)
    assert "timeout_seconds=0.1" in str(state.data)


def test_scopes_nest_count_down_and_name_the_limit_that_ran_out():
    with use_clock(FakeClock()) as clock:
        assert Scope.after(None) is None
        flow_scope = Scope.after(60, "Flow run")
        assert Scope.after(None, "Task run", flow_scope) is flow_scope  # no object of its own
        task_scope = Scope.after(1, "Task run", flow_scope)
        assert task_scope.remaining() == 1 and not task_scope.expired()
        clock.advance(1)
        assert task_scope.expired() and not flow_scope.expired()
        assert "Task run exceeded timeout of 1 second(s)" in str(task_scope.error())
        late_task = Scope.after(120, "Task run", flow_scope)  # cut by its flow run's
        assert late_task.remaining() == 59
        clock.advance(59)
        assert late_task.expired()
        with pytest.raises(TimeoutError, match=r"Flow run exceeded timeout of 60 second\(s\)"):
            late_task.check()


def test_a_cancelled_scope_cancels_every_scope_inside_it_and_wakes_its_waiters():
    flow_scope = Scope()
    task_scope = Scope.after(10, "Task run", flow_scope)
    woken = []
    task_scope.on_cancel(woken.append)
    flow_scope.on_cancel(woken.append)
    assert task_scope.cancelled is None
    flow_scope.cancel("Stopped by the user.")
    assert task_scope.cancelled == "Stopped by the user."
    assert woken == ["Stopped by the user."]  # the flow scope's own waiter
    with pytest.raises(CancelledRun, match="Stopped by the user"):
        task_scope.check()

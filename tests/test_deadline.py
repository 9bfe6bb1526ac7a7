"""One Deadline for flow and task timeouts; a sync flow's own code stops at its timeout."""

from __future__ import annotations

import time

import pytest

from kernelflow import flow, task
from kernelflow._engine.deadline import Deadline, earliest
from kernelflow.exceptions import DeadlineExceeded


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


def test_deadlines_compare_and_count_down():
    assert Deadline.after(None) is None and earliest(None, None) is None
    soon, later = Deadline.after(1, "Task run"), Deadline.after(60, "Flow run")
    assert earliest(later, None, soon) is soon
    assert 0 < soon.remaining() <= 1 and not soon.expired()
    assert Deadline.after(0).expired()
    with pytest.raises(TimeoutError, match=r"Flow run exceeded timeout of 60 second\(s\)"):
        raise later.error()

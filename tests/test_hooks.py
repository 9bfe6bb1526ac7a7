"""State hooks of tasks and flows: which run when, with what, and what a failing hook does."""

import logging

import pytest

from kernelflow import flow, task
from kernelflow.runtime import flow_run
from kernelflow.task_runners import ProcessPoolTaskRunner


class Stop(BaseException):
    """Not an Exception: a flow body raising it crashes."""


def test_task_on_running_hooks_run_before_each_attempt_retries_too():
    calls = []

    def running(tsk, run, state):
        calls.append(("hook", tsk.name, state.name, run.run_count))

    @task(on_running=[running], retries=1)
    def flaky():
        calls.append(("body",))
        if len(calls) < 3:
            raise ValueError("first attempt fails")
        return "ok"

    @flow
    def f():
        return flaky()

    assert f() == "ok"
    assert calls == [
        ("hook", "flaky", "Running", 1),
        ("body",),
        ("hook", "flaky", "Retrying", 2),
        ("body",),
    ]


def test_on_running_hooks_run_for_failed_tasks_and_in_process_pools():
    calls = []

    @task(on_running=[lambda tsk, run, state: calls.append(run.name)])
    def fails():
        raise ValueError("no")

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def f():
        fails.submit().wait()

    f()
    assert calls == ["fails-0"]  # the hook runs here in the session, not in the worker


def test_async_hooks_are_awaited_and_a_failing_hook_leaves_the_rest_to_run(caplog):
    calls = []

    async def first(tsk, run, state):
        calls.append("first")

    def broken(tsk, run, state):
        raise RuntimeError("bad hook")

    def last(tsk, run, state):
        calls.append("last")

    @task(on_running=[first, broken, last], on_completion=[first])
    def t():
        return 1

    @flow
    def f():
        return t()

    with caplog.at_level(logging.INFO, logger="kernelflow"):
        assert f() == 1
    assert calls == ["first", "last", "first"]
    assert "Hook 'first' finished running successfully" in caplog.text
    assert "An error was encountered while running hook 'broken'" in caplog.text
    assert "Hook 'broken' finished" not in caplog.text


def test_flow_on_running_hooks_run_on_each_attempt():
    calls = []

    @flow(retries=1, retry_delay_seconds=0)
    def flaky():
        if len(calls) < 2:
            raise ValueError("first attempt fails")
        return "ok"

    @flaky.on_running
    def running(fl, run, state):
        calls.append((fl.name, state.name))

    assert flaky() == "ok"
    assert calls == [("flaky", "Running"), ("flaky", "Retrying")]


def test_flow_on_crashed_hooks_run_on_a_crash_and_not_on_failure():
    calls = []

    def crashed(fl, run, state):
        calls.append(("crashed", state.name))

    def failed(fl, run, state):
        calls.append(("failed", state.name))

    @flow(on_crashed=[crashed], on_failure=[failed])
    def crashes():
        raise Stop()

    @flow(on_crashed=[crashed], on_failure=[failed])
    def fails():
        raise ValueError("plain failure")

    assert crashes(return_state=True).is_crashed()
    assert fails(return_state=True).is_failed()
    assert calls == [("crashed", "Crashed"), ("failed", "Failed")]


def test_flow_on_cancellation_hooks_run_when_the_flow_is_interrupted():
    calls = []

    @flow(on_cancellation=[lambda fl, run, state: calls.append(state.message)])
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert calls == ["Interrupted by the user."]


def test_flow_run_name_names_the_run_once_per_call_with_its_context():
    names = []

    def name_it():
        names.append(dict(flow_run.parameters))
        return f"run-{flow_run.parameters['n']}"

    attempts = []

    @flow(flow_run_name=name_it, retries=1, retry_delay_seconds=0)
    def named(n):
        attempts.append(n)
        if len(attempts) == 1:
            raise ValueError("retried: the name is not made again")
        return flow_run.name

    assert named(3) == "run-3"
    assert names == [{"n": 3}]

    @flow(flow_run_name="sum-{a}-{b}")
    def templated(a, b=2):
        return flow_run.name

    assert templated(1) == "sum-1-2"


def test_a_flow_run_name_callable_returning_no_string_fails_the_call():
    @flow(flow_run_name=lambda: None)
    def named():
        return 1

    with pytest.raises(TypeError, match="for 'flow_run_name' returned type NoneType"):
        named()
    assert named(return_state=True).is_failed()

"""The task lifecycle: retries, delays, jitter, retry conditions, timeouts, hooks, crashes."""

import threading
import time

import pytest

from kernelflow import flow, task
from kernelflow.tasks import exponential_backoff


def flaky(failures, error=ValueError):
    """A function that fails `failures` times, then returns the number of calls."""
    calls = []

    def fn():
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise error(f"failure {len(calls)}")
        return len(calls)

    fn.calls = calls
    return fn


def test_retries_until_success_with_history():
    fn = flaky(2)
    t = task(retries=2)(fn)
    state = t(return_state=True)
    assert state.is_completed() and state.result() == 3
    assert len(fn.calls) == 3


def test_retries_exhausted_fail_with_the_last_exception():
    fn = flaky(5)
    with pytest.raises(ValueError, match="failure 3"):
        task(retries=2)(fn)()
    assert len(fn.calls) == 3


def test_retry_delays_from_a_list_are_waited():
    fn = flaky(2)
    task(retries=2, retry_delay_seconds=[0.1, 0.2])(fn)()
    gaps = [b - a for a, b in zip(fn.calls, fn.calls[1:], strict=False)]
    assert 0.09 <= gaps[0] < 0.19 and 0.19 <= gaps[1] < 0.4


def test_exponential_backoff_and_jitter_bounds():
    assert exponential_backoff(0.5)(4) == [0.5, 1.0, 2.0, 4.0]
    fn = flaky(1)
    task(retries=1, retry_delay_seconds=0.1, retry_jitter_factor=0.5)(fn)()
    gap = fn.calls[1] - fn.calls[0]
    assert 0.05 <= gap < 0.2


def test_retry_condition_fn_can_stop_retries():
    seen = []

    def only_connection_errors(task_, task_run, state):
        seen.append((task_.name, task_run.run_count, state.name))
        return isinstance(state.result(raise_on_failure=False), ConnectionError)

    wrong = flaky(3, error=KeyError)
    with pytest.raises(KeyError):
        task(retries=3, retry_condition_fn=only_connection_errors)(wrong)()
    assert len(wrong.calls) == 1
    right = flaky(2, error=ConnectionError)
    assert task(retries=3, retry_condition_fn=only_connection_errors)(right)() == 3
    assert seen[0] == ("fn", 1, "Failed")


def test_retrying_state_is_visible_between_attempts():
    import kernelflow

    fn = flaky(1)

    @flow
    def f():
        task(retries=1, retry_delay_seconds=0)(fn)()

    f()
    history = [s.name for s in kernelflow.last_run().task_runs[0].history]
    assert history == ["Pending", "Running", "Retrying", "Completed"]


def test_sync_timeout_fails_with_timeout_error_and_stops_the_body_when_its_c_call_returns():
    finished = threading.Event()

    @task(timeout_seconds=0.1)
    def slow():
        time.sleep(0.5)
        finished.set()

    started = time.perf_counter()
    state = slow(return_state=True)
    assert time.perf_counter() - started < 0.4
    assert state.name == "TimedOut" and state.is_failed()
    with pytest.raises(TimeoutError, match="timeout_seconds=0.1"):
        state.result()
    # Blocked in one long C call (the sleep), the body could not be stopped sooner; the
    # run says so, and nothing after the sleep ran.
    assert "C call" in state.message
    assert not finished.wait(1)


def test_timeouts_are_retried():
    calls = []

    @task(timeout_seconds=0.1, retries=1)
    def first_slow():
        calls.append(1)
        if len(calls) == 1:
            time.sleep(0.5)
        return "second try"

    assert first_slow() == "second try"


def test_task_sees_its_run_context_under_a_timeout():
    from kernelflow.runtime import task_run

    @task(timeout_seconds=5)
    def named():
        return task_run.name

    assert named().startswith("named-")


def test_hooks_get_task_run_and_state_and_cannot_change_the_outcome(kf_logs):
    calls = []

    def on_completion(task_, task_run, state):
        calls.append(("completed", task_.name, task_run.name, state.result()))

    def on_failure(task_, task_run, state):
        calls.append(("failed", type(state.result(raise_on_failure=False)).__name__))

    def broken_hook(task_, task_run, state):
        raise RuntimeError("hook bug")

    @task(on_completion=[on_completion, broken_hook], on_failure=[on_failure])
    def maybe(fail):
        if fail:
            raise ValueError()
        return "value"

    assert maybe(False) == "value"
    with pytest.raises(ValueError):
        maybe(True)
    assert calls == [("completed", "maybe", "maybe-0", "value"), ("failed", "ValueError")]
    assert any("broken_hook" in r.getMessage() for r in kf_logs)


def test_hook_decorator_forms():
    calls = []

    @task
    def t(fail):
        if fail:
            raise ValueError()

    @t.on_completion
    def done(task_, run, state):
        calls.append("done")

    @t.on_failure
    def failed(task_, run, state):
        calls.append("failed")

    t(False)
    t(True, return_state=True)
    assert calls == ["done", "failed"]
    assert done.__name__ == "done"  # the decorator returns the function itself


def test_base_exceptions_crash_the_run_and_are_not_retried():
    calls = []

    @task(retries=3)
    def exits():
        calls.append(1)
        raise SystemExit(3)

    state = exits(return_state=True)
    assert state.is_crashed() and len(calls) == 1
    with pytest.raises(SystemExit):
        state.result()


def test_keyboard_interrupt_cancels_the_run_and_propagates():
    import kernelflow

    @task
    def interrupted():
        raise KeyboardInterrupt

    @flow
    def f():
        interrupted()

    with pytest.raises(KeyboardInterrupt):
        f()
    run = kernelflow.last_run()
    assert run.state.is_cancelled() and run.task_runs[0].state.is_cancelled()

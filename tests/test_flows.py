"""Flows: parameters, return values, failures, subflows, retries, timeouts, hooks, records."""

import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.exceptions import InvalidOptionError, ParameterTypeError
from kernelflow.states import Cancelling, Completed, Failed
from kernelflow.task_runners import ThreadPoolTaskRunner


@task
def double(x):
    return 2 * x


def test_parameters_are_validated_and_coerced():
    @flow
    def typed(n: int, names: list[str], untyped=None):
        return n, names, untyped

    assert typed("3", ["a"], untyped=object) == (3, ["a"], object)
    with pytest.raises(ParameterTypeError) as raised:
        typed("three", [1])
    message = str(raised.value)
    assert "n:" in message and "names.0:" in message and "validate_parameters=False" in message
    failed = kernelflow.last_run()
    assert failed.state.is_failed() and failed.task_runs == []


def test_validation_can_be_turned_off_and_odd_parameter_names_work():
    @flow(validate_parameters=False)
    def loose(n: int):
        return n

    @flow
    def odd(copy: int, schema: str = "s"):
        return copy, schema

    assert loose("3") == "3"
    assert odd("4") == (4, "s")


def test_flow_returns_value_and_reraises_the_tasks_own_exception():
    @task
    def explode():
        raise LookupError("the task's own error")

    @flow
    def fine():
        return double(21)

    @flow
    def broken():
        explode()

    assert fine() == 42
    with pytest.raises(LookupError, match="the task's own error"):
        broken()
    state = broken(return_state=True)
    assert state.is_failed() and isinstance(state.result(raise_on_failure=False), LookupError)


def test_returned_futures_become_their_states_as_in_prefect():
    @flow
    def returns_futures():
        return double.submit(1), [double.submit(2)], {"k": double.submit(3)}, double.map([4, 5])

    one, (two,), three, mapped = returns_futures()
    assert [one.result(), two.result(), three["k"].result()] == [2, 4, 6]
    assert [state.result() for state in mapped] == [8, 10]

    @flow
    def returns_a_map():
        return double.map([1, 2])

    states = returns_a_map()  # a plain list of States, not a list of futures
    assert type(states) is list and [s.result() for s in states] == [2, 4]

    @flow
    def returns_one_future():
        return double.submit(21)

    state = returns_one_future()  # Prefect: the flow's value is the run's final State
    assert state.is_completed() and state.result() == 42


@task
def explode():
    raise LookupError("the task's own error")


def test_returned_states_decide_the_flows_final_state():
    @flow
    def returns_a_failed_future():
        return explode.submit()

    state = returns_a_failed_future(return_state=True)
    assert state.is_failed() and state.message == "1/1 states failed."
    with pytest.raises(LookupError, match="the task's own error"):
        returns_a_failed_future()

    @flow
    def returns_states():
        return double(1, return_state=True), explode(return_state=True), explode.submit()

    state = returns_states(return_state=True)
    assert state.is_failed() and state.message == "2/3 states failed."
    first, second, _ = state.result(raise_on_failure=False)
    assert first.result() == 2 and second.is_failed()

    @flow
    def returns_a_state_made_by_hand():
        return Failed(message="soft fail", data="partial")

    state = returns_a_state_made_by_hand(return_state=True)
    assert state.is_failed() and state.message == "soft fail"
    assert state.data == "partial"


def test_a_returned_cancelling_state_ends_cancelled_and_runs_cancellation_hooks():
    called = []

    @flow(on_cancellation=[lambda f, run, state: called.append(("cancel", state.name))])
    def child():
        return Cancelling()

    @flow(on_failure=[lambda f, run, state: called.append(("failed", state.name))])
    def parent():
        child()

    assert parent(return_state=True).is_failed()
    assert child(return_state=True).is_cancelled()
    assert called == [("cancel", "Cancelled"), ("failed", "Failed"), ("cancel", "Cancelled")]


def test_a_task_returning_a_state_ends_in_it():
    # As Prefect 3.8.8: a direct call gives the State the body returned (never raising),
    # the run ends in it, and the flow carries on; a future's result() gives its data.
    @task
    def gives_completed():
        return Completed(message="all good", data=123)

    @task
    def soft_fail():
        return Failed(message="soft fail")

    @task
    def after() -> str:
        return "after ran"

    @flow
    def both():
        completed, soft = gives_completed(), soft_fail()
        return completed, soft, gives_completed.submit().result(), after()

    completed, soft, value, last = both()
    assert completed.is_completed() and completed.result() == 123
    assert soft.is_failed() and soft.message == "soft fail"
    assert (value, last) == (123, "after ran")
    runs = {run.task_name: run.state for run in kernelflow.last_run().task_runs}
    assert runs["soft_fail"] is soft and kernelflow.last_run().state.is_completed()


def test_a_subflow_runs_with_its_own_runner_and_record():
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def child(x):
        return double.submit(x).result()

    @flow
    def parent():
        upstream = double.submit(5)
        return child(upstream)  # a future into a subflow resolves to its value

    assert parent() == 20
    run = kernelflow.last_run()
    assert run.flow.name == "parent" and len(run.subflow_runs) == 1
    sub = run.subflow_runs[0]
    assert sub.parent is run and sub.state.is_completed()
    assert sub.upstream == {"x": frozenset({run.task_runs[0].id})}
    assert [r.name for r in sub.task_runs] == ["double-0"]
    assert kernelflow.runs()[-1] is run  # subflows are not top-level runs


def test_flow_retries_rerun_the_body():
    attempts = []

    @flow(retries=2, retry_delay_seconds=0)
    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("not yet")
        return "ok"

    assert flaky() == "ok"
    assert len(attempts) == 3
    assert [s.name for s in kernelflow.last_run().history] == [
        "Pending",
        "Running",
        "Retrying",
        "Retrying",
        "Completed",
    ]


def test_flow_timeout_fails_with_timeout_error_at_the_next_checkpoint():
    @task
    def slow():
        time.sleep(5)

    @flow(timeout_seconds=0.3)
    def too_long():
        slow()

    started = time.perf_counter()
    state = too_long(return_state=True)
    assert time.perf_counter() - started < 2
    assert state.name == "TimedOut" and isinstance(state.data, TimeoutError)
    with pytest.raises(TimeoutError):
        state.result()


def test_flow_timeout_bounds_waits_on_submitted_runs():
    @task
    def slow():
        time.sleep(3)

    @flow(timeout_seconds=0.3)
    def waits():
        slow.submit().result()

    started = time.perf_counter()
    with pytest.raises(TimeoutError):
        waits()
    assert time.perf_counter() - started < 2


def test_flow_hooks_run_and_errors_in_hooks_do_not_change_the_outcome(kf_logs):
    calls = []

    def on_done(flow_, run, state):
        calls.append(("done", flow_.name, state.name))

    def on_fail(flow_, run, state):
        calls.append(("fail", run.name == kernelflow.last_run().name, state.name))
        raise RuntimeError("hook bug")

    @flow(on_completion=[on_done], on_failure=[on_fail])
    def hooked(fail: bool):
        if fail:
            raise ValueError("x")
        return 1

    assert hooked(False) == 1
    with pytest.raises(ValueError):
        hooked(True)
    assert calls == [("done", "hooked", "Completed"), ("fail", True, "Failed")]
    assert any("hook bug" not in r.getMessage() and "Hook" in r.getMessage() for r in kf_logs)


def test_flow_log_prints_goes_to_the_run_logger(kf_logs, capsys):
    @task
    def chatty():
        print("from the task")

    @task(log_prints=False)
    def quiet():
        print("to stdout")

    @flow(log_prints=True)
    def talks():
        print("from the flow")
        chatty()
        quiet()

    talks()
    messages = {(r.getMessage(), getattr(r, "task_run_name", None)) for r in kf_logs}
    assert ("from the flow", None) in messages
    assert ("from the task", "chatty-0") in messages
    assert capsys.readouterr().out == "to stdout\n"
    print("after the flow")
    assert capsys.readouterr().out == "after the flow\n"


def test_get_run_logger_is_tagged_with_run_names(kf_logs):
    from kernelflow import get_run_logger

    @task
    def logs():
        get_run_logger().warning("inside task")

    @flow(name="logging-flow")
    def logging_flow():
        get_run_logger().warning("inside flow")
        logs()

    logging_flow()
    task_record = next(r for r in kf_logs if r.getMessage() == "inside task")
    flow_record = next(r for r in kf_logs if r.getMessage() == "inside flow")
    assert task_record.task_run_name == "logs-0"
    assert task_record.flow_run_name == flow_record.flow_run_name == kernelflow.last_run().name


def test_unobserved_failures_are_reported_but_do_not_fail_the_flow(kf_logs):
    @task
    def fails():
        raise ValueError("ignored")

    @flow
    def ignores():
        fails.submit()
        return "finished"

    assert ignores() == "finished"
    assert any("fails-0" in r.getMessage() and "never used" in r.getMessage() for r in kf_logs)


def test_flow_run_records_keep_states_timings_and_edges():
    @task
    def listify(x):
        return [x, x]

    @flow
    def recorded(x: int):
        a = double.submit(x)
        b = listify(a)  # a future argument: an edge
        return double(b)  # a plain value returned by a task: an edge too

    assert recorded(1) == [2, 2, 2, 2]
    run = kernelflow.last_run()
    assert run.parameters == {"x": 1} and run.state.is_completed() and run.duration > 0
    first, second, third = run.task_runs
    assert second.upstream == {"x": frozenset({first.id})}
    assert third.upstream == {"x": frozenset({second.id})}
    assert all(r.start_time <= r.end_time for r in run.task_runs)
    assert first.worker.startswith("kernelflow-worker") and second.worker == "MainThread"


def test_bad_flow_options_fail_at_decoration():
    for options, name in [
        ({"retries": -1}, "retries"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"task_runner": "threads"}, "task_runner"),
        ({"validate_parameters": "yes"}, "validate_parameters"),
        ({"on_failure": [1]}, "on_failure"),
        ({"retry_delay_seconds": -1}, "retry_delay_seconds"),
    ]:
        with pytest.raises(InvalidOptionError, match=name):
            flow(**options)(lambda: None)


def test_flow_name_and_runner_class():
    @flow(task_runner=ThreadPoolTaskRunner)
    def my_pipeline():
        return 1

    assert my_pipeline.name == "my-pipeline"
    assert isinstance(my_pipeline.task_runner, ThreadPoolTaskRunner)
    assert my_pipeline.with_options(name="renamed").name == "renamed"


# --- Prefect's options: flow_run_name, hooks, result options ------------------------------


def test_flow_run_name_is_stored_checked_and_filled_in():
    from kernelflow.exceptions import InvalidOptionError

    @flow(flow_run_name="load-{day}")
    def load(day, region="eu"):
        return day

    assert load.flow_run_name == "load-{day}"
    assert load.make_run_name({"day": 3, "region": "eu"}) == "load-3"
    assert load.with_options(flow_run_name=lambda: "named").make_run_name({}) == "named"
    assert flow(load.fn).make_run_name({"day": 1}).startswith("load-")
    with pytest.raises(InvalidOptionError, match="refers to {month}"):
        flow(flow_run_name="load-{month}")(load.fn)

    class NotAName:
        pass

    with pytest.raises(TypeError, match="Expected string or callable for 'flow_run_name'"):
        flow(flow_run_name=NotAName())(load.fn)
    load.flow_run_name = NotAName()  # set after decoration: refused when a run is named
    with pytest.raises(TypeError, match="got NotAName instead"):
        load.make_run_name({"day": 1})
    with pytest.raises(TypeError, match="returned type NoneType but a string is required"):
        flow(flow_run_name=lambda: None)(load.fn).make_run_name({"day": 1})


@pytest.mark.parametrize(
    "option", ["on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running"]
)
def test_every_flow_hook_option_takes_a_list_or_the_decorator_form(option):
    def first(flow, flow_run, state):
        pass

    def second(flow, flow_run, state):
        pass

    @flow(**{option: [first]})
    def pipeline():
        return 1

    assert getattr(pipeline, option)(second) is second  # @pipeline.on_...
    assert getattr(pipeline, f"{option}_hooks") == [first, second]
    assert getattr(pipeline.with_options(name="other"), f"{option}_hooks") == [first, second]
    with pytest.raises(TypeError, match=f"Expected iterable for '{option}'; got function"):
        flow(**{option: first})(pipeline.fn)
    with pytest.raises(TypeError, match=f"Expected callables in '{option}'; got str"):
        flow(**{option: [first, "second"]})(pipeline.fn)
    with pytest.raises(TypeError, match=rf"@flow\({option}=\[hook1, hook2\]\)"):
        flow(**{option: ["x"]})(pipeline.fn)


def test_result_options_on_flows():
    from kernelflow.filesystems import LocalFileSystem

    @flow(result_storage=LocalFileSystem(basepath="~/results"), result_serializer="json")
    def pipeline():
        return 1

    assert pipeline.result_storage == Path("~/results").expanduser()
    assert pipeline.result_serializer == "json" and pipeline.persist_result is True
    assert pipeline.cache_result_in_memory is True
    assert (
        flow(persist_result=False, cache_result_in_memory=False)(pipeline.fn).persist_result
        is False
    )
    assert flow(pipeline.fn).persist_result is None
    with pytest.raises(ValueError, match="result_serializer"):
        flow(result_serializer="yaml")(pipeline.fn)
    with pytest.raises(ValueError, match="cache_result_in_memory"):
        flow(cache_result_in_memory="no")(pipeline.fn)


def test_timeout_zero_means_none_and_impossible_timeouts_are_refused():
    @flow(timeout_seconds=5)
    def pipeline():
        return 1

    assert pipeline.with_options(timeout_seconds=0).timeout_seconds is None
    for bad in (float("inf"), float("nan"), 1e10, -1):
        with pytest.raises(ValueError, match="timeout_seconds"):
            pipeline.with_options(timeout_seconds=bad)
    with pytest.raises(ValueError, match="retry_delay_seconds"):
        pipeline.with_options(retry_delay_seconds=float("nan"))


def test_serialize_parameters_gives_json_values_or_a_type_placeholder():
    @flow
    def pipeline(x, y):
        return x

    class Cyclic:
        def __init__(self):
            self.me = self

    assert pipeline.serialize_parameters({"x": {"a": (1, 2)}, "y": Cyclic()}) == {
        "x": {"a": [1, 2]},
        "y": "<Cyclic>",
    }


def test_a_subflow_waits_for_wait_for_and_fails_without_running_after_a_failure():
    ran = []

    @flow
    def child(y):
        ran.append(y)
        return y

    @task
    def slow():
        time.sleep(0.05)
        ran.append("slow")

    @flow
    def parent():
        first = child(2, wait_for=[slow.submit()])
        failed = child(3, wait_for=[explode.submit()], return_state=True)
        return first, failed

    first, failed = parent()
    assert first == 2 and ran == ["slow", 2]
    assert failed.is_failed() and "did not complete" in failed.message
    run = kernelflow.last_run()
    assert run.subflow_runs[0].upstream == {"wait_for": frozenset({run.task_runs[0].id})}

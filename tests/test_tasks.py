"""Task definitions: option checks at decoration time, calls, names, options, runtime."""

import datetime
import time

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.exceptions import InvalidOptionError
from kernelflow.runtime import flow_run, task_run
from kernelflow.tasks import Task, exponential_backoff


def f(x, y=1):
    return x + y


@pytest.mark.parametrize(
    "options, option_named",
    [
        ({"retries": -1}, "retries"),
        ({"retries": 1.5}, "retries"),
        ({"retry_delay_seconds": -2}, "retry_delay_seconds"),
        ({"retry_delay_seconds": [1] * 51}, "retry_delay_seconds"),
        ({"retry_delay_seconds": [1, "x"]}, "retry_delay_seconds"),
        ({"retries": 60, "retry_delay_seconds": exponential_backoff(1)}, "retry_delay_seconds"),
        ({"retry_jitter_factor": -0.5}, "retry_jitter_factor"),
        ({"timeout_seconds": -1}, "timeout_seconds"),
        ({"timeout_seconds": float("inf")}, "timeout_seconds"),
        ({"timeout_seconds": float("nan")}, "timeout_seconds"),
        ({"timeout_seconds": 1e10}, "timeout_seconds"),
        ({"retries": 1, "retry_delay_seconds": float("nan")}, "retry_delay_seconds"),
        ({"retries": 2, "retry_delay_seconds": [1, float("inf")]}, "retry_delay_seconds"),
        ({"retries": 1, "retry_delay_seconds": lambda n: 1 / 0}, "retry_delay_seconds"),
        ({"retry_jitter_factor": float("nan")}, "retry_jitter_factor"),
        ({"timeout_seconds": "10"}, "timeout_seconds"),
        ({"on_completion": [print, 3]}, "on_completion"),
        ({"on_failure": "hook"}, "on_failure"),
        ({"on_commit": [1]}, "on_commit"),
        ({"on_rollback": [None]}, "on_rollback"),
        ({"retry_condition_fn": 5}, "retry_condition_fn"),
        ({"cache_key_fn": "key"}, "cache_key_fn"),
        ({"cache_expiration": "soon"}, "cache_expiration"),
        ({"cache_policy": "INPUTS"}, "cache_policy"),
        ({"tags": "etl"}, "tags"),
        ({"name": ""}, "name"),
        ({"log_prints": "yes"}, "log_prints"),
        ({"persist_result": 1}, "persist_result"),
        ({"refresh_cache": "no"}, "refresh_cache"),
        ({"result_serializer": "yaml"}, "result_serializer"),
        ({"result_storage": 42}, "result_storage"),
        ({"task_run_name": "run-{z}"}, "task_run_name"),
        ({"task_run_name": 7}, "task_run_name"),
    ],
)
def test_bad_options_fail_at_decoration_naming_the_option(options, option_named):
    with pytest.raises(InvalidOptionError, match=option_named):
        task(**options)(f)


def test_good_options_are_normalised():
    t = task(
        retries=3,
        retry_delay_seconds=exponential_backoff(2),
        tags=["a", "b"],
        cache_expiration=60,
        timeout_seconds=5,
        task_run_name="add-{x}",
    )(f)
    assert t.retry_delays == (2.0, 4.0, 8.0)
    assert t.tags == {"a", "b"}
    assert t.cache_expiration == datetime.timedelta(seconds=60)
    assert t.timeout_seconds == 5.0
    assert task(retry_delay_seconds=[1, 2])(f).retry_delays == (1.0, 2.0)


def test_decorator_forms_and_metadata():
    @task
    def plain(x):
        """Doc."""
        return x

    @task(name="custom", description="described", version="1")
    def named(x):
        return x

    assert isinstance(plain, Task) and plain.name == "plain" and plain.description == "Doc."
    assert (named.name, named.description, named.version) == ("custom", "described", "1")
    assert plain(3) == 3  # a direct call outside a flow runs it


def test_call_return_state_and_exceptions_outside_a_flow():
    @task
    def boom():
        raise KeyError("missing")

    state = boom(return_state=True)
    assert state.is_failed() and isinstance(state.result(raise_on_failure=False), KeyError)
    with pytest.raises(KeyError, match="missing"):
        boom()


def test_submit_and_map_outside_a_flow_use_the_background_runner():
    @task
    def double(x):
        return 2 * x

    future = double.submit(21)
    assert future.result(timeout=10) == 42
    assert double.map([1, 2, 3]).result(timeout=10) == [2, 4, 6]
    assert future.task_run.worker.startswith("kernelflow-worker")
    assert double.delay(5).result(timeout=10) == 10
    assert double.apply_async((6,)).result(timeout=10) == 12


def test_with_options_copies_and_overrides():
    calls = []

    @task(retries=2, tags=["x"])
    def t(v):
        return v

    @t.on_completion
    def hook(task_, run, state):
        calls.append(state.result())

    t2 = t.with_options(name="other", tags=["y"])
    assert (t2.name, t2.retries, t2.tags) == ("other", 2, {"y"})
    assert t2.fn is t.fn and t.name == "t"
    t2(4)
    assert calls == [4]  # hooks added with the decorator form carry over
    with pytest.raises(InvalidOptionError, match="retries"):
        t.with_options(retries=-1)
    with pytest.raises(TypeError, match="unknown option"):
        t.with_options(retires=1)


def test_task_run_names_from_templates_callables_and_counters():
    @task(task_run_name="load-{path}")
    def load(path):
        return task_run.name

    @task(task_run_name=lambda: "fixed")
    def fixed():
        return task_run.name

    @task(task_run_name=lambda parameters: f"p-{parameters['n']}")
    def with_params(n):
        return task_run.name

    @task
    def plain():
        return task_run.name

    @flow
    def names():
        return [
            load("a.csv"),
            fixed(),
            with_params(n=7),
            plain(),
            plain(),
            load.submit("b").result(),
        ]

    assert names() == ["load-a.csv", "fixed", "p-7", "plain-0", "plain-1", "load-b"]


def test_runtime_describes_the_current_runs():
    @task
    def inside(x):
        return task_run.name, task_run.parameters, flow_run.name, task_run.id

    @flow
    def outer(a: int):
        return inside(a), flow_run.parameters

    (name, params, flow_name, run_id), flow_params = outer(3)
    assert name == "inside-0" and params == {"x": 3} and flow_params == {"a": 3}
    last = kernelflow.last_run()
    assert flow_name == last.name and run_id == str(last.task_runs[0].id)
    assert task_run.name is None and flow_run.parameters == {}


def test_tags_combine_task_and_context_tags():
    from kernelflow import tags

    @task(tags=["own"])
    def t():
        return task_run.tags

    with tags("outer"):
        with tags("inner"):
            assert t() == ["inner", "outer", "own"]
    assert t() == ["own"]


def test_async_task_called_outside_a_flow_is_awaitable():
    import asyncio

    @task
    async def coro(x):
        await asyncio.sleep(0)
        return x * 3

    assert asyncio.run(coro(2)) == 6


def test_task_run_name_templates_see_the_values_of_futures():
    @task
    def reading(city):
        return {"city": city, "temp": 20}

    @task(task_run_name="report-{reading[city]}")
    def report(reading):
        return task_run.name

    @flow
    def weather():
        return report.map(reading.map(["Oslo", "Lima"])).result()

    assert weather() == ["report-Oslo", "report-Lima"]
    names = [r.name for r in kernelflow.last_run().task_runs]
    assert names[-2:] == ["report-Oslo", "report-Lima"]


# --- Prefect's hook options, run names, attributes ------------------------------------------


@pytest.mark.parametrize(
    "option", ["on_completion", "on_failure", "on_running", "on_commit", "on_rollback"]
)
def test_every_task_hook_option_takes_a_list_or_the_decorator_form(option):
    def first(*args):
        pass

    def second(*args):
        pass

    @task(**{option: [first]})
    def work():
        return 1

    assert getattr(work, option)(second) is second
    assert getattr(work, f"{option}_hooks") == [first, second]
    assert getattr(work.with_options(name="again"), f"{option}_hooks") == [first, second]
    with pytest.raises(TypeError, match=f"Expected iterable for '{option}'; got function"):
        task(**{option: first})(work.fn)
    with pytest.raises(TypeError, match=rf"(?s)got int instead.*@task\({option}=\[hook1"):
        task(**{option: [first, 3]})(work.fn)
    with pytest.raises(TypeError, match="decorates a hook function"):
        getattr(work, option)("not a hook")


def test_a_run_name_that_is_neither_a_template_nor_a_callable_fails_the_call():
    class NotAName:
        pass

    @task
    def work():
        return 1

    @flow
    def pipeline():
        return work()

    work.task_run_name = NotAName()
    with pytest.raises(TypeError, match="Expected string or callable for 'task_run_name'"):
        pipeline()
    work.task_run_name = lambda: 42
    with pytest.raises(TypeError, match="returned type int but a string is required"):
        pipeline()


def test_tags_are_a_set_of_the_task_and_with_options_copies_them():
    @task(tags=["a", "b"])
    def work():
        return 1

    other = work.with_options(name="other")
    work.tags.add("c")
    assert work.tags == {"a", "b", "c"} and other.tags == {"a", "b"}


def test_result_options_are_accepted_and_kept():
    from pathlib import Path

    from kernelflow.filesystems import LocalFileSystem

    @task(result_storage=LocalFileSystem(basepath="/tmp/x"), cache_result_in_memory=False)
    def work():
        return 1

    assert work.result_storage == Path("/tmp/x") and work.cache_result_in_memory is False
    with pytest.raises(InvalidOptionError, match="result_storage"):
        task(result_storage=LocalFileSystem)(work.fn)


def test_a_run_waiting_for_itself_is_reported_as_a_deadlock():
    @task
    def hello(name):
        time.sleep(0.2)  # the list has grown by the time the next run checks its wait_for
        return name

    @flow
    def queue():
        waiting = []
        for i in range(2):
            waiting.append(hello.submit(i, wait_for=waiting))  # the same list: it grows
        return [future.result() for future in waiting]

    with pytest.raises(ValueError, match="deadlock"):
        queue()


def test_map_over_a_state_maps_over_its_result_and_retries_log_exhaustion(caplog):
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def add_one(x):
        return x + 1

    @flow
    def mapped():
        return [future.result() for future in add_one.map(numbers(return_state=True))]

    assert mapped() == [2, 3, 4]

    @task(retries=1)
    def always_fails():
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        always_fails()
    assert "Retries are exhausted" in caplog.text


def test_a_generator_task_streams_its_items_and_retries_and_timeouts_cover_iteration():
    attempts = []
    seen = []

    @task(retries=1)
    def numbers(n):
        attempts.append(1)
        for i in range(n):
            if i == 2 and len(attempts) == 1:
                raise ValueError("fails mid-way the first time")
            yield i

    @task(timeout_seconds=0.3)
    def stalls():
        yield "first"
        time.sleep(3)
        yield "never"

    @flow
    def consumes():
        for item in numbers(4):
            seen.append((item, task_run.name))  # the caller's code runs between items
        with pytest.raises(TimeoutError, match=r"exceeded timeout of 0.3 second\(s\)"):
            for item in stalls():
                seen.append(item)
        return numbers.submit(3).result()  # no caller to stream to: the list of items

    assert consumes() == [0, 1, 2]
    assert [item for item, _ in seen[:6]] == [0, 1, 0, 1, 2, 3]  # the retry starts again
    assert seen[-1] == "first"
    run = kernelflow.last_run().task_runs[0]
    assert run.state.is_completed() and run.run_count == 2


def test_stopping_early_ends_a_generator_task_run_completed():
    closed = []

    @task
    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.append(True)

    for item in endless():
        if item == 3:
            break
    time.sleep(0.2)
    assert closed == [True]

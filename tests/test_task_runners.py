"""The task runner contract, run against all three runners.

Real components: the process runner spawns real worker processes, the Dask runner
starts a real (in-process, threaded) LocalCluster. Both are warm, shared backends,
closed at the end of this module.
"""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from kernelflow import allow_failure, flow, tags, task
from kernelflow._runners.remote import close_warm_backends
from kernelflow.exceptions import UpstreamTaskError
from kernelflow.futures import as_completed, wait
from kernelflow.runtime import flow_run, task_run
from kernelflow.task_runners import (
    DaskTaskRunner,
    ProcessPoolTaskRunner,
    TaskRunner,
    ThreadPoolTaskRunner,
)
from tests.cache_support import Notebook

DASK_KWARGS = {
    "n_workers": 1,
    "threads_per_worker": 2,
    "processes": False,
    "dashboard_address": ":0",
}

RUNNERS = {
    "threadpool": lambda: ThreadPoolTaskRunner(max_workers=4),
    "processpool": lambda: ProcessPoolTaskRunner(max_workers=2),
    "dask": lambda: DaskTaskRunner(cluster_kwargs=DASK_KWARGS),
}


@pytest.fixture(scope="module", autouse=True)
def _close_backends():
    yield
    close_warm_backends()


@pytest.fixture(params=list(RUNNERS))
def make_runner(request):
    return RUNNERS[request.param]


@task
def add(x: int, y: int) -> int:
    return x + y


@task
def fail(message: str = "boom") -> None:
    raise ValueError(message)


# --- the runner object --------------------------------------------------------------


def test_context_manager_starts_and_stops(make_runner):
    runner = make_runner()
    assert not runner._started
    with runner as entered:
        assert entered is runner and runner._started
    assert not runner._started


def test_submit_and_map_need_a_started_runner(make_runner):
    runner = make_runner()
    with pytest.raises(RuntimeError, match="not started"):
        runner.submit(add, {"x": 1, "y": 2})
    with pytest.raises(RuntimeError, match="must be started"):
        runner.map(add, {"x": [1], "y": [2]})


def test_starting_twice_is_an_error(make_runner):
    with make_runner() as runner:
        with pytest.raises(RuntimeError, match="already started"):
            runner.__enter__()


def test_duplicate_is_an_equal_unstarted_copy(make_runner):
    runner = make_runner()
    with runner:
        copy = runner.duplicate()
    assert copy == runner and copy is not runner and not copy._started
    assert type(copy) is type(runner)


def test_equality_is_by_type_and_configuration():
    assert ThreadPoolTaskRunner(2) == ThreadPoolTaskRunner(2) != ThreadPoolTaskRunner(3)
    assert ProcessPoolTaskRunner(2) == ProcessPoolTaskRunner(2) != ProcessPoolTaskRunner(3)
    assert ThreadPoolTaskRunner(2) != ProcessPoolTaskRunner(2)
    assert ProcessPoolTaskRunner(2) != ThreadPoolTaskRunner(2)
    assert DaskTaskRunner(address="tcp://127.0.0.1:1") == DaskTaskRunner(
        address="tcp://127.0.0.1:1"
    )
    assert DaskTaskRunner(address="tcp://127.0.0.1:1") != DaskTaskRunner()
    assert DaskTaskRunner(cluster_kwargs={"n_workers": 1}) != DaskTaskRunner(
        cluster_kwargs={"n_workers": 2}
    )


def test_names():
    assert ThreadPoolTaskRunner().name == "threadpool"
    assert ProcessPoolTaskRunner().name == "processpool"
    assert DaskTaskRunner().name == "dask"
    assert all(isinstance(make(), TaskRunner) for make in RUNNERS.values())


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="max_workers"):
        ProcessPoolTaskRunner(max_workers=0)
    with pytest.raises(ValueError, match="not both"):
        DaskTaskRunner(address="tcp://127.0.0.1:1", cluster_kwargs={"n_workers": 1})


# --- running tasks --------------------------------------------------------------------


def test_submit_map_wait_and_result_in_a_flow(make_runner):
    @flow(task_runner=make_runner())
    def pipeline():
        one = add.submit(1, 2)
        many = add.map([1, 2, 3], 10)
        done, not_done = wait([one, *many], timeout=60)
        assert not not_done
        assert sorted(f.result() for f in as_completed(many, timeout=60)) == [11, 12, 13]
        return one.result(), many.result()

    assert pipeline() == (3, [11, 12, 13])


def test_runner_used_directly(make_runner):
    with make_runner() as runner:
        future = runner.submit(add, {"x": 2, "y": 3})
        futures = runner.map(add, {"x": [1, 2], "y": 1})
        assert future.result(timeout=60) == 5
        assert futures.result(timeout=60) == [2, 3]


def test_futures_as_arguments_resolve_to_values(make_runner):
    @flow(task_runner=make_runner())
    def chain():
        a = add.submit(1, 1)
        b = add.submit(a, 10)
        c = add.map(add.map([1, 2], 1), b)  # mapped over a future list, plus a future
        return b.result(), c.result(), b.task_run.upstream["x"] == {a.task_run_id}

    assert chain() == (12, [14, 15], True)


def test_upstream_failure_fails_downstream_without_running_it(make_runner):
    @flow(task_runner=make_runner())
    def broken():
        bad = fail.submit()
        after = add.submit(bad, 1)
        tolerant = add.submit(allow_failure(bad), 1, return_state=True)
        return after.wait(60) and after.state, tolerant

    after, tolerant = broken(return_state=True).result(raise_on_failure=False)  # both failed
    assert after.is_failed() and isinstance(after.data, UpstreamTaskError)
    assert after.data and "fail" in after.message
    # allow_failure passes the exception itself on, so add() fails with its own TypeError
    assert tolerant.is_failed() and isinstance(tolerant.data, TypeError)


def test_task_exception_is_reraised_as_itself(make_runner):
    @flow(task_runner=make_runner())
    def failing():
        return fail.submit("it broke").result()

    with pytest.raises(ValueError, match="it broke") as caught:
        failing()
    if not isinstance(make_runner(), ThreadPoolTaskRunner):
        # From another process: the remote traceback text rides along as the cause.
        assert "raise ValueError(message)" in str(caught.value.__cause__)


def test_a_failure_in_a_cell_defined_task_shows_the_cells_source_lines(make_runner):
    # Cell source lives only in this process's linecache: a worker cannot read it, and
    # cloudpickle >= 3.1.3 renames by-value code to "<dynamic-code>" on the way out.
    cell = Notebook()
    cell.run(
        """
        from kernelflow import task

        def check(row):
            if not row.isdigit():
                raise ValueError(f"not a number: {row!r}")

        @task
        def parse(row):
            check(row.strip())
            return int(row)
        """
    )

    @flow(task_runner=make_runner())
    def load():
        return cell["parse"].submit(" x1 ").result()

    with pytest.raises(ValueError, match="not a number") as caught:
        load()
    if not isinstance(make_runner(), ThreadPoolTaskRunner):
        text = str(caught.value.__cause__)
        cell_file = f"<kernelflow-test-cell-{id(cell)}-1>"
        assert f'File "{cell_file}", line 10, in parse\n    check(row.strip())' in text
        assert f'File "{cell_file}", line 6, in check\n    raise ValueError(' in text
        assert "<dynamic-code>" not in text


def test_run_record_shows_the_states_times_and_worker(make_runner):
    @flow(task_runner=make_runner())
    def one():
        return add.submit(1, 2)

    state = one(return_state=True)
    assert state.result().result() == 3  # a returned future gives its State (Prefect)
    from kernelflow import last_run

    run = last_run().task_runs[0]
    assert [s.name for s in run.history] == ["Pending", "Running", "Completed"]
    assert run.start_time <= run.end_time and run.run_count == 1
    assert run.worker


def test_retries_timeouts_and_hooks(make_runner, tmp_path):
    seen = []
    marker = tmp_path / "attempts"

    @task(retries=2, on_completion=[lambda t, r, s: seen.append((r.name, s.name))])
    def flaky(path):
        with open(path, "a") as f:
            f.write("x")
        with open(path) as f:
            if len(f.read()) < 2:
                raise RuntimeError("first attempt fails")
        return "ok"

    @task(timeout_seconds=0.5)
    def sleepy():
        time.sleep(3)  # Dask cannot stop a running thread: keep teardown short

    @flow(task_runner=make_runner())
    def run_both():
        return flaky.submit(str(marker)), sleepy.submit(return_state=True)

    start = time.monotonic()
    flaky_state, sleepy_state = run_both(return_state=True).result(raise_on_failure=False)
    assert flaky_state.result() == "ok" and marker.read_text() == "xx"
    assert seen == [("flaky-0", "Completed")]
    assert sleepy_state.name == "TimedOut"
    assert time.monotonic() - start < 20


def test_async_tasks_run(make_runner):
    @task
    async def double(x):
        await asyncio.sleep(0.01)
        return 2 * x

    @flow(task_runner=make_runner())
    def run_async():
        return double.map([1, 2, 3]).result()

    assert run_async() == [2, 4, 6]


def test_task_sees_its_run_context_and_tags(make_runner):
    @task
    def who():
        return task_run.name, sorted(task_run.tags), task_run.run_count, flow_run.name

    @flow(task_runner=make_runner())
    def context_flow():
        with tags("blue"):
            return who.submit().result(), flow_run.name

    (name, tag_list, run_count, seen_flow_name), flow_name = context_flow()
    assert (name, tag_list, run_count) == ("who-0", ["blue"], 1)
    assert flow_name and seen_flow_name == flow_name  # the flow run, seen from the task


def test_closures_and_locally_defined_functions_travel(make_runner):
    offset = 100

    def helper(x):
        return x + offset

    @task
    def use_closure(x):
        return helper(x), os.getpid()

    @flow(task_runner=make_runner())
    def closure_flow():
        return use_closure.map([1, 2]).result()

    results = closure_flow()
    assert [value for value, _ in results] == [101, 102]
    if isinstance(make_runner(), ProcessPoolTaskRunner):
        assert all(pid != os.getpid() for _, pid in results)


def test_async_flow_awaits_futures(make_runner):
    @flow(task_runner=make_runner())
    async def async_pipeline():
        first = add.submit(1, 2)
        second = add.submit(first, 3)
        return await first, await second

    assert asyncio.run(async_pipeline()) == (3, 6)


def test_tasks_may_submit_tasks_inside_their_run(make_runner):
    @task
    def outer(x):
        return add.submit(x, 1).result() * 10  # outside a flow there: background runner

    @flow(task_runner=make_runner())
    def nested():
        return outer.map([1, 2]).result()

    assert nested() == [20, 30]


def test_runs_that_end_without_running_never_stall_the_queue(make_runner):
    @task
    def nap(i):
        time.sleep(0.2)
        return i

    @flow(task_runner=make_runner())
    def backlog():
        bad = fail.submit()
        bad.wait(60)
        naps = nap.map(range(4))  # fill the workers, so the next runs must queue
        skipped = add.map(range(30), 1, wait_for=[bad])  # each fails without a call
        finished = [future.wait(30) for future in skipped]
        return sum(finished), [f.state.is_failed() for f in skipped], naps.result()

    finished, failed, naps = backlog()
    assert finished == 30 and all(failed) and naps == [0, 1, 2, 3]

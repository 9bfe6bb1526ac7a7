"""Futures: result, wait, state, callbacks, future lists, wait() and as_completed()."""

import asyncio
import pickle
import threading
import time

import pytest

from kernelflow import allow_failure, flow, task
from kernelflow.exceptions import UpstreamTaskError
from kernelflow.futures import TaskFuture, TaskFutureList, as_completed, wait
from kernelflow.task_runners import ThreadPoolTaskRunner


@task
def sleepy(seconds, value=None):
    time.sleep(seconds)
    return value if value is not None else seconds


@task
def fails(message="boom"):
    raise ValueError(message)


def test_future_state_moves_and_result_waits():
    release = threading.Event()

    @task
    def gated():
        release.wait(5)
        return "done"

    future = gated.submit()
    deadline = time.monotonic() + 5
    while not future.state.is_running() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert future.state.name == "Running" and not future.done()
    assert future.wait(0.01) is False
    release.set()
    assert future.result(timeout=5) == "done"
    assert future.state.is_completed()


def test_result_timeout_raises():
    future = sleepy.submit(0.5)
    with pytest.raises(TimeoutError, match="did not finish within 0.01"):
        future.result(timeout=0.01)
    assert future.result(timeout=5) == 0.5


def test_failed_future_result_raises_own_exception_or_returns_it():
    future = fails.submit("nope")
    with pytest.raises(ValueError, match="nope"):
        future.result()
    assert isinstance(future.result(raise_on_failure=False), ValueError)
    assert future.state.is_failed()


def test_add_done_callback_runs_once_final_and_at_once_if_already_final():
    seen = []
    done = threading.Event()
    future = sleepy.submit(0.05, "v")
    future.add_done_callback(lambda f: (seen.append(f.state.name), done.set()))
    done.wait(5)
    future.add_done_callback(lambda f: seen.append("late"))
    assert seen == ["Completed", "late"]


def test_future_list_result_and_wait():
    futures = sleepy.map([0.01, 0.02], value=[1, 2])
    assert isinstance(futures, TaskFutureList)
    futures.wait()
    assert all(f.done() for f in futures)
    assert futures.result() == [1, 2]
    failing = fails.map(["a", "b"])
    with pytest.raises(ValueError, match="a"):
        failing.result()
    assert [type(r) for r in failing.result(raise_on_failure=False)] == [ValueError, ValueError]
    with pytest.raises(TimeoutError, match="all futures to complete within 0.05 seconds"):
        sleepy.map([1.0]).result(timeout=0.05)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        futures.result(timeout=-1)


def test_wait_splits_done_and_not_done():
    quick, slow = sleepy.submit(0.01), sleepy.submit(1.0)
    done, not_done = wait([quick, slow], timeout=0.5)
    assert done == {quick} and not_done == {slow}
    done, not_done = wait([quick, slow])
    assert done == {quick, slow} and not_done == set()


def test_as_completed_yields_in_finishing_order_and_times_out():
    futures = [sleepy.submit(s, value=s) for s in (0.3, 0.01, 0.15)]
    assert [f.result() for f in as_completed(futures)] == [0.01, 0.15, 0.3]
    with pytest.raises(TimeoutError):
        list(as_completed([sleepy.submit(1.0)], timeout=0.05))


def test_futures_are_awaitable():
    async def main():
        return await sleepy.submit(0.01, "awaited")

    assert asyncio.run(main()) == "awaited"


def test_futures_nested_in_containers_are_resolved():
    @task
    def value(x):
        return x

    @task
    def gather(items, mapping, pair):
        return items, mapping, pair

    @flow
    def nested():
        a, b = value.submit(1), value.submit(2)
        return gather([a, b], {"k": a}, (b, 3))

    assert nested() == ([1, 2], {"k": 1}, (2, 3))


def test_failed_upstream_fails_downstream_without_running_it():
    ran = []

    @task
    def downstream(x):
        ran.append(x)

    @flow
    def pipeline():
        bad = fails.submit()
        return downstream.submit(bad), downstream.submit(allow_failure(bad))

    state = pipeline(return_state=True)
    assert state.is_failed()  # returning a failed future fails the flow
    assert state.message == "1/2 states failed."
    with pytest.raises(UpstreamTaskError):
        state.result()
    import kernelflow

    runs = {r.name: r for r in kernelflow.last_run().task_runs}
    skipped = runs["downstream-0"]
    assert skipped.state.is_failed() and skipped.run_count == 0
    assert isinstance(skipped.state.data, UpstreamTaskError)
    assert "fails-0" in skipped.state.message and "allow_failure" in skipped.state.message
    assert runs["downstream-1"].state.is_completed()
    assert len(ran) == 1 and isinstance(ran[0], ValueError)


def test_a_chain_of_skipped_runs_each_names_the_run_that_failed_once():
    @task
    def step(x):
        return x

    @flow
    def chain():
        return step.submit(step.submit(step.submit(fails.submit())))

    chain(return_state=True)
    import kernelflow

    messages = [r.state.message for r in kernelflow.last_run().task_runs[1:]]
    assert "Upstream task run 'fails-0' did not complete: it ended Failed" in messages[0]
    for message in messages[1:]:
        assert "did not run, because upstream task run 'fails-0' ended Failed" in message
    assert all(m.count("allow_failure") == 1 for m in messages)
    error = pickle.loads(pickle.dumps(kernelflow.last_run().task_runs[-1].state.data))
    assert error.root.startswith("upstream task run 'fails-0' ended Failed")


def test_wait_for_a_failed_future_fails_the_dependent():
    @task
    def after():
        return "ran"

    @flow
    def gated():
        return after.submit(wait_for=[fails.submit()]).result(raise_on_failure=False)

    assert isinstance(gated(), UpstreamTaskError)


def test_futures_left_unresolved_are_waited_for_at_flow_end():
    futures = []

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def fire_and_forget():
        futures.extend(sleepy.submit(0.1) for _ in range(3))

    fire_and_forget()
    assert all(f.state.is_completed() for f in futures)


def test_future_repr_and_id():
    future = sleepy.submit(0)
    future.wait()
    assert isinstance(future, TaskFuture)
    assert future.task_run_id == future.task_run.id
    assert "sleepy-" in repr(future) and "Completed" in repr(future)

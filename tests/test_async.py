"""Async flows and tasks: one engine path, concurrency on the flow's own loop."""

import asyncio
import sys
import threading
import time

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.futures import TaskFuture


@task
async def nap(seconds, value=None):
    await asyncio.sleep(seconds)
    return value if value is not None else seconds


@task
def sync_double(x):
    return 2 * x


def test_submitted_async_tasks_run_concurrently_on_the_flows_loop():
    loops = []

    @task
    async def where(i):
        loops.append(asyncio.get_running_loop())
        await asyncio.sleep(0.2)
        return i

    @flow
    async def concurrent():
        futures = [where.submit(i) for i in range(10)]
        return [await f for f in futures]

    async def main():
        started = time.perf_counter()
        result = await concurrent()
        return result, time.perf_counter() - started, asyncio.get_running_loop()

    result, elapsed, loop = asyncio.run(main())
    assert result == list(range(10))
    assert elapsed < 0.8  # ten 0.2 s naps, together
    assert all(seen is loop for seen in loops)  # asyncio tasks, not threads
    runs = kernelflow.last_run().task_runs
    assert all(r.worker == "MainThread" for r in runs)


def test_map_of_async_tasks_in_an_async_flow_and_awaiting_a_future_list():
    @flow
    async def mapped():
        futures = nap.map([0.1] * 5, value=[1, 2, 3, 4, 5])
        return await asyncio.gather(*futures)

    started = time.perf_counter()
    assert asyncio.run(mapped()) == [1, 2, 3, 4, 5]
    assert time.perf_counter() - started < 0.45


def test_calling_an_async_task_in_an_async_flow_returns_an_awaitable():
    @flow
    async def direct():
        pending = nap(0.01, "v")
        assert asyncio.iscoroutine(pending)
        return await pending

    assert asyncio.run(direct()) == "v"


def test_sync_tasks_in_an_async_flow_run_on_runner_threads():
    @flow
    async def mixed():
        future = sync_double.submit(4)
        return await future, sync_double(5)

    assert asyncio.run(mixed()) == (8, 10)
    submitted, called = kernelflow.last_run().task_runs
    assert submitted.worker.startswith("kernelflow-worker")


def test_sync_flow_drives_async_tasks_without_a_running_loop():
    @flow
    def sync_flow():
        return nap(0.01, "direct"), nap.submit(0.01, "submitted").result()

    assert sync_flow() == ("direct", "submitted")


def test_sync_flow_in_a_running_loop_runs_async_tasks_on_that_loop():
    # What a notebook cell does: a sync flow called while the kernel's loop runs.
    @task
    async def on_loop():
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    @flow
    def sync_flow():
        return on_loop()

    async def cell():
        return sync_flow(), asyncio.get_running_loop()

    task_loop, cell_loop = asyncio.run(cell())
    assert task_loop is cell_loop


def test_nest_asyncio2_is_applied_only_when_a_coroutine_must_be_driven_inside_a_loop():
    import subprocess

    code = """
import asyncio, sys
from kernelflow import flow, task

@task
async def a():
    return 1

@task
def s():
    return 2

@flow
def plain():
    return s()

@flow
def drives():
    return a()

async def cell(f):
    return f()

asyncio.run(cell(plain))
plain()
drives()  # no loop running: asyncio.run, no patching
print("after-sync", "nest_asyncio2" in sys.modules)
asyncio.run(cell(drives))
print("after-nested", "nest_asyncio2" in sys.modules)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n")[:2] == ["after-sync False", "after-nested True"]


def test_async_timeout_cancels_the_coroutine():
    cancelled = threading.Event()

    @task(timeout_seconds=0.1)
    async def slow():
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    @flow
    async def f():
        return await slow(return_state=True)

    started = time.perf_counter()
    state = asyncio.run(f(return_state=True)).result(raise_on_failure=False)  # the task's
    assert time.perf_counter() - started < 1
    assert state.name == "TimedOut" and cancelled.is_set()


def test_async_retries_and_hooks_behave_as_sync():
    calls, hooks = [], []

    @task(retries=2, retry_delay_seconds=0, on_completion=[lambda t, r, s: hooks.append(s.name)])
    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ValueError("again")
        return "ok"

    async def async_hook(flow_, run, state):
        hooks.append(("flow", state.name))

    @flow(on_completion=[async_hook])
    async def f():
        return await flaky()

    assert asyncio.run(f()) == "ok"
    assert len(calls) == 3 and hooks == ["Completed", ("flow", "Completed")]


def test_a_failing_async_task_fails_the_async_flow_with_its_own_exception():
    @task
    async def boom():
        raise KeyError("async boom")

    @flow
    async def f():
        await boom()

    with pytest.raises(KeyError, match="async boom"):
        asyncio.run(f())


BLOCKING_WAITS = {
    "result": lambda futures: [f.result() for f in futures],
    "wait": lambda futures: [f.result() for f in kernelflow.futures.wait(futures).done],
    "wait_method": lambda futures: [f.wait() and f.result() for f in futures],
    "list_result": lambda futures: kernelflow.futures.TaskFutureList(futures).result(),
    "as_completed": lambda futures: [f.result() for f in kernelflow.futures.as_completed(futures)],
}


@pytest.mark.parametrize("how", sorted(BLOCKING_WAITS))
def test_blocking_waits_inside_an_async_flow_return_and_the_runs_stay_concurrent(how):
    # Prefect 3 runs async tasks on worker threads, so ported code blocks on their
    # futures inside `async def` all the time; here they are asyncio tasks of the flow's
    # loop, and a blocking wait drives that loop instead of deadlocking it.
    @flow
    async def blocks():
        futures = [nap.submit(0.2, i) for i in range(10)]
        return BLOCKING_WAITS[how](futures)

    started = time.perf_counter()
    values = asyncio.run(blocks())
    assert sorted(values) == list(range(10))
    assert time.perf_counter() - started < 1.5


def test_as_completed_works_with_async_for_in_an_async_flow():
    @flow
    async def iterate():
        futures = [nap.submit(0.3 - 0.1 * i, i) for i in range(3)]
        return [future.result() async for future in kernelflow.futures.as_completed(futures)]

    assert asyncio.run(iterate()) == [2, 1, 0]


def test_as_completed_async_for_times_out():
    @flow
    async def iterate():
        futures = [nap.submit(5)]
        async for _ in kernelflow.futures.as_completed(futures, timeout=0.2):
            pass

    with pytest.raises(TimeoutError):
        asyncio.run(iterate())


def test_futures_are_awaitable_outside_flows():
    async def main():
        return await sync_double.submit(21)

    assert asyncio.run(main()) == 42


def test_async_flow_with_subflow_and_parameters():
    @flow
    def sync_child(x: int):
        return sync_double(x)

    @flow
    async def parent(x: int):
        return sync_child(x) + await nap(0, 1)

    assert asyncio.run(parent("3")) == 7
    assert isinstance(nap.submit(0), TaskFuture)


def test_async_flow_timeout_cancels_the_body():
    @flow(timeout_seconds=0.2)
    async def too_slow():
        await asyncio.sleep(5)

    started = time.perf_counter()
    state = asyncio.run(too_slow(return_state=True))
    assert time.perf_counter() - started < 1.5
    assert state.name == "TimedOut" and isinstance(state.data, TimeoutError)

"""Examples of Prefect 3's how-to guides (global concurrency and rate limits, testing,
logging, runtime context, pause inputs, hooks, visualization), ported by changing their
imports; each test checks what the guide says the example does."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import time

import kernelflow
from kernelflow import flow, get_run_logger, pause_flow_run, runtime, task
from kernelflow.client.schemas.objects import FlowRun, TaskRun
from kernelflow.concurrency import set_limit
from kernelflow.concurrency.asyncio import concurrency as aconcurrency
from kernelflow.concurrency.asyncio import rate_limit as arate_limit
from kernelflow.concurrency.sync import concurrency, rate_limit
from kernelflow.context import with_context
from kernelflow.flows import Flow
from kernelflow.input import RunInput
from kernelflow.logging import disable_run_logger
from kernelflow.states import State
from kernelflow.tasks import Task
from kernelflow.testing.utilities import prefect_test_harness
from tests.test_concurrency import most_at_once

# --- global concurrency and rate limits ----------------------------------------------


def test_concurrency_in_tasks_of_a_flow():
    # The guide: `with concurrency("database", occupy=1)` inside a task submitted four
    # times; with a limit of 1 the tasks run one at a time.
    set_limit("database", limit=1)  # Prefect: prefect gcl create database --limit 1
    spans = []

    @task
    def process_data(x, y):
        with concurrency("database", occupy=1):
            start = time.time()
            time.sleep(0.03)
            spans.append((start, time.time()))
            return x + y

    @flow
    def my_flow():
        futures = [process_data.submit(x, y) for x, y in [(1, 2), (2, 3), (3, 4), (4, 5)]]
        return [f.result() for f in futures]

    assert my_flow() == [3, 5, 7, 9]
    assert most_at_once(spans) == 1


def test_async_concurrency_in_a_flow():
    set_limit("database", limit=2)
    spans = []

    @task
    async def process_data(x, y):
        async with aconcurrency("database", occupy=1):
            start = time.time()
            await asyncio.sleep(0.03)
            spans.append((start, time.time()))
            return x + y

    @flow
    async def my_flow():
        return await asyncio.gather(
            *(process_data(x, y) for x, y in [(1, 2), (2, 3), (3, 4), (4, 5)])
        )

    assert asyncio.run(my_flow()) == [3, 5, 7, 9]
    assert most_at_once(spans) == 2


def test_rate_limited_http_requests(capsys):
    # The guide: rate_limit("rate-limited-api") before each of ten submitted requests;
    # the limit's slot decay spaces them.
    set_limit("rate-limited-api", limit=2, slot_decay_per_second=20)
    started = []

    @task
    def make_http_request():
        rate_limit("rate-limited-api")
        started.append(time.monotonic())
        print("Making an HTTP request...")

    @flow
    def my_flow():
        for future in [make_http_request.submit() for _ in range(10)]:
            future.wait()

    my_flow()
    assert capsys.readouterr().out.count("Making an HTTP request...") == 10
    started.sort()
    # two at once, then one every 0.05 s: the last starts >= 8 * 0.05 s after the first
    assert started[-1] - started[0] >= 0.38


def test_rate_limit_outside_a_flow():
    # The guide: limits work in plain asyncio code too, without any flow.
    set_limit("rate-limited-api", limit=1, slot_decay_per_second=20)

    async def main():
        times = []
        for _ in range(4):
            await arate_limit("rate-limited-api")
            times.append(time.monotonic())
        return times

    times = asyncio.run(main())
    assert times[-1] - times[0] >= 0.14


# --- testing ----------------------------------------------------------------------------


@flow
def my_favorite_flow():
    return 42


@task
def my_favorite_task():
    get_run_logger().info("this would need a run context in Prefect")
    return 42


def test_my_favorite_flow():
    with prefect_test_harness():
        assert my_favorite_flow() == 42


def test_my_favorite_task():
    with disable_run_logger():
        assert my_favorite_task.fn() == 42


# --- logging ----------------------------------------------------------------------------


def _worker(item):
    logger = get_run_logger()
    logger.info("Processing %s", item)
    return item * 2, logger.extra["task_run_name"]


def test_get_run_logger_in_a_multiprocessing_pool():
    @task
    def my_task(items):
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            return pool.map(with_context(_worker), items)

    @flow
    def my_flow():
        return my_task([1, 2, 3])

    assert my_flow() == [(2, "my_task-0"), (4, "my_task-0"), (6, "my_task-0")]


# --- state change hooks with the schema types --------------------------------------------


def test_hooks_annotated_with_client_schema_types():
    seen = []

    def flow_hook(flow: Flow, flow_run: FlowRun, state: State) -> None:
        seen.append(("flow", flow.name, flow_run.name, state.name))

    def task_hook(task: Task, task_run: TaskRun, state: State) -> None:
        seen.append(("task", task.name, task_run.name, state.name))

    @task(on_completion=[task_hook])
    def child():
        return 1

    @flow(on_completion=[flow_hook])
    def parent():
        return child()

    parent()
    run = kernelflow.last_run()
    assert seen == [
        ("task", "child", "child-0", "Completed"),
        ("flow", "parent", run.name, "Completed"),
    ]
    assert isinstance(run, FlowRun) and isinstance(run.task_runs[0], TaskRun)


# --- runtime context ----------------------------------------------------------------------


def test_runtime_names_and_deployment(capsys):
    @task
    def my_task(y):
        print("My name is", runtime.task_run.name)
        print("Flow run parameters:", runtime.flow_run.parameters)

    @flow(log_prints=False)
    def my_flow(x):
        print("My name is", runtime.flow_run.name)
        print("I belong to deployment", runtime.deployment.name)
        my_task(2)

    my_flow(1)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        f"My name is {kernelflow.last_run().name}",
        "I belong to deployment None",  # no deployment: as Prefect outside one
        "My name is my_task-0",
        "Flow run parameters: {'x': 1}",
    ]


# --- pause with typed input ---------------------------------------------------------------


class UserInput(RunInput):
    name: str
    age: int


def test_pause_for_a_run_input_with_initial_data():
    greetings = []

    @flow
    async def greet_user():
        user_input = await pause_flow_run(
            wait_for_input=UserInput.with_initial_data(
                description="Tell us who you are", name="anonymous"
            ),
            timeout=30,
        )
        greetings.append(f"Hello, {user_input.name} ({user_input.age})!")

    def resume() -> None:
        for _ in range(500):
            if kernelflow.paused_runs():
                run = kernelflow.paused_runs()[0]
                kernelflow.resume_flow_run(run.id, run_input={"age": 36})
                return
            time.sleep(0.01)

    helper = threading.Thread(target=resume)
    helper.start()
    asyncio.run(greet_user())
    helper.join()
    assert greetings == ["Hello, anonymous (36)!"]  # the initial name, the given age


# --- visualization -----------------------------------------------------------------------


def test_mermaid_graph_of_a_flow():
    @task
    def get_data():
        return [1, 2]

    @task
    def process(data):
        return data

    @flow
    def pipeline():
        process(get_data())

    assert pipeline.generate_mermaid_graph() == (
        'flowchart TD\n    get_data_0["get_data-0"]\n    process_0["process-0"]\n'
        "    get_data_0 --> process_0"
    )


def test_state_details_name_the_runs():
    @task
    def add(x, y):
        return x + y

    @flow
    def adder():
        return add(1, 2, return_state=True)

    state = adder()
    assert state.state_details.task_run_id == kernelflow.last_run().task_runs[0].id
    assert state.state_details.flow_run_id == kernelflow.last_run().id

"""Flow.visualize() on every example of Prefect's task-runner docs (seeds/002).

Each flow is written as in the docs (prefect imports swapped for kernelflow's); every
task appends to a call log, and the log stays empty: visualize runs no task.
"""

from __future__ import annotations

from kernelflow import flow, task, unmapped
from kernelflow.futures import wait
from kernelflow.task_runners import ThreadPoolTaskRunner
from tests.viz.viz_dot import dot


def test_elevator_ten_submits_no_edges(calls):
    @task
    def stop_at_floor(floor):
        calls.append(floor)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def elevator():
        floors = []
        for floor in range(10, 0, -1):
            floors.append(stop_at_floor.submit(floor))
        wait(floors)

    graph = dot(elevator.visualize())
    assert len(graph.ids("stop_at_floor")) == 10
    assert graph.edges == []
    assert calls == []


def test_hello_world_future_passed_to_task(calls):
    @task
    def say_hello(name):
        calls.append(name)
        return f"Hello {name}!"

    @task
    def print_result(result):
        calls.append(result)

    @flow(name="hello-flow")
    def hello_world():
        future = say_hello.submit("Marvin")
        print_result.submit(future).wait()

    graph = dot(hello_world.visualize())
    assert graph.named_edges() == {("say_hello", "print_result")}
    assert 'label="hello-flow"' in graph.source or "label=hello-flow" in graph.source
    assert calls == []


def test_result_and_raise_on_failure_examples(calls):
    @task
    def my_task():
        calls.append(1)
        return 42

    @flow
    def my_flow():
        future = my_task.submit()
        result = future.result()
        print(result)

    @flow
    def my_flow_checking_state():
        future = my_task.submit()
        result = future.result(raise_on_failure=False)
        if future.state.is_failed():
            return None
        return result

    assert dot(my_flow.visualize()).ids("my_task")
    assert dot(my_flow_checking_state.visualize()).ids("my_task")
    assert calls == []


def test_wait_for_edges(calls):
    @task
    def task_a():
        calls.append("a")

    @task
    def task_b():
        calls.append("b")

    @task
    def task_c():
        calls.append("c")

    @task
    def task_d():
        calls.append("d")

    @flow
    def my_flow():
        a = task_a.submit()
        b = task_b.submit()
        c = task_c.submit(wait_for=[a, b])
        task_d(wait_for=[c])

    graph = dot(my_flow.visualize())
    a, b, c, d = (graph.id(n) for n in ("task_a", "task_b", "task_c", "task_d"))
    assert graph.wait_for_edges() == {(a, c), (b, c), (c, d)}
    assert graph.data_edges() == set()
    assert all("wait_for" in attrs for _, _, attrs in graph.edges)
    assert calls == []


def test_map_flow_counts_the_parameter(calls):
    @task
    def print_nums(nums):
        calls.append(nums)

    @task
    def square_num(num):
        calls.append(num)
        return num**2

    @flow
    def map_flow(nums):
        print_nums(nums)
        squared_nums = square_num.map(nums)
        print_nums(squared_nums)

    graph = dot(map_flow.visualize([1, 2, 3, 5, 8, 13]))
    group = graph.id("square_num")
    assert "× 6 runs" in graph.labels[group]
    assert "box3d" in graph.attrs[group]
    first, second = graph.ids("print_nums")
    assert graph.data_edges() == {("p_nums", first), ("p_nums", group), (group, second)}
    assert graph.labels["p_nums"].startswith("nums = [1, 2, 3")
    assert "parallelogram" in graph.attrs["p_nums"]
    assert calls == []


def test_map_with_static_and_unmapped_values(calls):
    @task
    def add_together(x, y):
        calls.append(x)
        return x + y

    @task
    def sum_plus(x, static_iterable):
        calls.append(x)
        return x + sum(static_iterable)

    @flow
    def sum_it(numbers, static_value):
        futures = add_together.map(numbers, static_value)
        return futures.result()

    @flow
    def sum_it_unmapped(numbers, static_iterable):
        futures = sum_plus.map(numbers, unmapped(static_iterable))
        return futures.result()

    graph = dot(sum_it.visualize([1, 2, 3], 5))
    group = graph.id("add_together")
    assert "× 3 runs" in graph.labels[group]
    assert graph.data_edges() == {("p_numbers", group), ("p_static_value", group)}

    graph = dot(sum_it_unmapped.visualize([4, 5, 6], [1, 2, 3]))
    group = graph.id("sum_plus")
    assert "× 3 runs" in graph.labels[group]  # the unmapped list is not mapped over
    assert graph.data_edges() == {("p_numbers", group), ("p_static_iterable", group)}
    assert calls == []


def test_nested_flows_are_clusters(calls):
    @task
    def hello_local(name: str):
        calls.append(name)

    @flow
    def concurrent_nested_flow():
        marvin = hello_local.submit("marvin")
        ford = hello_local.submit("ford")
        marvin.wait(), ford.wait()

    @task
    def hello_dask():
        calls.append("dask")

    # The docs use DaskTaskRunner here; the runner does not change the graph.
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def dask_nested_flow():
        hello_dask.submit().wait()

    @flow
    def parent_flow():
        concurrent_nested_flow()
        dask_nested_flow()

    graph = dot(parent_flow.visualize())
    source = graph.source
    assert source.count("subgraph cluster_") == 2
    assert 'label="subflow: concurrent-nested-flow"' in source
    assert 'label="subflow: dask-nested-flow"' in source
    local = source.split("subflow: concurrent-nested-flow")[1].split("}")[0]
    assert local.count("label=hello_local") == 2
    assert len(graph.ids("hello_dask")) == 1
    assert calls == []

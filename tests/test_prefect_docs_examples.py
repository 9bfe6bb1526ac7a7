"""Every runnable example of Prefect's task-runner docs, unchanged apart from the import.

(DaskTaskRunner's nested-flow example is covered with the Dask runner's tests.)
"""

import time

import pytest

from kernelflow import flow, task, unmapped
from kernelflow.futures import wait
from kernelflow.task_runners import ThreadPoolTaskRunner


def test_elevator_three_workers_and_wait(capsys):
    @task
    def stop_at_floor(floor):
        print(f"elevator moving to floor {floor}")
        time.sleep(floor / 20)  # the docs sleep whole seconds; the order is what matters
        print(f"elevator stops on floor {floor}")

    floors = []

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def elevator():
        for floor in range(10, 0, -1):
            floors.append(stop_at_floor.submit(floor))
        wait(floors)

    started = time.perf_counter()
    elevator()
    elapsed = time.perf_counter() - started
    assert all(f.state.is_completed() for f in floors)
    out = capsys.readouterr().out
    assert out.count("elevator stops") == 10
    # 55 floor-units of sleep over 3 workers: well under the 2.75 s a single thread needs.
    assert elapsed < 2.2
    workers = {f.task_run.worker for f in floors}
    assert len(workers) == 3


def test_hello_flow_future_passed_to_task(capsys):
    @task
    def say_hello(name):
        return f"Hello {name}!"

    @task
    def print_result(result):
        print(type(result))
        print(result)

    @flow(name="hello-flow")
    def hello_world():
        future = say_hello.submit("Marvin")
        print_result.submit(future).wait()

    hello_world()
    assert capsys.readouterr().out == "<class 'str'>\nHello Marvin!\n"


def test_future_result(capsys):
    @task
    def my_task():
        return 42

    @flow
    def my_flow():
        future = my_task.submit()
        result = future.result()
        print(result)

    my_flow()
    assert capsys.readouterr().out == "42\n"


def test_result_without_raising_on_failure():
    seen = {}

    @task
    def my_task():
        raise ValueError("I'm a failing task!")

    @flow
    def my_flow():
        future = my_task.submit()
        result = future.result(raise_on_failure=False)
        if future.state.is_failed():
            seen["error"] = result
        else:
            seen["value"] = result

    my_flow()
    assert isinstance(seen["error"], ValueError)
    assert str(seen["error"]) == "I'm a failing task!"


def test_wait_for_orders_tasks_without_data():
    order = []

    def record(name):
        time.sleep(0.05)
        order.append(name)

    @task
    def task_a():
        record("a")

    @task
    def task_b():
        record("b")

    @task
    def task_c():
        record("c")

    @task
    def task_d():
        record("d")

    @flow
    def my_flow():
        a = task_a.submit()
        b = task_b.submit()
        c = task_c.submit(wait_for=[a, b])
        task_d(wait_for=[c])

    my_flow()
    assert sorted(order[:2]) == ["a", "b"]
    assert order[2:] == ["c", "d"]


def test_map_over_iterables(capsys):
    @task
    def print_nums(nums):
        for n in nums:
            print(n)

    @task
    def square_num(num):
        return num**2

    @flow
    def map_flow(nums):
        print_nums(nums)
        squared_nums = square_num.map(nums)
        print_nums(squared_nums)

    map_flow([1, 2, 3, 5, 8, 13])
    assert capsys.readouterr().out.split() == "1 2 3 5 8 13 1 4 9 25 64 169".split()


def test_map_with_static_value():
    @task
    def add_together(x, y):
        return x + y

    @flow
    def sum_it(numbers, static_value):
        futures = add_together.map(numbers, static_value)
        return futures.result()

    resulting_sum = sum_it([1, 2, 3], 5)
    assert resulting_sum == [6, 7, 8]


def test_map_with_unmapped_iterable():
    @task
    def sum_plus(x, static_iterable):
        return x + sum(static_iterable)

    @flow
    def sum_it(numbers, static_iterable):
        futures = sum_plus.map(numbers, unmapped(static_iterable))
        return futures.result()

    resulting_sum = sum_it([4, 5, 6], [1, 2, 3])
    assert resulting_sum == [10, 11, 12]


def test_nested_flows_with_different_runners(capsys):
    @task
    def hello_local(name: str):
        time.sleep(0.2)
        print(f"Hello {name}!")

    @flow  # implicitly uses the default task runner, ThreadPoolTaskRunner
    def concurrent_nested_flow():
        marvin = hello_local.submit("marvin")
        ford = hello_local.submit("ford")
        marvin.wait(), ford.wait()

    @task
    def hello_single():
        print("Hello from a one-worker runner!")

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def single_nested_flow():
        hello_single.submit().wait()

    @flow
    def parent_flow():
        concurrent_nested_flow()
        single_nested_flow()

    started = time.perf_counter()
    parent_flow()
    assert time.perf_counter() - started < 0.39  # the two 0.2 s hellos ran concurrently
    out = capsys.readouterr().out
    assert "Hello marvin!" in out and "Hello ford!" in out
    assert "Hello from a one-worker runner!" in out
    import kernelflow

    parent = kernelflow.last_run()
    assert [sub.flow.name for sub in parent.subflow_runs] == [
        "concurrent-nested-flow",
        "single-nested-flow",
    ]


@pytest.mark.parametrize("max_workers", [1, 2])
def test_nested_submission_inside_a_task_does_not_deadlock(max_workers):
    @task
    def leaf(x):
        return x + 1

    @task
    def branch(x):
        # Submitting from inside a task and waiting on it: with every worker busy in
        # `branch`, the waiting worker runs the queued leaf itself.
        return leaf.submit(x).result() * 10

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=max_workers))
    def nested():
        return branch.map(range(4)).result()

    assert nested() == [10, 20, 30, 40]

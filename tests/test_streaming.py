"""Generator tasks (``_engine/streaming.py``): cached items, worker processes, and
streams left half read."""

from __future__ import annotations

import os
import threading
import time

import kernelflow
from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS
from kernelflow.task_runners import ProcessPoolTaskRunner
from tests.cache_support import home, run_python


def _stream_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "kernelflow-stream"]


def _eventually(condition, timeout=10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def test_a_cached_generator_task_gives_its_items_again_on_a_hit(tmp_path):
    calls = []

    @task(cache_policy=INPUTS)
    def numbers(n):
        calls.append(n)
        yield from range(n)

    assert list(numbers(3)) == [0, 1, 2]
    assert list(numbers(3)) == [0, 1, 2]
    assert calls == [3]
    state = numbers(3, return_state=True)
    assert state.name == "Cached" and state.result() == [0, 1, 2]

    script = """
        from kernelflow import task
        from kernelflow.cache_policies import INPUTS

        @task(cache_policy=INPUTS)
        def numbers(n):
            print("ran")
            yield from range(n)

        print(list(numbers(3)))
        print(list(numbers(3)))
    """
    (tmp_path / "one").mkdir()
    assert run_python(script, home(), tmp_path / "one").split("\n")[:3] == [
        "ran",
        "[0, 1, 2]",
        "[0, 1, 2]",
    ]
    assert run_python(script, home(), tmp_path / "one").split("\n")[:2] == [
        "[0, 1, 2]",  # a new process: a hit, with the items
        "[0, 1, 2]",
    ]


def test_a_cached_generator_read_only_in_part_is_not_cached():
    calls = []

    @task(cache_policy=INPUTS)
    def numbers(n):
        calls.append(n)
        yield from range(n)

    for item in numbers(5):
        if item == 1:
            break
    assert _eventually(lambda: kernelflow.last_run() is None or not _stream_threads())
    assert list(numbers(5)) == [0, 1, 2, 3, 4]  # runs again, whole
    assert calls == [5, 5]
    assert list(numbers(5)) == [0, 1, 2, 3, 4] and calls == [5, 5]


def test_a_generator_task_on_the_process_runner_runs_in_the_worker():
    @task
    def numbers(n):
        for i in range(n):
            yield i, os.getpid()

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def pipeline():
        return numbers.submit(3).result(), numbers.map([1, 2]).result()

    items, mapped = pipeline()
    assert [i for i, _ in items] == [0, 1, 2]
    assert {pid for _, pid in items} != {os.getpid()}  # the body ran in the worker
    assert [[i for i, _ in run] for run in mapped] == [[0], [0, 1]]


def test_a_half_read_generator_leaks_no_thread_and_no_running_run():
    kept = []

    @task
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    @flow
    def reads_one():
        items = endless()
        kept.append(items)  # still referenced when the flow run ends
        return next(items)

    before = len(_stream_threads())
    runs = []
    for _ in range(20):
        assert reads_one() == 0
        runs.append(kernelflow.last_run())
    assert _eventually(lambda: len(_stream_threads()) == before), _stream_threads()
    task_runs = [run.task_runs[0] for run in runs]
    assert _eventually(lambda: all(r.state.is_completed() for r in task_runs))
    # Read on after its flow ended: at most the item made before the end, then the end.
    assert list(kept[0]) in ([], [1])

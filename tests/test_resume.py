"""FlowRun.retry(): a failed flow run retried after fixing a task reuses what held.

Every test proves reuse with a call log: a reused run's body is not called again.
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow._runners.remote import close_warm_backends
from kernelflow.exceptions import RunValuesReleased
from kernelflow.task_runners import DaskTaskRunner, ProcessPoolTaskRunner, ThreadPoolTaskRunner

calls: list[str] = []
# Module globals, not closures: a closure's values are part of a task's source digest
# (TASK_SOURCE), so changing one would count as an edit of the task.
service_down: set[int] = set()
scales: list[float] = []


@pytest.fixture(autouse=True)
def _fresh_log():
    calls.clear()
    yield


def make_step(number: int, broken: bool = False):
    """Step ``number`` of a pipeline: adds one; a broken step 7 raises."""

    def step(x: int) -> int:
        calls.append(f"step{number}")
        if broken:
            raise ValueError(f"step {number} is broken")
        return x + 1

    # Each version of a step gets its own source text, as a cell edit would give it.
    step.__name__ = step.__qualname__ = f"step{number}"
    return task(step, name=f"step{number}")


def test_a_ten_step_flow_fixed_at_step_seven_reuses_steps_one_to_six():
    steps = [make_step(n, broken=(n == 7)) for n in range(1, 11)]

    @flow
    def pipeline(start: int) -> int:
        x = start
        for step in steps:
            x = step(x)
        return x

    with pytest.raises(ValueError, match="step 7 is broken"):
        pipeline(1000)
    failed = kernelflow.last_run()
    assert calls == [f"step{n}" for n in range(1, 8)]

    @task(name="step7")
    def fixed_step7(x: int) -> int:  # the fix, as a redefinition in a cell
        calls.append("fixed7")
        return x + 1

    steps[6] = fixed_step7
    calls.clear()
    assert failed.retry() == 1010
    assert calls == ["fixed7", "step8", "step9", "step10"]

    retried = kernelflow.last_run()
    assert retried is not failed and retried.retry_of is failed
    assert kernelflow.runs()[:2] == [retried, failed]  # newest first
    states = [(r.name, r.state.name) for r in retried.task_runs]
    assert states[:6] == [(f"step{n}-0", "Cached") for n in range(1, 7)]
    assert {name for _, name in states[6:]} == {"Completed"}
    assert retried.task_runs[0].state.message == f"reused from step1-0 of flow run {failed.name}"


def test_only_the_failed_items_of_a_map_run_again():
    service_down.update({7, 21, 40})

    @task
    def load(item: int) -> int:
        calls.append(item)
        if item in service_down:
            raise ConnectionError(f"item {item} timed out")
        return item * 2

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def load_all(n: int) -> int:
        return sum(load.map(range(n)).result())

    with pytest.raises(ConnectionError):
        load_all(50)
    assert sorted(calls) == list(range(50))

    service_down.clear()  # the service is back
    calls.clear()
    assert kernelflow.last_run().retry() == sum(i * 2 for i in range(50))
    assert sorted(calls) == [7, 21, 40]
    states = [r.state.name for r in kernelflow.last_run().task_runs]
    assert states.count("Cached") == 47 and states.count("Completed") == 3


def test_reused_runs_end_where_they_are_submitted_without_going_to_the_runner():
    service_down.update({2})
    done_at_submit: list[list[bool]] = []

    @task
    def load(item: int) -> int:
        calls.append(f"load{item}")
        if item == 2:
            time.sleep(0.5)  # still running when the flow body looks at it
        if item in service_down:
            raise ConnectionError(f"item {item} timed out")
        return item * 1000

    @task
    def total(values: list[int]) -> int:
        calls.append("total")
        return sum(values)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def load_all(n: int) -> int:
        loaded = load.map(range(n))
        first = load.submit(100)  # upstream of the next submit, by its future
        after = total.submit([first])
        done_at_submit.append([f.done() for f in loaded] + [first.done(), after.done()])
        return after.result() + sum(loaded.result())

    with pytest.raises(ConnectionError):
        load_all(4)
    service_down.clear()
    calls.clear()
    done_at_submit.clear()
    assert kernelflow.last_run().retry() == 6000 + 100_000
    assert calls == ["load2"]
    # Reused runs were settled by .map()/.submit() themselves, chains included; the
    # run that failed before runs again on the runner.
    assert done_at_submit == [[True, True, False, True, True, True]]
    retried = kernelflow.last_run()
    assert [r.state.name for r in retried.task_runs].count("Cached") == 5
    assert all(r.worker is None for r in retried.task_runs if r.state.name == "Cached")


def test_reused_runs_call_their_completion_hooks_and_unblock_their_downstream():
    hooked: list[str] = []
    broken = {"on": True}

    def note(task, run, state):
        hooked.append(f"{run.name}:{state.name}")

    @task(on_completion=[note])
    def fetch(x: int) -> int:
        calls.append("fetch")
        return x + 1000

    @task
    def double(x: int) -> int:
        calls.append("double")
        return x * 2

    @task
    def check(x: int) -> int:
        calls.append("check")
        if broken["on"]:
            raise ValueError("not yet")
        return x

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def pipeline() -> int:
        return check.submit(double.submit(fetch.submit(1))).result()

    with pytest.raises(ValueError):
        pipeline()
    broken["on"] = False
    calls.clear()
    hooked.clear()
    assert kernelflow.last_run().retry() == 2002
    # fetch's hook ran for its reused run; double waited for it, then was reused too.
    assert calls == ["check"]
    assert hooked == ["fetch-0:Cached"]
    states = [r.state.name for r in kernelflow.last_run().task_runs]
    assert states == ["Cached", "Cached", "Completed"]


def test_reuse_matches_unhashable_inputs_and_tells_equal_values_of_other_types_apart():
    service_down.add(2)

    @task
    def total(values: list[int], scale: float) -> float:
        calls.append(f"total{values}")
        if values[0] in service_down:
            raise ConnectionError("not yet")
        return sum(values) * scale

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def totals() -> list[float]:
        return total.map([[1, 1], [2, 2], [3, 3]], scales[0]).result()

    scales[:] = [1]
    with pytest.raises(ConnectionError):
        totals()
    service_down.clear()
    calls.clear()
    assert kernelflow.last_run().retry() == [2, 4, 6]
    assert calls == ["total[2, 2]"]  # lists compared by value: the other two reused

    scales[:] = [1.0]  # equal to 1, but a float is not an int: nothing is reused
    calls.clear()
    assert kernelflow.last_run().retry() == [2.0, 4.0, 6.0]
    assert sorted(calls) == ["total[1, 1]", "total[2, 2]", "total[3, 3]"]


def test_an_edited_upstream_task_reruns_with_everything_after_it():
    steps = [make_step(n, broken=(n == 7)) for n in range(1, 8)]

    @flow
    def pipeline() -> int:
        x = 1000  # past the small ints Python shares, so each value has one producer
        for step in steps:
            x = step(x)
        return x

    with pytest.raises(ValueError):
        pipeline()

    @task(name="step3")
    def step3_edited(x: int) -> int:  # same result, new code
        calls.append("edited3")
        return x + 1

    steps[2] = step3_edited
    steps[6] = make_step(7)
    calls.clear()
    assert kernelflow.last_run().retry() == 1007
    # 4-6 have the same inputs as before, but run again: they are downstream of a re-run.
    assert calls == ["edited3", "step4", "step5", "step6", "step7"]


def test_an_edited_helper_counts_as_an_edit_of_the_task(tmp_path):
    namespace: dict = {}
    source = tmp_path / "cell.py"

    def run_cell(code: str) -> None:
        source.write_text(code)
        exec(compile(code, str(source), "exec"), namespace)

    run_cell(
        "from kernelflow import task\n"
        "def scale(x):\n    return x * 2\n"
        "@task\ndef double(x):\n    return scale(x)\n"
    )
    calls_here: list[int] = []

    @task
    def check(x: int) -> int:
        calls_here.append(x)
        return x

    @flow
    def doubled() -> int:
        return check(namespace["double"](3))

    assert doubled() == 6  # completes: nothing to fix, yet it can be retried
    run_cell(
        "from kernelflow import task\n"
        "def scale(x):\n    return x + x + 0\n"
        "@task\ndef double(x):\n    return scale(x)\n"
    )
    calls_here.clear()
    assert kernelflow.last_run().retry() == 6
    assert [r.state.name for r in kernelflow.last_run().task_runs] == ["Completed", "Completed"]
    assert calls_here == [6]


def test_subflows_are_retried_with_their_parent():
    broken = {"report": True}

    @task
    def fetch(n: int) -> list[int]:
        calls.append("fetch")
        return list(range(n))

    @task
    def report(values: list[int]) -> int:
        calls.append("report")
        if broken["report"]:
            raise RuntimeError("report template missing")
        return sum(values)

    @flow
    def ingest(n: int) -> list[int]:
        return fetch(n)

    @flow
    def publish(values: list[int]) -> int:
        return report(values)

    @flow
    def nightly(n: int) -> int:
        return publish(ingest(n))

    with pytest.raises(RuntimeError):
        nightly(5)
    broken["report"] = False
    calls.clear()
    assert kernelflow.last_run().retry() == 10
    assert calls == ["report"]
    with pytest.raises(ValueError, match="subflow run"):
        kernelflow.last_run().subflow_runs[0].retry()


def test_an_async_flow_is_retried_with_await():
    broken = {"on": True}

    @task
    async def fetch(i: int) -> int:
        calls.append(f"fetch{i}")
        return i

    @task
    async def combine(values: list[int]) -> int:
        calls.append("combine")
        if broken["on"]:
            raise ValueError("not yet")
        return sum(values)

    @flow
    async def gather_all() -> int:
        values = await asyncio.gather(*(fetch(i) for i in range(3)))
        return await combine(list(values))

    with pytest.raises(ValueError):
        asyncio.run(gather_all())
    broken["on"] = False
    calls.clear()
    retried = kernelflow.last_run().retry()
    assert asyncio.iscoroutine(retried)
    assert asyncio.run(retried) == 3
    assert calls == ["combine"]


@pytest.mark.parametrize(
    "make_runner",
    [
        lambda: ProcessPoolTaskRunner(max_workers=2),
        lambda: DaskTaskRunner(
            cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": ":0"}
        ),
    ],
    ids=["processpool", "dask"],
)
def test_remote_runners_reuse_too(make_runner, tmp_path):
    marker = tmp_path / "broken"
    marker.write_text("yes")
    log = tmp_path / "log"

    @task
    def square(x: int, log: str, marker: str) -> int:
        import pathlib

        with open(log, "a") as out:
            out.write(f"{x}\n")
        if x == 3 and pathlib.Path(marker).exists():
            raise ValueError("three is broken")
        return x * x

    @flow(task_runner=make_runner())
    def squares() -> list[int]:
        return square.map(range(6), str(log), str(marker)).result()

    try:
        with pytest.raises(ValueError):
            squares()
        marker.unlink()
        log.write_text("")
        assert kernelflow.last_run().retry() == [0, 1, 4, 9, 16, 25]
        assert log.read_text().split() == ["3"]
    finally:
        close_warm_backends()


def test_a_run_too_old_to_retry_says_so():
    @task
    def one() -> int:
        return 1

    @flow
    def tiny() -> int:
        return one()

    tiny()
    first = kernelflow.last_run()
    for _ in range(kernelflow._runs.RUN_VALUES_KEPT):
        tiny()
    with pytest.raises(RunValuesReleased, match="too old to retry.*Re-run the flow"):
        first.retry()
    with pytest.raises(RunValuesReleased, match="released"):
        first.task_runs[0].state.result()
    assert first.task_runs[0].state.name == "Completed"  # the record itself stays


def test_the_history_keeps_records_not_values_beyond_the_latest_runs():
    @task
    def big() -> bytes:
        return bytes(10_000_000)  # a 10 MB intermediate

    @task
    def size(data: bytes) -> int:
        return len(data)

    @flow
    def measure() -> int:
        return size(big())

    tracemalloc.start()
    try:
        for _ in range(10):
            measure()
        gc.collect()
        after_10, _ = tracemalloc.get_traced_memory()
        for _ in range(90):
            measure()
        gc.collect()
        after_100, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The latest RUN_VALUES_KEPT runs hold their 10 MB each, at 10 runs as at 100.
    assert after_10 < (kernelflow._runs.RUN_VALUES_KEPT + 1) * 10_000_000
    assert after_100 - after_10 < 2_000_000  # flat, not 90 x 10 MB more
    assert len(kernelflow.runs()) == 100

    kernelflow.runs.clear()
    assert kernelflow.runs() == [] and kernelflow.last_run() is None


# --- reuse decided from content, not identity (issue 30) ------------------------------

extend_broken: set[str] = set()


@task
def first_three() -> list[int]:
    calls.append("first_three")
    return [1, 2, 3]


@task
def append_six(xs: list[int]) -> list[int]:
    xs.append(6)  # in place: the upstream's result changes
    if "append_six" in extend_broken:
        raise ValueError("append_six is broken")
    return xs


@flow
def appends() -> list[int]:
    return append_six(first_three())


def test_a_result_changed_in_place_by_a_failed_step_is_not_reused(kf_logs):
    extend_broken.add("append_six")
    with pytest.raises(ValueError):
        appends()
    failed = kernelflow.last_run()
    extend_broken.clear()
    calls.clear()
    assert failed.retry() == [1, 2, 3, 6]  # what a fresh run gives, not [1, 2, 3, 6, 6]
    assert calls == ["first_three"]  # it ran again: its result was changed after it ended
    said = [r.getMessage() for r in kf_logs if "changed in place" in r.getMessage()]
    assert said == [
        "Not reused from first_three-0: its inputs or its result were changed "
        "in place after it ran."
    ]


@task
def total(xs: list[int]) -> int:
    calls.append("total")
    return sum(xs)


@flow
def sums(xs, fail):  # no hints: validation would hand the run a copy of the list
    result = total(xs)
    if fail:
        raise ValueError("the flow failed after total")
    return result


def test_a_list_parameter_changed_in_place_before_the_retry_runs_again():
    numbers = [1, 2, 3]
    with pytest.raises(ValueError):
        sums(numbers, True)
    failed = kernelflow.last_run()
    numbers.append(100)  # the very object the run received, changed in place
    failed.parameters["fail"] = False
    calls.clear()
    assert failed.retry() == 106  # a fresh run's result, not the stale 6
    assert calls == ["total"]


def test_an_unchanged_list_is_still_reused():
    numbers = [1, 2, 3]
    with pytest.raises(ValueError):
        sums(numbers, True)
    failed = kernelflow.last_run()
    failed.parameters["fail"] = False
    calls.clear()
    assert failed.retry() == 6
    assert calls == []


def test_a_value_too_large_to_digest_is_reused_and_the_state_says_unchecked(monkeypatch):
    from kernelflow import _digests

    monkeypatch.setattr(_digests, "MAX_ITEMS", 2)
    numbers = [1, 2, 3]
    with pytest.raises(ValueError):
        sums(numbers, True)
    failed = kernelflow.last_run()
    failed.parameters["fail"] = False
    assert failed.retry() == 6
    (reused,) = kernelflow.last_run().task_runs
    assert "not checked for changes made in place" in reused.state.message


def test_reused_from_names_the_original_flow_run_whatever_note_follows():
    from kernelflow._engine.retry_plan import reused_from
    from kernelflow.states import Cached, Completed

    for note in (
        "",
        " (read from the result store)",
        " (not checked for changes made in place: too large to digest)",
    ):
        state = Cached(1, message=f"reused from load-0 of flow run etl-3f2a{note}")
        assert reused_from(state) == "etl-3f2a"
    assert reused_from(Cached(1)) is None  # a cache hit
    assert reused_from(Completed(1, message="reused from load-0 of flow run etl-3f2a")) is None

"""Result options: a flow's fill in its tasks', cache_result_in_memory, the key namespace."""

from __future__ import annotations

import json

from kernelflow import flow, task
from kernelflow.states import StoredResult
from kernelflow.tasks import task_input_hash

# Module globals: TASK_SOURCE hashes closure values, so a closure log would change keys.
calls: list = []


@task
def plain(x):
    calls.append(x)
    return {"doubled": 2 * x}


@task(persist_result=False)
def opted_out(x):
    calls.append(("out", x))
    return x


def test_a_flow_that_persists_results_turns_default_caching_on_for_tasks_that_set_none(
    tmp_path,
):
    calls.clear()

    @flow(persist_result=True, result_storage=tmp_path / "results", result_serializer="json")
    def persisting():
        # DEFAULT keys on the run too: identical calls in one flow run hit
        states = [plain(1, return_state=True), plain(1, return_state=True)]
        opted_out(1)
        opted_out(1)
        return states

    first, second = persisting()
    assert (first.name, second.name) == ("Completed", "Cached")
    assert second.result() == {"doubled": 2}
    assert calls == [1, ("out", 1), ("out", 1)]
    entries = [p for p in (tmp_path / "results").iterdir() if p.is_file()]
    assert len(entries) == 1  # in the flow's storage, written with its serializer
    assert json.dumps({"doubled": 2}).encode() in entries[0].read_bytes()

    @flow
    def not_persisting():
        return [plain(1, return_state=True), plain(1, return_state=True)]

    calls.clear()
    assert [s.name for s in not_persisting()] == ["Completed", "Completed"]
    assert calls == [1, 1]


def test_cache_result_in_memory_false_keeps_only_where_the_result_is(tmp_path):
    @task(cache_key_fn=task_input_hash, cache_result_in_memory=False)
    def big(x):
        return list(range(x))

    @flow
    def uses_it():
        future = big.submit(5)
        value = future.result()
        state = big(5, return_state=True)  # a hit: also read from the store
        return future, state, value

    computed, hit, value = uses_it()
    assert value == [0, 1, 2, 3, 4]
    assert isinstance(computed.data, StoredResult) and isinstance(hit.data, StoredResult)
    assert hit.name == "Cached" and hit.result() == computed.result() == value


def test_the_cache_namespace_is_fixed_when_the_task_is_made():
    @task(cache_key_fn=task_input_hash, persist_result=True)
    def foo(x):
        return x

    def same_code(x):
        return x

    def new_code(x):
        return x + 1

    @flow
    def swaps():
        first = foo(1, return_state=True)
        foo.fn = same_code
        second = foo(1, return_state=True)
        foo.fn = new_code
        third = foo(1, return_state=True)
        return first, second, third

    assert [s.name for s in swaps()] == ["Completed", "Cached", "Completed"]


def test_a_result_that_cannot_be_serialized_is_run_and_not_cached(kf_logs):
    @task(result_serializer="json")
    def gives_a_function():
        return lambda: 1

    assert gives_a_function()() == 1
    assert any("Encountered an error while serializing result" in r.getMessage() for r in kf_logs)

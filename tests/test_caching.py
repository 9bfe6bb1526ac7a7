"""Caching in task runs, proved with call logs: on a rerun that should hit, the task's
call log stays as it was."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import threading
import time
from pathlib import Path

import pytest

import kernelflow.cache
from kernelflow import flow, task
from kernelflow.cache_policies import DEFAULT, FLOW_PARAMETERS, INPUTS, NONE, TASK_SOURCE
from kernelflow.exceptions import UnsafeCacheDirectory
from kernelflow.task_runners import ThreadPoolTaskRunner
from kernelflow.tasks import task_input_hash
from tests.cache_support import Notebook, home, run_python, run_pythons

ALL_HITS = INPUTS + TASK_SOURCE

# The call log. A module global rather than a closure variable: TASK_SOURCE hashes
# closure values, so a log captured in a closure would change every task's key.
calls: list = []


@pytest.fixture(autouse=True)
def _empty_call_log():
    calls.clear()


def logged_task(**options):
    @task(**options)
    def double(x):
        calls.append(x)
        return x * 2

    return double


def run_flow(some_task, inputs):
    @flow
    def pipeline(xs):
        return [some_task(x, return_state=True) for x in xs]

    return pipeline(inputs)


def test_without_a_cache_option_no_key_is_computed_and_nothing_is_stored():
    double = logged_task()
    run_flow(double, [1, 2])
    run_flow(double, [1, 2])
    assert calls == [1, 2, 1, 2]
    assert not (Path(os.environ["KERNELFLOW_HOME"]) / "results").exists()  # (runs.sqlite3 is)


@pytest.mark.parametrize(
    "options",
    [{"cache_key_fn": task_input_hash}, {"cache_policy": INPUTS + TASK_SOURCE}],
    ids=["task_input_hash", "INPUTS+TASK_SOURCE"],
)
def test_second_flow_run_reuses_every_result(options):
    double = logged_task(**options)
    first = run_flow(double, [1, 2, 3])
    assert [s.name for s in first] == ["Completed"] * 3
    assert calls == [1, 2, 3]
    second = run_flow(double, [1, 2, 3])
    assert calls == [1, 2, 3]
    assert [(s.name, s.message, s.result()) for s in second] == [
        ("Cached", "cache hit", 2),
        ("Cached", "cache hit", 4),
        ("Cached", "cache hit", 6),
    ]
    assert all(s.is_completed() for s in second)
    run_flow(double, [4])
    assert calls == [1, 2, 3, 4]


def test_direct_calls_outside_a_flow_are_cached_too():
    double = logged_task(cache_policy=ALL_HITS)
    assert double(5) == 10 and double(5) == 10
    assert calls == [5]


def test_default_policy_reuses_only_within_one_flow_run():
    double = logged_task(cache_policy=DEFAULT)
    states = run_flow(double, [1, 1])
    assert calls == [1] and [s.name for s in states] == ["Completed", "Cached"]
    run_flow(double, [1])
    assert calls == [1, 1]


def test_flow_parameters_policy():
    double = logged_task(cache_policy=FLOW_PARAMETERS)

    @flow
    def pipeline(n):
        return double(n)

    pipeline(1), pipeline(1), pipeline(2)
    assert calls == [1, 2]


def test_none_policy_and_persist_false_and_none_key_do_not_cache():
    for options in (
        {"cache_policy": NONE},
        {"cache_policy": ALL_HITS, "persist_result": False},
        {"cache_key_fn": lambda context, parameters: None},
    ):
        calls.clear()
        double = logged_task(**options)
        double(1), double(1)
        assert calls == [1, 1], options


def test_excluded_argument_does_not_change_the_key():

    @task(cache_policy=(INPUTS - "verbose") + TASK_SOURCE)
    def work(x, verbose=False):
        calls.append(x)
        return x

    work(1, verbose=True), work(1, verbose=False)
    assert calls == [1]


def test_expired_results_are_recomputed():
    double = logged_task(cache_policy=ALL_HITS, cache_expiration=datetime.timedelta(seconds=0.6))
    double(1), double(1)
    assert calls == [1]
    time.sleep(0.7)
    state = double(1, return_state=True)
    assert calls == [1, 1]
    assert state.name == "Completed" and state.message == "cache miss: the cached result expired"
    [entry] = kernelflow.cache.entries()
    assert entry.expires is not None


def test_refresh_cache_runs_and_replaces_the_entry():
    @task(cache_policy=ALL_HITS)
    def stamp(x):
        calls.append(x)
        return len(calls)

    assert stamp(1) == 1 and stamp(1) == 1
    refreshing = stamp.with_options(refresh_cache=True)
    state = refreshing(1, return_state=True)
    assert state.result() == 2 and state.message == "cache refresh: refresh_cache=True"
    assert stamp(1) == 2
    assert calls == [1, 1]


def test_failed_runs_are_not_cached():

    @task(cache_policy=ALL_HITS)
    def flaky(x):
        calls.append(x)
        if len(calls) == 1:
            raise ValueError("first time fails")
        return x

    with pytest.raises(ValueError):
        flaky(1)
    assert kernelflow.cache.entries() == []
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert calls == [1, 1]


def test_retries_that_end_in_success_are_cached():

    @task(cache_policy=ALL_HITS, retries=2)
    def flaky(x):
        calls.append(x)
        if len(calls) < 3:
            raise ValueError("not yet")
        return x

    assert flaky(1) == 1 and calls == [1, 1, 1]
    assert flaky(1, return_state=True).name == "Cached"
    assert calls == [1, 1, 1]


NOTEBOOK_TASK = """
    from kernelflow import task
    from kernelflow.cache_policies import INPUTS, TASK_SOURCE

    def clean(text):
        return text.strip()

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def prepare(text):
        calls.append(text)
        return clean(text)  # the helper's source is part of the key
"""


def test_editing_a_helper_invalidates_and_says_so():
    nb = Notebook(calls=calls)
    nb.run(NOTEBOOK_TASK)
    assert nb["prepare"](" a ") == "a"
    assert nb["prepare"](" a ", return_state=True).name == "Cached"
    nb.run("""
        def clean(text):
            return text.strip().upper()
    """)
    state = nb["prepare"](" a ", return_state=True)
    assert state.result() == "A" and calls == [" a ", " a "]
    assert state.message == "cache miss: source of helper `clean` changed"


def test_editing_the_task_invalidates_but_a_comment_edit_does_not():
    nb = Notebook(calls=calls)
    nb.run(NOTEBOOK_TASK)
    nb["prepare"]("x")
    nb.run(NOTEBOOK_TASK.replace("# the helper's", "# EDITED: the helper's") + "\n\n    # more\n")
    assert nb["prepare"]("x", return_state=True).name == "Cached"
    assert calls == ["x"]
    nb.run(NOTEBOOK_TASK.replace("return clean(text)", "return clean(text) + '!'"))
    state = nb["prepare"]("x", return_state=True)
    assert state.result() == "x!" and calls == ["x", "x"]
    assert state.message == "cache miss: source of task `prepare` changed"


def test_every_run_of_a_map_says_the_source_changed_not_only_the_first():
    # The first run to miss under the new code stores its result, and with it the new
    # code as the task's last: its siblings missed for the same reason, and say so.
    nb = Notebook(calls=calls)
    nb.run(NOTEBOOK_TASK)
    nb.run("""
        from kernelflow import flow
        from kernelflow.task_runners import ThreadPoolTaskRunner

        @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
        def all_of(texts):
            return prepare.map(texts, return_state=True)
    """)
    nb["all_of"](["a", "b", "c"])
    nb.run(NOTEBOOK_TASK.replace("return clean(text)", "return clean(text) + '!'"))
    states = nb["all_of"](["a", "b", "c"])
    assert [state.result() for state in states] == ["a!", "b!", "c!"]
    assert {state.message for state in states} == {"cache miss: source of task `prepare` changed"}
    # New inputs under the new code miss for their own reason.
    [new] = nb["all_of"](["d"])
    assert new.message == "cache miss: no cached result for these inputs"


def test_miss_messages_for_new_inputs():
    double = logged_task(cache_policy=ALL_HITS)
    assert double(1, return_state=True).message == "cache miss: no cached result yet"
    assert double(2, return_state=True).message == "cache miss: no cached result for these inputs"


SCRIPT = """
    from kernelflow import flow, task
    from kernelflow.cache_policies import INPUTS, TASK_SOURCE

    calls = []

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def square(x):
        calls.append(x)
        return x * x

    @flow
    def pipeline(xs):
        return [square(x, return_state=True) for x in xs]

    states = pipeline([1, 2, 3])
    print(calls, [s.name for s in states], [s.result() for s in states])
"""


def test_results_are_reused_by_another_python_process(tmp_path):
    first = run_python(SCRIPT, home(), tmp_path)
    assert first.strip() == "[1, 2, 3] ['Completed', 'Completed', 'Completed'] [1, 4, 9]"
    second = run_python(SCRIPT, home(), tmp_path)
    assert second.strip() == "[] ['Cached', 'Cached', 'Cached'] [1, 4, 9]"


def test_four_processes_running_one_cached_flow_at_once(tmp_path):
    outputs = run_pythons(SCRIPT, home(), tmp_path, count=4)
    for out in outputs:
        assert out.strip().endswith("[1, 4, 9]")
    assert len(kernelflow.cache.entries()) == 3
    assert run_python(SCRIPT, home(), tmp_path).strip() == (
        "[] ['Cached', 'Cached', 'Cached'] [1, 4, 9]"
    )


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_entry_is_recomputed_with_a_warning(damage, kf_logs):
    double = logged_task(cache_policy=ALL_HITS)
    double(21)
    [entry] = kernelflow.cache.entries()
    data = entry.path.read_bytes()
    entry.path.write_bytes(data[:-3] if damage == "truncate" else b"garbage" * 10)
    state = double(21, return_state=True)
    assert state.result() == 42 and state.name == "Completed" and calls == [21, 21]
    assert "could not be loaded" in state.message
    assert any("could not be loaded" in r.getMessage() for r in kf_logs)
    assert double(21, return_state=True).name == "Cached"  # the new result replaced it
    assert calls == [21, 21]


STARTED = threading.Event()


def test_identical_runs_in_flight_run_once():
    STARTED.clear()

    @task(cache_policy=ALL_HITS)
    def slow(x):
        calls.append(x)
        STARTED.set()
        time.sleep(0.3)
        return x + 1

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def pipeline():
        first = slow.submit(1)
        STARTED.wait(5)
        second = slow.submit(1)
        first.wait(), second.wait()
        return [first.state, second.state]

    states = pipeline()
    assert calls == [1]
    assert [s.name for s in states] == ["Completed", "Cached"]
    assert [s.result() for s in states] == [2, 2]


def test_unhashable_inputs_run_uncached_with_a_one_line_warning(kf_logs):

    @task(cache_key_fn=task_input_hash)
    def use(lock):
        calls.append(1)
        return 1

    @task(cache_policy=ALL_HITS)
    def use_too(lock):
        calls.append(2)
        return 2

    lock = threading.Lock()
    use(lock), use(lock), use_too(lock), use_too(lock)
    assert calls == [1, 1, 2, 2]
    warnings = [r.getMessage() for r in kf_logs if "Not cached" in r.getMessage()]
    assert warnings and all("\n" not in m for m in warnings)
    assert not [r for r in kf_logs if r.exc_info]


def test_result_storage_and_storage_key(tmp_path):
    storage = tmp_path / "mine"
    double = logged_task(result_storage=storage, result_storage_key="double-{x}.bin")
    double(3), double(3)
    assert calls == [3]
    assert (storage / "double-3.bin").is_file()
    assert [e.key for e in kernelflow.cache.entries(storage=storage)] == ["double-3.bin"]


def test_json_and_custom_serializers():
    double = logged_task(cache_policy=ALL_HITS, result_serializer="json")
    double(4), double(4)
    [entry] = kernelflow.cache.entries()
    assert entry.path.read_bytes().endswith(b"8") and calls == [4]

    class Reversed:
        def dumps(self, value):
            return json.dumps(value).encode()[::-1]

        def loads(self, data):
            return json.loads(data[::-1])

    custom = logged_task(
        cache_policy=ALL_HITS,
        result_serializer=Reversed(),
        result_storage=entry.path.parent.parent / "custom",
    )
    assert custom(5) == 10 and custom(5) == 10 and calls == [4, 5]


def test_a_result_that_cannot_be_serialized_completes_uncached(kf_logs):

    @task(cache_policy=ALL_HITS, result_serializer="json")
    def make(x):
        calls.append(x)
        return {1, 2}  # not JSON

    state = make(1, return_state=True)
    assert state.is_completed() and state.message.endswith("result not cached")
    assert make(1) == {1, 2} and calls == [1, 1]


def test_an_unsafe_store_fails_the_run_with_a_clear_error():
    home().mkdir()
    os.chmod(home(), 0o777)
    double = logged_task(cache_policy=ALL_HITS)
    with pytest.raises(UnsafeCacheDirectory, match="other users can write"):
        double(1)
    assert calls == []


def test_clear_makes_a_task_run_again():
    double = logged_task(cache_policy=ALL_HITS)
    double(1), double(1)
    assert kernelflow.cache.clear(double) == 1
    double(1)
    assert calls == [1, 1]


def async_fetch(delay: float):
    @task(cache_policy=ALL_HITS)
    async def fetch(x):
        calls.append(x)
        await asyncio.sleep(delay)
        return x * 10

    return fetch


def test_async_tasks_in_async_flows_are_cached():
    fetch = async_fetch(0)

    @flow
    async def pipeline():
        return [await fetch(1, return_state=True), await fetch(1, return_state=True)]

    states = asyncio.run(pipeline())
    assert [s.name for s in states] == ["Completed", "Cached"]
    assert [s.result() for s in states] == [10, 10] and calls == [1]


def test_an_unusable_store_runs_uncached_with_a_warning(kf_logs):
    home().write_text("a file, not a directory")
    double = logged_task(cache_policy=ALL_HITS)
    assert double(1) == 2 and double(1) == 2
    assert calls == [1, 1]
    assert any("result store is unusable" in r.getMessage() for r in kf_logs)


def test_mapped_and_submitted_runs_are_cached():
    double = logged_task(cache_policy=ALL_HITS)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def pipeline():
        mapped = double.map([1, 2, 3])
        submitted = double.submit(4)
        return mapped.result() + [submitted.result()]

    assert pipeline() == [2, 4, 6, 8]
    assert pipeline() == [2, 4, 6, 8]
    assert sorted(calls) == [1, 2, 3, 4]


def test_a_changed_module_constant_invalidates_and_says_so():
    nb = Notebook(calls=calls)
    nb.run("""
        from kernelflow import task
        from kernelflow.cache_policies import INPUTS, TASK_SOURCE

        RATE = 2

        @task(cache_policy=INPUTS + TASK_SOURCE)
        def scale(x):
            calls.append(x)
            return x * RATE
    """)
    nb["scale"](1), nb["scale"](1)
    nb.run("RATE = 3")
    state = nb["scale"](1, return_state=True)
    assert state.result() == 3 and calls == [1, 1]
    assert state.message == "cache miss: global `RATE` changed"


class Doubler:
    """A callable object as a task's function: no source, no __qualname__."""

    def __call__(self, x):
        calls.append(x)
        return 2 * x


def test_a_callable_object_task_is_cached_by_inputs():
    doubler = task(Doubler(), name="doubler", cache_policy=INPUTS)
    assert doubler(2) == 4 and doubler(2) == 4
    assert calls == [2]


def test_inside_a_transaction_the_entry_is_written_on_commit_only():
    from kernelflow import transaction

    double = logged_task(cache_policy=ALL_HITS)

    @task
    def fail():
        raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        with transaction():
            double(1)
            assert kernelflow.cache.entries() == []  # staged, not yet written
            fail()
    assert kernelflow.cache.entries() == []  # rolled back: never written
    with transaction():
        double(2)
    assert [e.task for e in kernelflow.cache.entries()] == ["double"]
    double(1), double(2)
    assert calls == [1, 2, 1]


def test_identical_async_runs_in_flight_on_one_loop_run_once():
    fetch = async_fetch(0.2)

    @flow
    async def pipeline():
        return await asyncio.gather(fetch(1, return_state=True), fetch(1, return_state=True))

    states = asyncio.run(pipeline())
    assert calls == [1]
    assert sorted(s.name for s in states) == ["Cached", "Completed"]
    assert [s.result() for s in states] == [10, 10]


def test_a_task_calling_itself_with_the_same_key_does_not_deadlock():
    @task(cache_policy=(INPUTS - "depth") + TASK_SOURCE)
    def again(x, depth=0):
        calls.append(depth)
        return again(x, depth=1) if depth == 0 else x

    assert again(7) == 7 and calls == [0, 1]
    assert again(7) == 7 and calls == [0, 1]


def test_a_policy_of_your_own_with_prefects_compute_key():
    from kernelflow.cache_policies import CachePolicy

    class FirstLetter(CachePolicy):
        def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
            return inputs["word"][0] if inputs["word"] else None

    @task(cache_policy=FirstLetter())
    def shout(word):
        calls.append(word)
        return word.upper()

    assert shout("apple") == "APPLE" and shout("avocado") == "APPLE"
    assert shout("") == "" and shout("") == ""
    assert calls == ["apple", "", ""]


def test_a_failing_key_fn_or_storage_key_runs_uncached_with_a_warning(kf_logs):
    def broken(context, parameters):
        raise KeyError("nope")

    for options in (
        {"cache_key_fn": broken},
        {"result_storage_key": "{missing}.bin"},
        {"result_storage_key": "../outside-{x}"},
    ):
        calls.clear()
        double = logged_task(**options)
        assert double(1) == 2 and double(1) == 2
        assert calls == [1, 1], options
    messages = [r.getMessage() for r in kf_logs]
    assert any("cache key could not be computed" in m for m in messages)
    assert sum("result_storage_key could not be formatted" in m for m in messages) == 2


# --- Prefect's caching defaults ------------------------------------------------------------


def test_prefects_defaults_for_cache_policy_and_persist_result():
    from kernelflow.cache_policies import NO_CACHE, Inputs

    def fn(x):
        return x

    plain = task(fn)
    assert plain.cache_policy is DEFAULT and plain.persist_result is None
    assert task(persist_result=True)(fn).cache_policy is DEFAULT
    assert task(persist_result=False)(fn).cache_policy is NO_CACHE is NONE
    assert task(persist_result=False, cache_policy=None)(fn).cache_policy is None
    assert task(result_storage_key="k")(fn).cache_policy is None
    for options in (
        {"cache_policy": INPUTS},
        {"cache_policy": Inputs},  # the class, as Prefect allows
        {"cache_key_fn": lambda *_: "k"},
        {"result_serializer": "json"},
        {"result_storage_key": "k"},
    ):
        made = task(**options)(fn)
        assert made.persist_result is True, options
        assert plain.with_options(**options).persist_result is True, options
    assert isinstance(task(cache_policy=Inputs)(fn).cache_policy, Inputs)


def test_a_task_that_set_nothing_about_results_reads_default_in_a_process_pools_worker_too():
    """Such a task holds a stand-in until its policy is read (the policies' import is a
    first @task's largest cost); a copy sent to a worker must read DEFAULT as well."""
    import cloudpickle

    def fn(x):
        return x

    for made in (task(fn), cloudpickle.loads(cloudpickle.dumps(task(fn)))):
        assert made.cache_policy is DEFAULT
        assert (made.caches, made.caches_if_persisted, made.result_storage) == (False, True, None)


DEFAULT_POLICY_CALLS: list[int] = []  # global: TASK_SOURCE hashes closure values


def _two_calls_in_one_flow_run(**options):
    """The state names of two identical calls in one flow run of a task with ``options``."""

    @task(**options)
    def ident(x):
        DEFAULT_POLICY_CALLS.append(x)
        return x

    @flow
    def pipeline():
        return ident(1, return_state=True), ident(1, return_state=True)

    return [state.name for state in pipeline()]


def test_persist_result_true_caches_with_the_default_policy_within_a_flow_run():
    DEFAULT_POLICY_CALLS.clear()
    assert _two_calls_in_one_flow_run(persist_result=True) == ["Completed", "Cached"]
    assert DEFAULT_POLICY_CALLS == [1]
    # DEFAULT includes RUN_ID: a new flow run computes again
    assert _two_calls_in_one_flow_run(persist_result=True) == ["Completed", "Cached"]
    assert DEFAULT_POLICY_CALLS == [1, 1]


def test_no_option_about_results_caches_nothing():
    assert _two_calls_in_one_flow_run() == ["Completed", "Completed"]


def test_persist_result_false_overrides_a_policy_with_a_warning(kf_logs):
    from kernelflow.cache_policies import NO_CACHE

    @task(persist_result=False, cache_policy=INPUTS)
    def ident(x):
        return x

    assert ident.cache_policy is NO_CACHE
    assert any("Ignoring `cache_policy`" in r.getMessage() for r in kf_logs)


def test_a_negative_expiration_expires_at_once():
    calls = []

    @task(cache_key_fn=lambda *_: "fixed", cache_expiration=datetime.timedelta(seconds=-5))
    def ident(x):
        calls.append(x)
        return x

    assert ident(1) == 1 and ident(2) == 2 and calls == [1, 2]


def test_configure_key_storage_is_where_the_tasks_results_go(tmp_path):
    from kernelflow.filesystems import LocalFileSystem

    policy = INPUTS.configure(key_storage=LocalFileSystem(basepath=tmp_path / "keys"))
    assert policy == INPUTS and policy is not INPUTS

    @task(cache_policy=policy)
    def ident(x):
        return x

    assert ident(1) == 1
    assert [entry.task for entry in kernelflow.cache.entries(storage=tmp_path / "keys")] == [
        "ident"
    ]
    assert (INPUTS + TASK_SOURCE).configure(isolation_level="SERIALIZABLE").isolation_level


def test_unhashable_inputs_warning_names_the_argument_and_each_serializers_error(kf_logs):
    @task(persist_result=True)
    def use(x, lock_obj):
        return x

    assert use(42, lock_obj=threading.Lock()) == 42
    [warning] = [r.getMessage() for r in kf_logs if "Not cached" in r.getMessage()]
    assert "\n" not in warning
    assert "Disable caching by passing `cache_policy=NO_CACHE`" in warning  # Prefect's advice
    assert "Unable to create hash - objects could not be serialized." in warning
    assert "argument 'lock_obj': JSON error: Unable to serialize unknown type: " in warning
    assert "Pickle error: cannot pickle '_thread.lock' object" in warning
    assert "'x'" not in warning  # the hashable argument is not blamed


def test_a_cache_key_fn_can_key_on_the_flow_run_it_runs_in():
    # Prefect's context: context.task_run.flow_run_id (reuse within one flow run only).
    @task(cache_key_fn=lambda context, args: str(context.task_run.flow_run_id))
    def first_value(x):
        return x

    @flow
    def pipeline():
        return first_value("a", return_state=True), first_value("b", return_state=True)

    for _ in range(2):  # each flow run starts afresh
        one, two = pipeline()
        assert (one.name, two.name) == ("Completed", "Cached")
        assert (one.result(), two.result()) == ("a", "a")

"""A direct call's cache hit (``_engine/cache_hits.py``): settled without the lifecycle,
it records exactly what the lifecycle's hit records; a miss goes on into the lifecycle
with its first look, so nothing is looked up twice."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow._context import flow_run_context
from kernelflow._engine.drivers import drive_sync
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.task_engine import create_task_run, task_lifecycle
from kernelflow._stored import StoredResult
from kernelflow.cache_policies import INPUTS, TASK_SOURCE, CachePolicy
from tests.test_plans import record


def double(x):
    return 2 * x


def through_the_lifecycle(t, *args):
    """A direct call of ``t`` as the general path makes it: its lifecycle, driven."""
    parameters = t.bind_parameters(args, {})
    flow_ctx = flow_run_context.get()
    run, upstream = create_task_run(t, parameters, None, flow_ctx)
    lifecycle = task_lifecycle(t, run, parameters, None, upstream, flow_ctx)
    return drive_sync(RunHandle(run, lifecycle))


def _lookup(run):
    lookup = run.cache_key
    return (lookup.store, lookup.key, lookup.task_id, lookup.parts, lookup.serializer)


def _compared(run):
    fields = record(run, threading.current_thread().name)
    fields["cache_key"] = _lookup(run)
    fields["name"] = run.name.rsplit("-", 1)[0]  # its number is its own
    fields["history"] = [  # where a result kept out of memory is: its repr names its key
        (*rest, repr(data) if isinstance(data, StoredResult) else data)
        for *rest, data in fields["history"]
    ]
    return fields


VARIANTS = {
    "inputs and source": {"cache_policy": INPUTS + TASK_SOURCE},
    "kept out of memory": {"cache_policy": INPUTS, "cache_result_in_memory": False},
    "tagged": {"cache_policy": INPUTS, "tags": ["a"]},
    "pickle": {"cache_policy": INPUTS, "result_serializer": "pickle"},
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_a_direct_hit_records_what_the_lifecycles_hit_records(variant, kf_logs):
    t = task(double, **VARIANTS[variant])

    @flow
    def calls():
        t(3)  # the miss: stored
        kf_logs.clear()
        direct = t(3, return_state=True)
        direct_lines = [(r.levelname, r.getMessage()) for r in kf_logs]
        kf_logs.clear()
        general = through_the_lifecycle(t, 3)
        general_lines = [(r.levelname, r.getMessage()) for r in kf_logs]
        return direct, general, direct_lines, general_lines

    direct, general, direct_lines, general_lines = calls()
    assert (direct.name, direct.message) == ("Cached", "cache hit")
    assert (direct.type, direct.name, direct.message) == (
        general.type,
        general.name,
        general.message,
    )
    assert type(direct.data) is type(general.data)
    assert direct.result() == general.result() == 6
    first, hit, general_hit = kernelflow.last_run().task_runs
    assert hit.state is direct and general_hit.state is general
    assert _compared(hit) == _compared(general_hit)
    assert [(s.name, s.message) for s in hit.history] == [
        ("Pending", None),
        ("Cached", "cache hit"),
    ]
    assert direct_lines == general_lines
    assert first.cache_key.key == hit.cache_key.key


def test_outside_a_flow_a_hit_is_the_same_state():
    t = task(double, cache_policy=INPUTS)
    assert t(4) == 8
    hit = t(4, return_state=True)
    assert (hit.name, hit.message, hit.result()) == ("Cached", "cache hit", 8)


class Counting(CachePolicy):
    """A policy that counts the keys it computes (None for x == "skip": not cached)."""

    def __init__(self):
        self.calls = 0

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
        self.calls += 1
        return None if inputs["x"] == "skip" else str(inputs["x"])


def _twice(x):
    """Two identical direct calls, in one flow run, of a task with a ``Counting`` policy:
    (the policy, the body's calls, the two states)."""
    policy = Counting()
    body_calls = []

    @task(cache_policy=policy)
    def work(x):
        body_calls.append(x)
        return x

    @flow
    def calls():
        return work(x, return_state=True), work(x, return_state=True)

    return policy, body_calls, calls()


def test_a_miss_is_looked_up_once_then_run_claimed_and_stored():
    policy, body_calls, (miss, hit) = _twice(1)
    assert policy.calls == 2  # one key per run: the miss's first look went on with it
    assert body_calls == [1]
    assert miss.message == "cache miss: no cached result yet"
    assert (hit.name, hit.message) == ("Cached", "cache hit")


def test_a_run_that_asks_for_no_caching_after_all_runs_once_uncached():
    policy, body_calls, (first, second) = _twice("skip")
    assert policy.calls == 2  # not once more by the lifecycle
    assert body_calls == ["skip", "skip"]
    assert first.name == second.name == "Completed"
    assert [run.cache_key for run in kernelflow.last_run().task_runs] == [None, None]


def test_a_hit_of_a_task_with_hooks_calls_them_as_the_lifecycle_does():
    seen = []

    @task(cache_policy=INPUTS, on_completion=[lambda t, run, state: seen.append(state.name)])
    def work(x):
        return x

    @flow
    def calls():
        work(1)
        work(1)
        through_the_lifecycle(work, 1)

    calls()
    assert seen == ["Completed", "Cached", "Cached"]


def test_a_hit_that_expired_is_a_miss_that_runs_again():
    body_calls = []

    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=-1))
    def work(x):
        body_calls.append(x)
        return x

    @flow
    def calls():
        work(1)
        return work(1, return_state=True)

    again = calls()
    assert body_calls == [1, 1]
    assert again.message == "cache miss: the cached result expired"


class Interrupting(CachePolicy):
    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
        raise KeyboardInterrupt


def test_an_interrupt_during_the_look_ends_the_run_cancelled_not_pending():
    work = task(double, cache_policy=Interrupting())

    @flow
    def calls():
        work(1)

    with pytest.raises(KeyboardInterrupt):
        calls()
    run = kernelflow.last_run().task_runs[0]
    assert (run.state.name, run.state.message) == ("Cancelled", "Interrupted by the user.")


def test_a_call_with_wait_for_takes_the_lifecycle_and_still_hits():
    work = task(double, cache_policy=INPUTS)

    @flow
    def calls():
        first = work.submit(5)
        work(5, wait_for=[first])
        return work(5, wait_for=[first], return_state=True)

    hit = calls()
    assert (hit.name, hit.message, hit.result()) == ("Cached", "cache hit", 10)


def test_an_async_task_in_a_sync_flow_and_a_generator_task_hit_as_before():
    calls = []

    @task(cache_policy=INPUTS)
    async def later(x):
        calls.append(x)
        return x + 1

    @task(cache_policy=INPUTS)
    def items(n):
        calls.append(n)
        yield from range(n)

    @flow
    def uses():
        return [later(1), later(1), list(items(3)), list(items(3))]

    assert uses() == [2, 2, [0, 1, 2], [0, 1, 2]]
    assert calls == [1, 3]
    names = [run.state.name for run in kernelflow.last_run().task_runs]
    assert names == ["Completed", "Cached", "Completed", "Cached"]

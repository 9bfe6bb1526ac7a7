"""A run's plan (``_engine/plans.py``): plain runs skip the lifecycle's machinery, and
record exactly what the general path records; every option and every circumstance that
needs a step of the lifecycle still takes it."""

from __future__ import annotations

import threading
import time

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow._context import FlowRunContext, Gate
from kernelflow._engine import plans
from kernelflow._engine.inputs import NOTHING_UPSTREAM, Upstream
from kernelflow.cache_policies import INPUTS
from kernelflow.states import Completed, Failed
from kernelflow.task_runners import ThreadPoolTaskRunner


def body(x):
    if x == "fail":
        raise ValueError("no good")
    if x == "soft":
        return Failed(message="soft failure")
    if x == "state":
        return Completed(data=7)
    if x == "list":
        return [x, 1, None]
    return x


plain = task(body)
# Options that take the general path and change nothing a successful or failed run
# records: a generous timeout, and a hook that does nothing before the body.
GENERAL = {
    "timeout": plain.with_options(timeout_seconds=60),
    "hook": plain.with_options(on_running=[lambda *_: None]),
}


def _data(value):
    if isinstance(value, BaseException):
        return (type(value), str(value))
    return value


def record(run, own_thread: str | None):
    """What a run record says, in comparable form (ids and times by their relations)."""
    history = run.history
    times = [state.timestamp for state in history]
    return {
        "name": run.name,
        "history": [(s.type, s.name, s.message, _data(s.data)) for s in history],
        "times in order": times == sorted(times),
        "start_time": run.start_time == history[1].timestamp,
        "end_time": run.end_time == history[-1].timestamp,
        "run_count": run.run_count,
        "worker": run.worker == own_thread if own_thread else run.worker.startswith("kernelflow"),
        "parameters": run.parameters,
        "tags": run.tags,
        "upstream": {name: len(ids) for name, ids in run.upstream.items()},
        "possible_upstream": {name: len(ids) for name, ids in run.possible_upstream.items()},
        "map": (run.map_index, run.map_group),
        "transaction": run.transaction,
        "digests": run.digests,
        "cache_key": run.cache_key,
        "listed": run.flow_run is None or run in run.flow_run.task_runs,
    }


def _direct(t, x):
    @flow
    def calls():
        upstream = t("up" * 3)
        t(upstream if x == "edge" else x, return_state=True)
        return "done"

    calls()
    return kernelflow.last_run().task_runs[-1], threading.current_thread().name


def _submitted(t, x):
    @flow(task_runner=ThreadPoolTaskRunner(2))
    def submits():
        t.submit(x).wait()
        return "done"

    submits()
    return kernelflow.last_run().task_runs[-1], None


def _mapped(t, x):
    @flow(task_runner=ThreadPoolTaskRunner(2))
    def maps():
        kernelflow.futures.wait(t.map([x, x]))
        return "done"

    maps()
    return kernelflow.last_run().task_runs[-1], None


# An edge by value is a direct call's: only direct calls take "edge".
_HOW_AND_X = [
    (how, x)
    for how in (_direct, _submitted, _mapped)
    for x in (1, "value", "fail", "soft", "state", "list", "edge")
    if how is _direct or x != "edge"
]


@pytest.mark.parametrize(("how", "x"), _HOW_AND_X)
@pytest.mark.parametrize("general", sorted(GENERAL))
def test_a_plain_run_records_what_the_general_path_records(how, x, general, kf_logs):
    assert plans.plain_task(plain) and not plans.plain_task(GENERAL[general])
    run, thread = how(plain, x)
    plain_lines = [
        (r.levelname, r.getMessage()) for r in kf_logs if r.name.startswith("kernelflow.task")
    ]
    kf_logs.clear()
    general_run, general_thread = how(GENERAL[general], x)
    general_lines = [
        (r.levelname, r.getMessage())
        for r in kf_logs
        if r.name.startswith("kernelflow.task") and "hook" not in r.getMessage().lower()
    ]
    assert record(run, thread) == record(general_run, general_thread)
    assert plain_lines == general_lines
    assert len(run.history) == 3  # Pending, Running, final


def test_outside_a_flow_the_same_states_and_values():
    for x in (1, "fail", "soft", "state"):
        ours = plain(x, return_state=True)
        theirs = GENERAL["timeout"](x, return_state=True)
        assert (ours.type, ours.name, ours.message, _data(ours.data)) == (
            theirs.type,
            theirs.name,
            theirs.message,
            _data(theirs.data),
        )


def test_a_plain_direct_call_gives_values_states_and_errors_as_before():
    @flow
    def calls():
        assert plain(3) == 3
        assert plain("state").data == 7  # a State made by the body comes back whole
        with pytest.raises(ValueError, match="no good"):
            plain("fail")
        soft = plain("soft", return_state=True)
        assert (soft.name, soft.message) == ("Failed", "soft failure")
        return "done"

    assert calls() == "done"
    runs = kernelflow.last_run().task_runs
    assert [r.state.name for r in runs] == ["Completed", "Completed", "Failed", "Failed"]


# --- what takes the general path ------------------------------------------------------


def hook(*_):
    pass


@pytest.mark.parametrize(
    "options",
    [
        {"timeout_seconds": 5},
        {"retries": 1},
        {"cache_policy": INPUTS},
        {"persist_result": True},
        {"on_completion": [hook]},
        {"on_failure": [hook]},
        {"on_running": [hook]},
        {"on_commit": [hook]},
        {"on_rollback": [hook]},
    ],
    ids=lambda options: next(iter(options)),
)
def test_each_option_that_needs_a_step_makes_the_plan_general(options):
    assert not plans.plain_task(plain.with_options(**options))


def test_async_generator_and_asset_tasks_are_never_plain():
    async def later(x):
        return x

    def items(n):
        yield from range(n)

    assert not plans.plain_task(task(later))
    assert not plans.plain_task(task(items))
    assert not plans.plain_task(kernelflow.materialize("file://out.csv")(body))


def test_a_hook_added_by_decorator_makes_the_plan_general_and_is_called():
    t = task(body)
    assert plans.plain_task(t)
    called = []

    @t.on_completion
    def done(task_, run, state):
        called.append(state.name)

    assert not plans.plain_task(t)
    t(1)
    assert called == ["Completed"]


def _context(**changes) -> FlowRunContext:
    @flow
    def owner():
        pass

    ctx = FlowRunContext(flow=owner, flow_run=None, task_runner=None)  # type: ignore[arg-type]
    for name, value in changes.items():
        setattr(ctx, name, value)
    return ctx


def test_each_circumstance_of_a_call_that_needs_a_step_makes_it_general():
    closed = Gate()
    closed.clear()
    with_future = Upstream(futures=[object()], needs_resolving=True)  # type: ignore[list-item]
    assert plans.plain_call(plain, NOTHING_UPSTREAM, None, None)
    assert plans.plain_call(plain, NOTHING_UPSTREAM, None, _context())
    assert not plans.plain_call(plain, NOTHING_UPSTREAM, [object()], None)  # wait_for
    assert not plans.plain_call(plain, with_future, None, None)
    assert not plans.plain_call(plain, Upstream(needs_resolving=True), None, None)
    assert not plans.plain_call(plain, NOTHING_UPSTREAM, None, _context(gate=closed))
    assert not plans.plain_call(plain, NOTHING_UPSTREAM, None, _context(retry_plan=object()))
    assert not plans.plain_call(plain, NOTHING_UPSTREAM, None, _context(deadline=object()))
    persisting = _context()
    persisting.flow = flow(persist_result=True)(lambda: None)
    assert plain.caches_if_persisted
    assert not plans.plain_call(plain, NOTHING_UPSTREAM, None, persisting)
    assert plans.plain_call(
        plain.with_options(persist_result=False), NOTHING_UPSTREAM, None, persisting
    )


def test_a_paused_gate_reads_closed_and_open_again():
    gate = Gate()
    assert gate.open and gate.is_set()
    gate.clear()
    assert not gate.open and not gate.is_set()
    gate.set()
    assert gate.open and gate.is_set()


def test_observers_see_every_state_of_a_plain_run():
    seen = []

    def watch(run, old, new):
        if getattr(run, "task", None) is plain:
            seen.append((old.name, new.name))

    unsubscribe = kernelflow._events.subscribe(watch)
    try:

        @flow
        def one():
            return plain(1)

        one()
    finally:
        unsubscribe()
    assert seen == [("Pending", "Running"), ("Running", "Completed")]


def test_a_plain_direct_run_is_running_while_its_body_runs_seen_from_anywhere():
    seen = {}

    @task
    def look():
        run = kernelflow.context.get_run_context().task_run
        seen["inside"] = (run.state.name, run.start_time is not None)
        other = threading.Thread(target=lambda: seen.update(other=[s.name for s in run.history]))
        other.start()
        other.join()
        return run

    @flow
    def one():
        return look()

    run = one()
    assert seen == {"inside": ("Running", True), "other": ["Pending", "Running"]}
    assert [s.name for s in run.history] == ["Pending", "Running", "Completed"]
    assert run.created <= run.start_time <= run.end_time


BROKEN = {"item": 2}


@task
def work(item):
    if item == BROKEN["item"]:
        raise ValueError("broken")
    return item


@flow
def batch():
    return [work(i) for i in range(4)]


def test_a_retry_reuses_plain_runs():
    BROKEN["item"] = 2
    with pytest.raises(ValueError):
        batch()
    BROKEN["item"] = -1
    assert kernelflow.last_run().retry() == [0, 1, 2, 3]
    states = [r.state.name for r in kernelflow.last_run().task_runs]
    assert states == ["Cached", "Cached", "Completed", "Completed"]


def test_a_flow_timeout_still_stops_a_direct_call():
    slow = task(lambda: time.sleep(2))

    @flow(timeout_seconds=0.3)
    def late():
        slow()

    started = time.monotonic()
    state = late(return_state=True)
    assert state.name == "TimedOut"
    assert time.monotonic() - started < 1.5


def test_an_interrupt_in_a_plain_body_ends_the_run_cancelled_and_travels_on():
    def stop():
        raise KeyboardInterrupt

    t = task(stop)
    with pytest.raises(KeyboardInterrupt):
        t()
    with pytest.raises(KeyboardInterrupt):

        @flow
        def stopped():
            t()

        stopped()
    run = kernelflow.last_run().task_runs[0]
    assert run.state.name == "Cancelled"
    assert run.state.message == "Interrupted by the user."


def test_a_cancel_of_a_submitted_plain_run_stops_it():
    started = threading.Event()

    @task
    def spin():
        started.set()
        while True:
            time.sleep(0.01)

    @flow(task_runner=ThreadPoolTaskRunner(2))
    def cancels():
        future = spin.submit()
        started.wait(5)
        assert future.cancel()
        future.wait(5)
        return future.state.name, future.state.message

    name, message = cancels()
    assert name == "Cancelled"
    assert "Cancelled while running" in message

import asyncio
import dataclasses

import pytest

import kernelflow
from kernelflow._runs import TaskRun, set_state
from kernelflow.exceptions import CancelledRun, InvalidStateTransition
from kernelflow.states import (
    TRANSITIONS,
    Cached,
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Paused,
    Pending,
    Retrying,
    Running,
    State,
    StateType,
    TimedOut,
)
from kernelflow.tasks import task


def _run():
    @task
    def t():
        pass

    return TaskRun(t, "t-0", {}, None, frozenset(), {})


def test_states_are_immutable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Completed(1).data = 2


def test_the_quick_constructors_make_the_same_states_as_the_dataclass():
    # Pending(), Completed() and the rest fill a draft and give it State's class
    # (states._new_state); what they make must be a State like any other.
    error = ValueError("boom")
    for quick, full in [
        (Completed(5), State(StateType.COMPLETED, "Completed", None, 5)),
        (Pending("waits"), State(StateType.PENDING, "Pending", "waits")),
        (Cached(1), State(StateType.COMPLETED, "Cached", "cache hit", 1)),
        (Running(data=error), State(StateType.RUNNING, "Running", None, error)),
    ]:
        assert type(quick) is State
        for name in State.__slots__:
            if name != "timestamp":
                assert getattr(quick, name) == getattr(full, name), name
        assert quick == dataclasses.replace(full, timestamp=quick.timestamp)
        assert abs(quick.timestamp - full.timestamp) < 5
    assert Running(data=error).traceback is error.__traceback__
    with pytest.raises(dataclasses.FrozenInstanceError):
        Pending().name = "Other"


def test_names_and_types():
    assert (Cached(1).type, Cached(1).name) == (StateType.COMPLETED, "Cached")
    assert (Retrying().type, Retrying().name) == (StateType.RUNNING, "Retrying")
    assert (TimedOut(TimeoutError()).type, TimedOut(TimeoutError()).name) == (
        StateType.FAILED,
        "TimedOut",
    )
    assert Crashed(SystemExit(1)).is_crashed()
    assert Cancelled().is_cancelled() and Pending().is_pending() and Running().is_running()


def test_result_gives_value_or_raises_the_runs_own_exception():
    assert Completed(5).result() == 5
    error = ValueError("boom")
    with pytest.raises(ValueError, match="boom") as raised:
        Failed(error).result()
    assert raised.value is error
    assert Failed(error).result(raise_on_failure=False) is error
    with pytest.raises(CancelledRun):
        Cancelled("stopped").result()
    with pytest.raises(RuntimeError, match="no result yet"):
        Running().result()


def test_failed_message_describes_the_exception():
    assert Failed(KeyError("k")).message == "KeyError: 'k'"


def test_final_states_have_no_way_out():
    for final in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        assert TRANSITIONS[final] == frozenset()
    # set_state records a first start as a time without looking at the table: it allows it
    assert StateType.RUNNING in TRANSITIONS[StateType.PENDING]


def test_set_state_follows_the_table_and_records_history_and_times():
    run = _run()
    assert set_state(run, Running())
    assert run.start_time is not None and run.end_time is None
    assert set_state(run, Retrying("again"))
    assert set_state(run, Completed(3))
    assert [s.name for s in run.history] == ["Pending", "Running", "Retrying", "Completed"]
    assert run.end_time >= run.start_time
    # A final run ignores late changes (an abandoned thread finishing after a cancel).
    assert set_state(run, Failed(ValueError())) is False
    assert run.state.name == "Completed"


def test_set_state_rejects_forbidden_transitions():
    run = _run()
    set_state(run, Running())
    set_state(run, Paused())
    with pytest.raises(InvalidStateTransition, match="from Paused to Completed"):
        set_state(run, Completed())


def test_observers_see_every_change_and_cannot_break_a_run(kf_logs):
    from kernelflow._events import subscribe

    seen = []

    def observer(run, old, new):
        seen.append((old.name, new.name))

    def broken(run, old, new):
        raise RuntimeError("observer bug")

    unsubscribe_1, unsubscribe_2 = subscribe(observer), subscribe(broken)
    try:
        run = _run()
        set_state(run, Running())
        set_state(run, Completed())
    finally:
        unsubscribe_1()
        unsubscribe_2()
    assert seen == [("Pending", "Running"), ("Running", "Completed")]
    assert run.state.is_completed()
    assert any("observer" in r.getMessage() for r in kf_logs)


def test_a_run_started_by_type_alone_shows_the_same_history_once_read():
    run = _run()
    assert run.state.is_pending()
    assert set_state(run, StateType.RUNNING)  # recorded as a time: nobody watches
    assert run.start_time >= run.created
    assert set_state(run, Completed(3))
    rows = run.history_rows()  # what the run history writes: no States made for it
    history = run.history
    assert [(s.type, s.name, s.message, s.timestamp) for s in history] == rows
    assert [s.name for s in history] == ["Pending", "Running", "Completed"]
    assert [s.timestamp for s in history[:2]] == [run.created, run.start_time]
    assert all(type(s) is State for s in history)  # made as any other (frozen, compared)
    assert history[0] == State(StateType.PENDING, "Pending", None, None, run.created)
    assert run.history is history  # made once
    assert run.holds(history[0]) and run.state is history[-1] is not None


def test_the_state_type_of_a_state_still_a_time_is_read_without_making_it():
    run = _run()
    assert run.state_type is StateType.PENDING
    set_state(run, StateType.RUNNING)
    assert run.state_type is StateType.RUNNING
    assert run._prefix == 2  # still two times: a display's count made no States
    set_state(run, Completed())
    assert run.state_type is StateType.COMPLETED
    assert [s.type for s in run.history] == [StateType.PENDING, StateType.RUNNING, "COMPLETED"]


def test_history_rows_count_each_state_once_while_another_thread_makes_them(monkeypatch):
    import threading

    from kernelflow._runs import _Run

    run = _run()
    set_state(run, StateType.RUNNING)
    set_state(run, Completed())
    unmade, first = _Run._unmade, []

    def then_a_reader_makes_them(self):
        rows = unmade(self)
        if not first:  # between reading the times and the made States, a reader comes
            first.append(threading.Thread(target=lambda: self.history))
            first[0].start()
            first[0].join(0.2)
        return rows

    monkeypatch.setattr(_Run, "_unmade", then_a_reader_makes_them)
    assert [row[1] for row in run.history_rows()] == ["Pending", "Running", "Completed"]
    first[0].join()
    assert [s.name for s in run.history] == ["Pending", "Running", "Completed"]


def test_a_state_read_while_still_a_time_is_the_one_the_history_keeps():
    run = _run()
    pending = run.state  # made now, then kept: it is the run's Pending from here on
    set_state(run, StateType.RUNNING)
    running = run.state
    assert running.is_running() and running.timestamp == run.start_time
    set_state(run, Completed())
    assert run.history[:2] == [pending, running]
    assert run.history[0] is pending and run.history[1] is running


def test_a_watched_run_started_by_type_tells_its_observers_of_states():
    from kernelflow._events import subscribe

    seen = []
    unsubscribe = subscribe(lambda run, old, new: seen.append((old, new)))
    try:
        run = _run()
        set_state(run, StateType.RUNNING)
        set_state(run, Completed())
    finally:
        unsubscribe()
    history = run.history
    assert [(old.name, new.name) for old, new in seen] == [
        ("Pending", "Running"),
        ("Running", "Completed"),
    ]
    assert seen[0][0] is history[0] and seen[0][1] is history[1] and seen[1][1] is history[2]


def test_a_run_started_by_type_after_a_first_start_gets_a_made_state():
    run = _run()
    set_state(run, StateType.RUNNING)
    set_state(run, Paused())
    set_state(run, StateType.RUNNING)  # not its first Running: made now
    set_state(run, Completed())
    assert [s.name for s in run.history] == ["Pending", "Running", "Paused", "Running", "Completed"]
    times = [s.timestamp for s in run.history]
    assert times == sorted(times) and run.start_time == times[1]


def test_a_forbidden_move_from_a_state_still_a_time_names_it():
    run = _run()
    set_state(run, StateType.RUNNING)
    with pytest.raises(InvalidStateTransition, match="from Running to Pending"):
        set_state(run, Pending())
    assert [s.name for s in run.history] == ["Pending", "Running"]


def test_a_state_held_of_a_plain_run_finds_its_run():
    from kernelflow import flow

    @task
    def one() -> int:
        return 1

    @flow
    def outer():
        return one(return_state=True)

    state = outer()
    run = kernelflow.last_run().task_runs[0]
    assert state.state_details.task_run_id == run.id
    assert run.history[-1] is state and run.history[1].state_details.task_run_id == run.id


# --- Prefect's constructors and helpers ----------------------------------------------------


def test_constructors_take_prefects_keywords():
    from kernelflow.states import State

    assert Completed(message="all good", data=123).result() == 123
    soft = Failed(message="soft fail")
    assert soft.is_failed() and soft.message == "soft fail" and soft.data is None
    error = ValueError("boom")
    assert Failed(data=error).result(raise_on_failure=False) is error
    assert Failed(data=error).message == "ValueError: boom"
    assert Crashed(data=error).is_crashed()
    assert State(type=StateType.CRASHED).name == "Crashed"
    assert State(type="COMPLETED", data=1).is_completed()
    assert State[int] is not None  # usable in annotations


@pytest.mark.parametrize("make", ["Failed", "Crashed", "Cancelled"])
def test_result_of_a_state_without_an_exception_raises_prefects_wrapper(make):
    from kernelflow import states
    from kernelflow.exceptions import CrashedRun, FailedRun

    wrapper = {"Failed": FailedRun, "Crashed": CrashedRun, "Cancelled": CancelledRun}[make]
    state = getattr(states, make)(data=None, message="gone")
    with pytest.raises(wrapper, match="gone"):
        state.result()
    with pytest.raises(wrapper, match="plain text"):
        getattr(states, make)(data="plain text").result()
    with pytest.raises(TypeError, match="int cannot be resolved into an exception"):
        states.raise_state_exception(getattr(states, make)(data=2))


def test_unfinished_and_paused_states_have_no_result_yet():
    from kernelflow.exceptions import PausedRun, UnfinishedRun

    with pytest.raises(UnfinishedRun, match="no result yet"):
        Running().result()
    with pytest.raises(PausedRun):
        Paused().result()
    with pytest.raises(RuntimeError):  # both are RuntimeErrors, as before
        Pending().result()


def test_state_exception_helpers_follow_nested_states():
    from kernelflow.states import (
        araise_state_exception,
        get_state_exception,
        is_state,
        is_state_iterable,
        raise_state_exception,
    )

    inner = ValueError("inner")
    assert get_state_exception(Failed(data=Failed(data=inner))) is inner
    assert get_state_exception(Failed(data=[Completed(), Failed(data=inner)])) is inner
    with pytest.raises(ValueError, match="Expected failed or crashed state got Completed"):
        raise_state_exception(Failed(data=Completed(data="x")))
    with pytest.raises(ValueError, match="none were failed"):
        raise_state_exception(Failed(data=[Completed(), Completed()]))
    assert raise_state_exception(Completed()) is None
    with pytest.raises(ValueError, match="inner"):
        asyncio.run(araise_state_exception(Failed(data=inner)))
    assert is_state(Completed()) and not is_state(1)
    assert is_state_iterable([Completed()]) and is_state_iterable({Completed()})
    assert not is_state_iterable([]) and not is_state_iterable({Completed(): 1})


def test_state_group_counts():
    from kernelflow.states import StateGroup

    group = StateGroup([Failed(data=ValueError()), Crashed(), Completed(), Running()])
    assert group.fail_count == 2 and group.any_failed() and not group.all_final()
    assert not group.all_completed() and not group.any_cancelled() and not group.any_paused()
    message = group.counts_message()
    assert "total=4" in message and "not_final=1" in message and "'FAILED'=1" in message
    assert StateGroup([Cancelled(), Paused()]).any_cancelled()
    assert StateGroup([Completed(), Completed()]).all_completed()


def test_await_state_result_gives_the_value_where_a_plain_call_gives_it_too():
    # Ported Prefect code writes `await state.result()` in async code; the call site
    # decides, never "is a loop running".
    completed, failed = Completed(data=42), Failed(data=ValueError("bad"))

    async def ported():
        plain = completed.result()  # no await: the value, even with a loop running
        awaited = await completed.result()
        in_expression = (await completed.result()) + 1
        with pytest.raises(ValueError, match="bad"):
            await failed.result()
        held = await failed.result(raise_on_failure=False)
        return plain, awaited, in_expression, held

    plain, awaited, in_expression, held = asyncio.run(ported())
    assert (plain, awaited, in_expression) == (42, 42, 43)
    assert isinstance(held, ValueError)


def test_a_cell_with_top_level_await_reads_each_call_as_written():
    import ast

    cell = compile(
        "awaited = await state.result()\nplain = state.result()",
        "<cell>",
        "exec",
        flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
    )
    namespace = {"state": Completed(data="v")}

    async def run_cell():
        await eval(cell, namespace)

    asyncio.run(run_cell())
    assert (namespace["awaited"], namespace["plain"]) == ("v", "v")


def test_await_raise_state_exception_works_as_in_prefect():
    from kernelflow.states import raise_state_exception

    async def ported():
        assert await raise_state_exception(Completed()) is None
        with pytest.raises(ValueError, match="bad"):
            await raise_state_exception(Failed(data=ValueError("bad")))
        return raise_state_exception(Completed())  # not awaited: a plain call

    assert asyncio.run(ported()) is None


def test_state_details_name_the_task_run_and_flow_run():
    from kernelflow import flow, task

    @task
    def one() -> int:
        return 1

    seen = {}

    @flow
    def outer():
        state = one(return_state=True)
        seen["inside"] = state.state_details
        seen["task_run_id"] = kernelflow.last_run().task_runs[0].id
        return state

    flow_state = outer(return_state=True)
    run = kernelflow.last_run()
    assert flow_state.state_details.flow_run_id == run.id
    assert flow_state.state_details.task_run_id is None
    task_state = flow_state.result()
    assert task_state.state_details.task_run_id == run.task_runs[0].id == seen["task_run_id"]
    assert task_state.state_details.flow_run_id == run.id
    assert seen["inside"] == task_state.state_details  # found from inside the run too


def test_state_details_of_a_state_no_run_holds_are_empty():
    details = Failed(data=ValueError("x")).state_details
    assert (details.flow_run_id, details.task_run_id, details.child_flow_run_id) == (None,) * 3


def test_prefect_pending_and_paused_variants():
    from kernelflow.states import InfrastructurePending, Submitting, Suspended

    assert Submitting().is_pending() and Submitting().name == "Submitting"
    assert InfrastructurePending("starting").message == "starting"
    assert InfrastructurePending().type is StateType.PENDING
    assert Suspended().is_paused() and Suspended().name == "Suspended"


def test_result_of_an_unfinished_state_says_so_in_prefects_words():
    from kernelflow.exceptions import PausedRun, UnfinishedRun

    with pytest.raises(PausedRun, match="Run is in PAUSED state, its result is not available"):
        Paused().result()
    with pytest.raises(UnfinishedRun, match="Run is in PENDING state, its result is not available"):
        Pending().result()

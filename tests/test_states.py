import dataclasses

import pytest

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

"""What a run's return value makes of its final state, as Prefect 3 decides it.

    returned futures       a flow waits for them; each becomes its run's final State
                           (a single future too: the flow's value is that State)
    a State made by hand   it is the run's final state (``return Failed(message=...)``);
                           a task called directly gives that State back, whatever its
                           type, as Prefect 3.8 does (a future's ``.result()`` gives
                           its data: ``return Completed(data=123)`` gives 123 there)
    a run's own State, or  the final state sums them up: Completed only if all completed,
    a list/tuple/set of    else Cancelled, Paused or Failed ("2/3 states failed."); the
    States                 value is what was returned, so the States are the result
    anything else          Completed with it

A "run's own" State is the state some task or flow run of this flow ended in (from a
future or ``return_state=True``); any other State object was made by the user's code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from kernelflow.futures import TaskFuture
from kernelflow.states import (
    Cancelled,
    Completed,
    Failed,
    State,
    StateGroup,
    StateType,
    is_state_iterable,
)

# The containers Prefect looks into for futures, and (but dicts) for States.
_CONTAINERS = (list, tuple, set, frozenset, dict)
# A return value of these types may hold futures or States; any other is Completed as
# it is (a TaskFutureList is a list).
LOOK_AT = (State, TaskFuture, *_CONTAINERS)
# Values of these types are never looked at: the test on every run's value, kept short.
PLAIN_VALUES = frozenset({int, float, complex, str, bytes, bool, type(None)})
# Whether values of a type need looking at, per type: TaskFuture is an abc.ABC, and an
# isinstance test against one calls Python code (ABCMeta.__instancecheck__) every time.
_looked_at: dict[type, bool] = {}
_TYPES_KEPT = 1000  # past that many result types (classes made on the fly), not kept


def needs_looking_at(value: Any) -> bool:
    """Whether ``returned_state`` has anything to do."""
    kind = type(value)
    if kind in PLAIN_VALUES:
        return False
    look = _looked_at.get(kind)
    if look is None:
        look = isinstance(value, LOOK_AT)
        if len(_looked_at) < _TYPES_KEPT:
            _looked_at[kind] = look
    return look


def futures_to_states(value: Any) -> Any:
    """``value`` with every future in it (also inside containers) replaced by its run's
    final State; the flow has already waited for them."""
    if isinstance(value, TaskFuture):
        value.wait()
        return value.state  # reading it marks it observed: its failure is not "unnoticed"
    kind = type(value)
    if kind is dict:
        return {k: futures_to_states(v) for k, v in value.items()}
    if kind in (list, tuple, set, frozenset) or isinstance(value, list):  # a TaskFutureList
        items = [futures_to_states(v) for v in value]
        return items if isinstance(value, list) else kind(items)
    return value


def returned_state(value: Any, runs: Iterable[Any]) -> State:
    """The final state a run that returned ``value`` ends in; ``runs`` are the runs whose
    States count as "a run's own" (the flow's task runs and subflow runs)."""
    if isinstance(value, State):
        if not any(value is run.state for run in runs):
            return _made_by_hand(value)
        return _sum_up([value], value)
    if is_state_iterable(value):
        return _sum_up(value, value)
    return Completed(value)


def _made_by_hand(state: State) -> State:
    if state.is_final() or state.type is StateType.PAUSED:
        object.__setattr__(state, "_returned", True)  # for the direct call (direct_calls.py)
        return state
    if state.type is StateType.CANCELLING:  # kernelflow keeps no run half-cancelled
        return Cancelled(state.message, data=state.data, name="Cancelled")
    return Failed(
        message=f"The run returned a {state.name} state, which is not final; return a "
        "final one (Completed, Failed, Cancelled) or a value.",
    )


def _sum_up(states: Iterable[State], value: Any) -> State:
    group = StateGroup(states)
    total = len(group.states)
    if group.all_completed():
        return Completed(value, "All states completed.")
    if group.any_cancelled():
        count = group.type_counts[StateType.CANCELLED]
        return Cancelled(f"{count}/{total} states cancelled.", data=value)
    if group.any_paused():
        paused = group.type_counts[StateType.PAUSED]
        return State(StateType.PAUSED, message=f"{paused}/{total} states paused.", data=value)
    if group.any_failed():
        return Failed(value, f"{group.fail_count}/{total} states failed.")
    if not group.all_final():
        not_final = sum(not state.is_final() for state in group.states)
        return Failed(value, f"{not_final}/{total} states are not final.")
    return Failed(value, "Given states: " + group.counts_message())

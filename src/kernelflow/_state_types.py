"""The kinds of run state (``StateType``) and the table of transitions allowed between them.

``kernelflow.states`` re-exports them; ``_runs.set_state`` is the one place that checks
``TRANSITIONS``.
"""

from __future__ import annotations

import enum


class StateType(str, enum.Enum):
    """The kind of a state; the transitions table is written in these terms."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"
    CANCELLING = "CANCELLING"  # asked to cancel, not yet ended (Prefect's; see Cancelling)


FINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)

# Which state types a run may move to from each type. RUNNING -> RUNNING is a retry
# ("Retrying"); PENDING -> COMPLETED is a cache hit; PENDING -> FAILED is an upstream
# failure; PENDING -> PENDING says what it still waits for (a cluster starting); final
# states go nowhere.
_FROM_RUNNING = frozenset(
    {
        StateType.RUNNING,
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.CRASHED,
        StateType.CANCELLED,
        StateType.CANCELLING,
        StateType.PAUSED,
    }
)
TRANSITIONS: dict[StateType, frozenset[StateType]] = {
    StateType.PENDING: _FROM_RUNNING | {StateType.PENDING},
    StateType.RUNNING: _FROM_RUNNING,
    StateType.CANCELLING: frozenset(
        {StateType.CANCELLED, StateType.COMPLETED, StateType.FAILED, StateType.CRASHED}
    ),
    StateType.PAUSED: frozenset({StateType.RUNNING, StateType.FAILED, StateType.CANCELLED}),
    **{final: frozenset() for final in FINAL_TYPES},
}

"""Immutable run states and the table of the transitions allowed between them.

A state never changes once made: the engine moves a run along by replacing its state
through ``kernelflow._runs.set_state``, the one place that checks ``TRANSITIONS``.
A state's ``type`` drives behaviour; its ``name`` tells people more ("Cached" is a
COMPLETED state, "Retrying" a RUNNING one, "TimedOut" a FAILED one).
"""

from __future__ import annotations

import dataclasses
import enum
import time
from dataclasses import dataclass, field
from typing import Any

from kernelflow.exceptions import CancelledRun, CrashedRun, RunValuesReleased


class StateType(str, enum.Enum):
    """The kind of a state; the transitions table is written in these terms."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"


FINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)

# Which state types a run may move to from each type. RUNNING -> RUNNING is a retry
# ("Retrying"); PENDING -> COMPLETED is a cache hit; PENDING -> FAILED is an upstream
# failure; final states go nowhere.
TRANSITIONS: dict[StateType, frozenset[StateType]] = {
    StateType.PENDING: frozenset(
        {
            StateType.RUNNING,
            StateType.COMPLETED,
            StateType.FAILED,
            StateType.CRASHED,
            StateType.CANCELLED,
            StateType.PAUSED,
        }
    ),
    StateType.RUNNING: frozenset(
        {
            StateType.RUNNING,
            StateType.COMPLETED,
            StateType.FAILED,
            StateType.CRASHED,
            StateType.CANCELLED,
            StateType.PAUSED,
        }
    ),
    StateType.PAUSED: frozenset({StateType.RUNNING, StateType.FAILED, StateType.CANCELLED}),
    **{final: frozenset() for final in FINAL_TYPES},
}


class _Released:
    """Stands in for a value dropped from an old run record (see ``_runs.RUN_VALUES_KEPT``)."""

    def __repr__(self) -> str:
        return "<released>"


RELEASED = _Released()


@dataclass(frozen=True, slots=True, repr=False)
class State:
    """The state of a task or flow run at one moment.

    Attributes:
        type: The kind of state.
        name: What people read ("Completed", "Cached", "Retrying", ...).
        message: Why the run is in this state, when there is something to say.
        data: The return value of a completed run, or the exception of a failed,
            crashed or cancelled one.
        timestamp: When the state was created (``time.time()``).
    """

    type: StateType
    name: str
    message: str | None = None
    data: Any = None
    timestamp: float = field(default_factory=time.time)

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value, or its exception.

        Args:
            raise_on_failure: When the run did not complete, raise its exception
                (True, the default) or return it (False).

        Raises:
            The run's own exception for a failed or crashed run; ``CancelledRun`` for a
            cancelled one; ``RuntimeError`` for a run that has not finished.
        """
        if self.data is RELEASED:
            raise RunValuesReleased(
                f"This {self.name} state's value was released with its old run record "
                "(kernelflow keeps the values of the latest few flow runs). Re-run the flow."
            )
        if self.type is StateType.COMPLETED:
            return self.data
        if not self.is_final():
            raise RuntimeError(
                f"State {self.name!r} has no result yet: wait for the run to finish first."
            )
        error = self.data if isinstance(self.data, BaseException) else self._missing_error()
        if raise_on_failure:
            raise error
        return error

    def without_data(self) -> State:
        """This state with its value (result or exception) released; the rest kept."""
        if self.data is None:
            return self
        return dataclasses.replace(self, data=RELEASED)

    def _missing_error(self) -> BaseException:
        if self.type is StateType.CANCELLED:
            return CancelledRun(self.message or "The run was cancelled.")
        return CrashedRun(self.message or f"The run ended {self.name} without an exception.")

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"


def Pending(message: str | None = None) -> State:
    return State(StateType.PENDING, "Pending", message)


def Running(message: str | None = None) -> State:
    return State(StateType.RUNNING, "Running", message)


def Retrying(message: str | None = None) -> State:
    return State(StateType.RUNNING, "Retrying", message)


def Paused(message: str | None = None) -> State:
    return State(StateType.PAUSED, "Paused", message)


def Completed(data: Any = None, message: str | None = None) -> State:
    return State(StateType.COMPLETED, "Completed", message, data)


def Cached(data: Any = None, message: str | None = "cache hit") -> State:
    return State(StateType.COMPLETED, "Cached", message, data)


def Failed(error: BaseException, message: str | None = None, name: str = "Failed") -> State:
    return State(StateType.FAILED, name, message or _describe(error), error)


def TimedOut(error: TimeoutError) -> State:
    return Failed(error, name="TimedOut")


def Crashed(error: BaseException, message: str | None = None) -> State:
    return State(StateType.CRASHED, "Crashed", message or _describe(error), error)


def Cancelled(message: str | None = None, error: BaseException | None = None) -> State:
    message = message or "The run was cancelled."
    return State(StateType.CANCELLED, "Cancelled", message, error or CancelledRun(message))


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__

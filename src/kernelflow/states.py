"""Immutable run states and the table of the transitions allowed between them.

A state never changes once made: the engine moves a run along by replacing its state
through ``kernelflow._runs.set_state``, the one place that checks ``TRANSITIONS``.
A state's ``type`` drives behaviour; its ``name`` tells people more ("Cached" is a
COMPLETED state, "Retrying" a RUNNING one, "TimedOut" a FAILED one).

The constructors take Prefect's keywords (``Failed(data=..., message=...)``,
``Completed(data=..., message=...)``), and the helpers of ``prefect.states`` are here
under their names: ``is_state``, ``is_state_iterable``, ``get_state_exception``,
``raise_state_exception`` (and their ``a``-prefixed async twins), ``StateGroup``.
"""

from __future__ import annotations

import dataclasses
import time
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kernelflow import _layer_hooks
from kernelflow._call_site import awaitable_where_awaited
from kernelflow._state_types import FINAL_TYPES, TRANSITIONS, StateType  # noqa: F401  (re-exported)
from kernelflow._stored import StoredResult
from kernelflow.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    PausedRun,
    RunValuesReleased,
    UnfinishedRun,
)

if TYPE_CHECKING:
    from kernelflow._state_details import StateDetails


class _Released:
    """Stands in for a value dropped from an old run record (see ``_runs.RUN_VALUES_KEPT``)."""

    def __repr__(self) -> str:
        return "<released>"


RELEASED = _Released()


def _type_is(kind: StateType) -> Callable[[State], bool]:
    def is_kind(self: State) -> bool:
        return self.type is kind

    is_kind.__name__ = f"is_{kind.value.lower()}"
    is_kind.__doc__ = f"True for a state of type {kind.value}, whatever its name."
    return is_kind


@dataclass(frozen=True, slots=True, repr=False)
class State:
    """The state of a task or flow run at one moment.

    Attributes:
        type: The kind of state.
        name: What people read ("Completed", "Cached", "Retrying", ...); by default the
            type's name ("Failed" for FAILED).
        message: Why the run is in this state, when there is something to say.
        data: The return value of a completed run, or the exception of a failed,
            crashed or cancelled one.
        timestamp: When the state was created (``time.time()``).
    """

    type: StateType
    name: str | None = None
    message: str | None = None
    data: Any = None
    timestamp: float = field(default_factory=time.time)
    # The exception's traceback as the run left it: ``result()`` raises with it, so code
    # that looked at the state on the way (a retry_condition_fn calling ``result()``)
    # does not stay in the traceback the user finally sees.
    traceback: Any = field(default=None, repr=False, compare=False)
    # The runs it belongs to, once ``state_details`` found them (see _state_details).
    _details: Any = field(default=None, repr=False, compare=False)
    # Made by a task's own code and returned from its body: a direct call gives the
    # State itself back, as Prefect's does (``_engine/returns.py``).
    _returned: bool = field(default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.type, StateType):
            object.__setattr__(self, "type", StateType(self.type))
        if self.name is None:
            object.__setattr__(self, "name", self.type.value.capitalize())
        if self.traceback is None and isinstance(self.data, BaseException):
            object.__setattr__(self, "traceback", self.data.__traceback__)

    # ``State[int]`` in annotations, as with Prefect's generic State.
    __class_getitem__ = classmethod(types.GenericAlias)

    @property
    def state_details(self) -> StateDetails:
        """The ids of the task run and flow run this state belongs to (``task_run_id``,
        ``flow_run_id``); None for a state no run holds."""
        details = self._details
        if details is None:
            details = _layer_hooks.state_details(self)
            if details.flow_run_id is not None or details.task_run_id is not None:
                object.__setattr__(self, "_details", details)  # found: it never changes
        return details

    # One predicate per kind of state, true whatever the state's name ("Cached" is
    # completed): Prefect's ``state.is_completed()`` and the rest.
    is_pending = _type_is(StateType.PENDING)
    is_running = _type_is(StateType.RUNNING)
    is_paused = _type_is(StateType.PAUSED)
    is_completed = _type_is(StateType.COMPLETED)
    is_failed = _type_is(StateType.FAILED)
    is_crashed = _type_is(StateType.CRASHED)
    is_cancelled = _type_is(StateType.CANCELLED)
    is_cancelling = _type_is(StateType.CANCELLING)

    def is_final(self) -> bool:
        return self.type in FINAL_TYPES

    @awaitable_where_awaited
    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value, or its exception.

        Written as ``await state.result()`` (as ported Prefect code does in async
        code), it gives an awaitable of the same: kernelflow reads the call site, never
        whether a loop is running (``kernelflow._call_site``).

        Args:
            raise_on_failure: When the run did not complete, raise its exception
                (True, the default) or return what the state holds (False): its
                exception, or the data it was given (``Failed(data=...)``).

        Raises:
            The run's own exception for a failed or crashed run (``FailedRun`` /
            ``CrashedRun`` when it holds none); ``CancelledRun`` for a cancelled one;
            ``PausedRun`` / ``UnfinishedRun`` (both ``RuntimeError``) for a run that
            has not finished.
        """
        __tracebackhide__ = True
        if self.data is RELEASED:
            raise RunValuesReleased(
                f"This {self.name} state's value was released with its old run record "
                "(kernelflow keeps the values of the latest few flow runs). Re-run the flow."
            )
        if self.type is StateType.COMPLETED:
            data = self.data
            return data.load() if type(data) is StoredResult else data
        if not self.is_final():
            kind = PausedRun if self.type is StateType.PAUSED else UnfinishedRun
            raise kind(  # Prefect's wording first, for code that matches on it
                f"Run is in {self.type.value} state, its result is not available: "
                f"the {self.name} run has no result yet; wait for it to finish first."
            )
        if raise_on_failure:
            error = get_state_exception(self)
            if error is self.data and self.traceback is not None:
                raise error.with_traceback(self.traceback)
            raise error
        # As Prefect: what the state holds (an exception, the States a flow returned, a
        # value given to Failed(data=...)); the exception it stands for if it holds none.
        return get_state_exception(self) if self.data is None else self.data

    def without_data(self) -> State:
        """This state with its value (result or exception) released; the rest kept."""
        if self.data is None:
            return self
        return dataclasses.replace(self, data=RELEASED, traceback=None)

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"


class _Draft:
    """A State's slots without its frozen ``__setattr__``: a state is filled in here and
    then given its class (same slots, same layout, so Python allows it). Setting a
    frozen dataclass's eight fields through ``object.__setattr__`` or the slot
    descriptors costs four times as much, and every run makes three states."""

    __slots__ = State.__slots__


def _new_state(
    type: StateType, name: str, message: str | None, data: Any, timestamp: float
) -> State:
    """A state as the dataclass makes it, quicker (``_Draft``); ``timestamp``: mostly
    ``time.time()``, or the time a run record kept for a state it makes later."""
    state = _Draft()
    state.type = type
    state.name = name
    state.message = message
    state.data = data
    state.timestamp = timestamp
    state.traceback = data.__traceback__ if isinstance(data, BaseException) else None
    state._details = None
    state._returned = False
    state.__class__ = State  # type: ignore[assignment]
    return state  # type: ignore[return-value]


def _message_first(kind: StateType, name: str, doc: str | None = None) -> Callable[..., State]:
    """A constructor of ``kind`` states named ``name`` that take Prefect's
    ``(message=None, *, data=None, name=...)``."""

    def make(message: str | None = None, *, data: Any = None, name: str = name) -> State:
        return _new_state(kind, name, message, data, time.time())

    make.__name__ = make.__qualname__ = name
    make.__doc__ = doc or f"A {kind.value} state named {name!r}."
    return make


Pending = _message_first(StateType.PENDING, "Pending")
Running = _message_first(StateType.RUNNING, "Running")
Retrying = _message_first(StateType.RUNNING, "Retrying")
Paused = _message_first(StateType.PAUSED, "Paused")
# Prefect's, for a run paused off its process.
Suspended = _message_first(StateType.PAUSED, "Suspended")
# Prefect's, for a run being handed to a runner.
Submitting = _message_first(StateType.PENDING, "Submitting")
# Prefect's, while a worker starts.
InfrastructurePending = _message_first(StateType.PENDING, "InfrastructurePending")
Cancelling = _message_first(
    StateType.CANCELLING,
    "Cancelling",
    "Asked to cancel, not yet ended. A run that returns it ends Cancelled in kernelflow "
    "(it keeps no run half-cancelled; Prefect leaves it Cancelling).",
)


def Completed(data: Any = None, message: str | None = None, *, name: str = "Completed") -> State:
    return _new_state(StateType.COMPLETED, name, message, data, time.time())


def Cached(data: Any = None, message: str | None = "cache hit", *, name: str = "Cached") -> State:
    return _new_state(StateType.COMPLETED, name, message, data, time.time())


def Failed(data: Any = None, message: str | None = None, name: str = "Failed") -> State:
    """A FAILED state; ``data`` is the exception (``Failed(error)``), or anything else a
    user's code puts there (``Failed(message="soft fail")`` holds none)."""
    return State(StateType.FAILED, name, message or _describe(data), data)


def TimedOut(error: TimeoutError) -> State:
    return Failed(error, name="TimedOut")


def Crashed(data: Any = None, message: str | None = None, *, name: str = "Crashed") -> State:
    return State(StateType.CRASHED, name, message or _describe(data), data)


def Cancelled(
    message: str | None = None,
    error: BaseException | None = None,
    *,
    data: Any = None,
    name: str = "Cancelled",
) -> State:
    message = message or "The run was cancelled."
    if data is None:
        data = error or CancelledRun(message)
    return State(StateType.CANCELLED, name, message, data)


def _describe(error: Any) -> str | None:
    if not isinstance(error, BaseException):
        return None
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


# --- Prefect's helpers (prefect.states) ------------------------------------------------

_WRAPPERS = {
    StateType.FAILED: FailedRun,
    StateType.CRASHED: CrashedRun,
    StateType.CANCELLED: CancelledRun,
}


def is_state(obj: Any) -> bool:
    """Whether ``obj`` is a State."""
    return isinstance(obj, State)


def is_state_iterable(obj: Any) -> bool:
    """Whether ``obj`` is a non-empty list, tuple or set of States only."""
    if not isinstance(obj, (list, tuple, set, frozenset)) or not obj:
        return False
    return all(isinstance(item, State) for item in obj)


def get_state_exception(state: State) -> BaseException:
    """The exception a failed, crashed or cancelled state stands for.

    Its ``data`` when that is an exception; a ``FailedRun`` / ``CrashedRun`` /
    ``CancelledRun`` carrying its message when it holds none (or a string); for a state
    holding other states, the exception of the first failed one.

    Raises:
        ValueError: the state holds states none of which failed.
        TypeError: the state holds something that is not an exception.
    """
    data = state.data
    if isinstance(data, BaseException):
        return data
    from kernelflow.results import ResultRecordMetadata

    if isinstance(data, ResultRecordMetadata):  # a stored record: the exception it holds
        return get_state_exception(dataclasses.replace(state, data=data.load()))
    wrapper = _WRAPPERS.get(state.type, FailedRun)
    if data is None:
        return wrapper(state.message or f"The run ended {state.name} without an exception.")
    if isinstance(data, str):
        return wrapper(data)
    if isinstance(data, State):
        if not (data.is_failed() or data.is_crashed() or data.is_cancelled()):
            raise ValueError(f"Expected failed or crashed state got {data!r}.")
        return get_state_exception(data)
    if is_state_iterable(data):
        for inner in data:
            if inner.is_failed() or inner.is_crashed() or inner.is_cancelled():
                return get_state_exception(inner)
        raise ValueError("Failed state result was an iterable of states but none were failed.")
    raise TypeError(
        f"Unexpected result for a {state.name} state: {data!r}: "
        f"{type(data).__name__} cannot be resolved into an exception."
    )


@awaitable_where_awaited
def raise_state_exception(state: State) -> None:
    """Raise the exception of a failed, crashed or cancelled state; return None for any
    other state. ``await raise_state_exception(state)`` works too, as in Prefect (see
    ``State.result``); ``araise_state_exception`` is the async twin."""
    __tracebackhide__ = True
    if state.is_failed() or state.is_crashed() or state.is_cancelled():
        raise get_state_exception(state)


async def aget_state_exception(state: State) -> BaseException:
    """``get_state_exception`` for async code."""
    return get_state_exception(state)


async def araise_state_exception(state: State) -> None:
    """``raise_state_exception`` for async code."""
    raise_state_exception(state)


from kernelflow._state_group import StateGroup  # noqa: E402, F401  (public here; it counts States)

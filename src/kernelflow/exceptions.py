"""Every exception kernelflow raises on purpose, in one place.

The tree::

    KernelflowError
    ├── InvalidOptionError (also ValueError)    a bad @task/@flow option, at decoration time
    ├── ParameterTypeError (also TypeError)     flow parameters that fail validation
    ├── MappingError (also ValueError)
    │   ├── MappingMissingIterable              .map() got nothing to iterate over
    │   └── MappingLengthMismatch               .map() got iterables of different lengths
    ├── UpstreamTaskError                       an upstream run did not complete
    ├── FlowPauseTimeout (also TimeoutError)    a paused flow run was not resumed in time
    ├── CancelledRun                            the result of a cancelled run was asked for
    ├── CrashedRun                              the result of a crashed run was asked for
    ├── UnsafeCacheDirectory (also PermissionError)  the result store is not private
    ├── PlaceholderValueError                   visualize: flow code needed a task's value
    ├── SerializationError (also TypeError)     an argument or result cannot cross processes
    ├── RunValuesReleased (also LookupError)    an old run's values were released
    └── InvalidStateTransition (also RuntimeError)  an engine bug: a forbidden state change

Timeouts raise the built-in ``TimeoutError`` so that ``except TimeoutError`` works as
people expect; a task's own exception is always re-raised as itself, never wrapped.
"""

from __future__ import annotations


class KernelflowError(Exception):
    """Base class of every exception kernelflow defines."""


class InvalidOptionError(KernelflowError, ValueError):
    """Raised when ``@task``/``@flow`` (or ``with_options``) gets a bad option value.

    Raised at decoration time, before anything runs; the message names the option and
    says what would be accepted.
    """


class ParameterTypeError(KernelflowError, TypeError):
    """Raised when a flow is called with parameters that fail validation.

    Raised by the flow call before the flow body starts, listing every field that failed.
    Pass ``validate_parameters=False`` to ``@flow`` to turn validation off.
    """


class MappingError(KernelflowError, ValueError):
    """Base class of the errors raised by ``Task.map`` before it submits anything."""


class MappingMissingIterable(MappingError):
    """Raised when ``Task.map`` is called with no iterable argument to map over."""


class MappingLengthMismatch(MappingError):
    """Raised when ``Task.map`` is called with iterables of different lengths."""


class UpstreamTaskError(KernelflowError):
    """Stored in the state of a task run that did not run because an upstream failed.

    The downstream run ends Failed with this exception; wrap the upstream future in
    ``allow_failure(...)`` to run the downstream anyway.
    """


class FlowPauseTimeout(KernelflowError, TimeoutError):
    """Raised inside a flow by ``pause_flow_run`` when nobody resumed it within its timeout."""


class CancelledRun(KernelflowError):
    """Raised by ``State.result()`` for a run that was cancelled before it finished."""


class CrashedRun(KernelflowError):
    """Raised by ``State.result()`` for a crashed run that holds no exception of its own."""


class UnsafeCacheDirectory(KernelflowError, PermissionError):
    """Raised when a cached task runs and its result store is owned or writable by others.

    Cached results are pickles, and loading one runs code, so kernelflow refuses to use
    such a directory; the run fails with this error, whose message says how to fix it.
    """


class PlaceholderValueError(KernelflowError):
    """Raised during ``Flow.visualize()`` when flow code needs a value no task produced.

    Visualize runs the flow body but no task, so a task call gives a placeholder. Code
    outside tasks that branches on it, takes its ``len()`` or iterates over it raises
    this, naming the task; give that task a ``viz_return_value`` to stand in for it.
    """


class SerializationError(KernelflowError, TypeError):
    """Stored in the state of a run whose argument or result could not be pickled.

    The process and Dask runners send arguments to another process and results back
    with cloudpickle. The run ends Failed with this exception, whose message names the
    task, the run, and the parameter or the result type that could not be sent.
    """


class InvalidStateTransition(KernelflowError, RuntimeError):
    """Raised when the engine asks for a state change the transitions table forbids.

    Seeing this is a kernelflow bug, never a user error.
    """


class RunValuesReleased(KernelflowError, LookupError):
    """Raised when an old run's result is asked for, or it is retried, after its values
    were released (kernelflow keeps the values of the latest few flow runs)."""

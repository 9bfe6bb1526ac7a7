"""Every exception kernelflow raises on purpose, in one place.

The tree::

    KernelflowError (alias PrefectException)
    ├── InvalidOptionError (also ValueError, TypeError)  a bad @task/@flow option, at decoration
    │   ├── InvalidNameError                    a task/flow name with a forbidden character
    │   └── ReservedArgumentError               a function parameter named return_state/wait_for
    ├── ParameterTypeError (also TypeError)     flow parameters that fail validation
    ├── ParameterBindError (also TypeError)     call arguments that do not fit the signature
    ├── MappingError (also ValueError)
    │   ├── MappingMissingIterable              .map() got nothing to iterate over
    │   └── MappingLengthMismatch               .map() got iterables of different lengths
    ├── UpstreamTaskError                       an upstream run did not complete
    ├── FlowPauseTimeout (also TimeoutError)    a paused flow run was not resumed in time
    ├── DeadlineExceeded (also TimeoutError)    a run's timeout_seconds ran out
    ├── CancelledRun                            the result of a cancelled run was asked for
    ├── CrashedRun                              the result of a crashed run was asked for
    ├── FailedRun                               the result of a failed run holding no exception
    ├── PausedRun (also RuntimeError)           the result of a paused run was asked for
    ├── UnfinishedRun (also RuntimeError)       the result of an unfinished run was asked for
    ├── MissingResult                           a state holds no result to give
    ├── MissingContextError (also RuntimeError) run-only API called outside any run
    ├── ConfigurationError (also ValueError)    options that cannot work together
    ├── MissingTransactionValue (also KeyError, ValueError)  txn.get() of a name never set
    ├── UnsafeCacheDirectory (also PermissionError)  the result store is not private
    ├── PlaceholderValueError                   visualize: flow code needed a task's value
    ├── SerializationError (also TypeError)     an argument or result cannot cross processes
    ├── RunValuesReleased (also LookupError)    an old run's values were released
    ├── ConcurrencySlotAcquisitionError        a concurrency limit refused the request
    ├── AcquireConcurrencySlotTimeoutError (also TimeoutError)  no slot within timeout_seconds
    ├── ObjectNotFound                          a named object (a limit, a run input) is unknown
    └── InvalidStateTransition (also RuntimeError)  an engine bug: a forbidden state change

Prefect's names are kept for code that catches them: ``PrefectException`` is
``KernelflowError``, and every class above has the name Prefect gives it where Prefect
has one. Timeouts raise the built-in ``TimeoutError`` so that ``except TimeoutError`` works as
people expect; a task's own exception is always re-raised as itself, never wrapped.
"""

from __future__ import annotations


class KernelflowError(Exception):
    """Base class of every exception kernelflow defines."""


PrefectException = KernelflowError  # Prefect's name for the base class


class InvalidOptionError(KernelflowError, ValueError, TypeError):
    """Raised when ``@task``/``@flow`` (or ``with_options``) gets a bad option value.

    Raised at decoration time, before anything runs; the message names the option and
    says what would be accepted. It is both a ``ValueError`` and a ``TypeError``
    because Prefect raises one or the other for the same mistakes, and code ported from
    it catches either.
    """


class InvalidNameError(InvalidOptionError):
    """Raised when a task or flow name contains a character Prefect forbids (``/ % & > <``)."""


class ReservedArgumentError(InvalidOptionError):
    """Raised at decoration when the function has a parameter named ``return_state`` or
    ``wait_for``: those names are keywords of every task and flow call."""


class ParameterBindError(KernelflowError, TypeError):
    """Raised when a task or flow is called with arguments that do not fit its signature.

    The message names the task or flow, its signature, and what did not fit.
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
    ``allow_failure(...)`` to run the downstream anyway. ``root`` names the run whose
    failure started it, so a chain of skipped runs each name that one.
    """

    def __init__(self, message: str, root: str | None = None) -> None:
        super().__init__(message)
        self.root = root or message

    def __reduce__(self) -> tuple:  # crosses to and from process and Dask workers whole
        return (type(self), (str(self), self.root))


class DeadlineExceeded(KernelflowError, TimeoutError):
    """Stored in the state of a run whose ``timeout_seconds`` ran out (TimedOut), and
    raised inside a sync flow body at its flow's timeout.

    A task attempt's time counts from when a worker starts its body. A TimeoutError the
    task's own code raises is that code's error instead (the run is Failed, not TimedOut).
    """


class FlowPauseTimeout(KernelflowError, TimeoutError):
    """Raised inside a flow by ``pause_flow_run`` when nobody resumed it within its timeout."""


class CancelledRun(KernelflowError):
    """Raised by ``State.result()`` for a run that was cancelled before it finished."""


class CrashedRun(KernelflowError):
    """Raised by ``State.result()`` for a crashed run that holds no exception of its own."""


class FailedRun(KernelflowError):
    """Raised by ``State.result()`` for a failed run that holds no exception of its own
    (a ``Failed(message=...)`` state made by user code)."""


class PausedRun(KernelflowError, RuntimeError):
    """Raised by ``State.result()`` for a paused run: it has no result until resumed."""


class UnfinishedRun(KernelflowError, RuntimeError):
    """Raised by ``State.result()`` for a pending or running run: it has no result yet."""


class MissingResult(KernelflowError):
    """Raised when a state's result is asked for but the state holds none to give."""


class MissingContextError(KernelflowError, RuntimeError):
    """Raised when something that only works inside a flow or task run is used outside one."""


class ConfigurationError(KernelflowError, ValueError):
    """Raised when options are each valid but cannot work together."""


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


class MissingTransactionValue(KernelflowError, KeyError, ValueError):
    """Raised by ``Transaction.get(name)`` when nothing was set under ``name`` in the
    transaction or an enclosing one and no default was given. (Prefect raises a
    ValueError here, kernelflow used to raise a KeyError: it is both.)"""

    def __str__(self) -> str:  # KeyError would show the message in quotes
        return str(self.args[0]) if self.args else ""


class RunValuesReleased(KernelflowError, LookupError):
    """Raised when an old run's result is asked for, or it is retried, after its values
    were released (kernelflow keeps the values of the latest few flow runs)."""


class ConcurrencySlotAcquisitionError(KernelflowError):
    """Raised by ``concurrency()``/``rate_limit()`` when a limit cannot give the slots:
    with ``strict=True`` for a limit that does not exist, for more slots than the limit
    has, or by ``rate_limit()`` on a limit without a slot decay."""


class AcquireConcurrencySlotTimeoutError(KernelflowError, TimeoutError):
    """Raised by ``concurrency()``/``rate_limit()`` when the slots were not free within
    ``timeout_seconds``."""


class ObjectNotFound(KernelflowError):
    """Raised when an object looked up by name does not exist (a concurrency limit
    deleted by ``delete_limit``, a run input that was never sent)."""

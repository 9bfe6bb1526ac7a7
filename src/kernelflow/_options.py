"""Checks for ``@task`` and ``@flow`` options, run at decoration time.

Each check returns the normalised value or raises ``InvalidOptionError`` naming the
option, the bad value and what would be accepted, so a typo fails where it is written
rather than deep inside a run.
"""

from __future__ import annotations

import math
import numbers
import string
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from kernelflow.exceptions import InvalidOptionError

if TYPE_CHECKING:
    import datetime
    from pathlib import Path

MAX_RETRY_DELAYS = 50
# Longer than any real timeout or delay, and small enough that deadlines computed from
# it stay far inside what threading and asyncio accept (1e10 s overflows them).
MAX_SECONDS = 365 * 24 * 3600
SERIALIZERS = ("cloudpickle", "pickle", "json")


def fail(option: str, value: Any, expected: str) -> InvalidOptionError:
    return InvalidOptionError(f"{option}={value!r} is not valid: {option} must be {expected}.")


def optional_str(option: str, value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise fail(option, value, "a string or None")
    return value


def name(option: str, value: Any) -> str | None:
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise fail(option, value, "a non-empty string")
    return value


def tags(value: Any) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise fail("tags", value, 'an iterable of strings, e.g. tags=["etl"]')
    items = list(value)
    if not all(isinstance(item, str) for item in items):
        raise fail("tags", value, "an iterable of strings")
    return frozenset(items)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def non_negative_int(option: str, value: Any) -> int:
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise fail(option, value, "a whole number >= 0")
    return value


def _is_seconds(value: Any) -> bool:
    """A finite number of seconds from 0 to MAX_SECONDS (nan and inf are not)."""
    return _is_number(value) and math.isfinite(value) and 0 <= value <= MAX_SECONDS


def non_negative_number(option: str, value: Any) -> float:
    if value is None:
        return 0.0
    if not _is_number(value) or math.isnan(value) or value < 0:
        raise InvalidOptionError(f"{option}={value!r} is not valid: `{option}` must be >= 0.")
    return float(value)


def seconds(option: str, value: Any) -> float:
    """A delay: a finite number of seconds, at most a year."""
    if value is None:
        return 0.0
    if not _is_seconds(value):
        raise fail(option, value, f"a finite number of seconds from 0 to {MAX_SECONDS}")
    return float(value)


def timeout(option: str, value: Any) -> float | None:
    """Seconds > 0; 0 or None mean no timeout (as in Prefect, where 0 unsets one)."""
    if value is None or (_is_number(value) and value == 0):
        return None
    if not _is_seconds(value):
        raise fail(
            option,
            value,
            f"a finite number of seconds > 0 and at most {MAX_SECONDS} (a year), "
            "or None for no timeout",
        )
    return float(value)


def optional_bool(option: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise fail(option, value, "True, False or None")
    return value


def hooks(option: str, value: Any, kind: str = "task") -> tuple[Callable[..., Any], ...]:
    """A list of hook callables, with Prefect's messages (a bare function is refused, as
    Prefect refuses it: the option takes a list)."""
    if value is None:
        return ()
    example = f"@{kind}({option}=[hook1, hook2])\ndef my_{kind}():\n\tpass"
    hint = f"Please provide a list of hooks to {option!r}:\n\n{example}"
    items = _checked_list(
        value,
        callable,
        lambda: f"Expected iterable for {option!r}; got {type(value).__name__} instead. {hint}",
        lambda item: f"Expected callables in {option!r}; got {type(item).__name__} instead. {hint}",
    )
    return tuple(items)


def hook(option: str, fn: Any) -> Callable[..., Any]:
    """One hook, given through the decorator form (``@my_task.on_failure``)."""
    if not callable(fn):
        raise InvalidOptionError(
            f"@...{option} decorates a hook function, not {type(fn).__name__} ({fn!r})."
        )
    return fn


def optional_callable(option: str, value: Any) -> Callable[..., Any] | None:
    if value is not None and not callable(value):
        raise fail(option, value, "a callable or None")
    return value


def retry_delays(value: Any, retries: int) -> tuple[float, ...]:
    """Normalise ``retry_delay_seconds`` (number, list, or callable) to a tuple of delays."""
    option = "retry_delay_seconds"
    if value is None:
        return ()
    if _is_number(value):
        return (seconds(option, value),)
    if callable(value):
        try:
            produced = value(retries)
        except Exception as error:
            raise InvalidOptionError(
                f"{option}={value!r} raised {error!r} when called with retries={retries}; "
                "it must return a list of delays in seconds."
            ) from error
        delays = _delay_list(option, produced, f"{option}({retries}) returned {produced!r}")
    else:
        delays = _delay_list(option, value, None)
    if len(delays) > MAX_RETRY_DELAYS:
        raise InvalidOptionError(
            f"Can not configure more than {MAX_RETRY_DELAYS} retry delays per task: "
            f"{option} gives {len(delays)}."
        )
    return delays


def _delay_list(option: str, value: Any, context: str | None) -> tuple[float, ...]:
    delays = _checked_list(
        value,
        _is_seconds,
        lambda: (
            f"Invalid {context or f'{option}={value!r}'}: {option} must be a number, a list "
            "of numbers, or a callable that takes the number of retries and returns such a list."
        ),
        lambda delay: (
            f"Invalid {option}: it contains {delay!r}; every delay must be a finite "
            f"number of seconds from 0 to {MAX_SECONDS}."
        ),
    )
    return tuple(float(d) for d in delays)


def _checked_list(
    value: Any,
    is_item: Callable[[Any], bool],
    not_a_list: Callable[[], str],
    bad_item: Callable[[Any], str],
) -> list:
    """The items of an option given as a list (any iterable but a string or a dict), each
    one checked; the messages say what is wrong when it is not a list, or an item is bad."""
    if isinstance(value, (str, bytes, dict)) or not isinstance(value, Iterable):
        raise InvalidOptionError(not_a_list())
    items = list(value)
    for item in items:
        if not is_item(item):
            raise InvalidOptionError(bad_item(item))
    return items


def expiration(value: Any) -> datetime.timedelta | None:
    """A timedelta (or seconds); as in Prefect, one <= 0 makes entries expire at once."""
    if value is None:
        return None
    import datetime  # here: most tasks set no expiration

    if _is_number(value) and math.isfinite(value):
        return datetime.timedelta(seconds=float(value))
    if isinstance(value, datetime.timedelta):
        return value
    raise fail("cache_expiration", value, "a datetime.timedelta (or seconds), or None")


def storage(option: str, value: Any) -> Path | None:
    """A directory: a path, or a filesystem object with a ``basepath`` (the shape of
    Prefect's ``LocalFileSystem`` block, and of kernelflow.filesystems.LocalFileSystem)."""
    if value is None:
        return None
    from pathlib import Path  # here: pathlib is a large import, and most runs store nothing

    base = getattr(value, "basepath", None)
    if isinstance(base, (str, Path)) and not isinstance(value, (str, Path)):
        value = base
    if not isinstance(value, (str, Path)):
        raise fail(
            option,
            value,
            "a directory path (str or pathlib.Path), a LocalFileSystem(basepath=...), or None",
        )
    return Path(value).expanduser()


def serializer(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in SERIALIZERS:
            raise fail("result_serializer", value, f"one of {', '.join(SERIALIZERS)}")
        return value
    if callable(getattr(value, "dumps", None)) and callable(getattr(value, "loads", None)):
        return value
    raise fail("result_serializer", value, f"one of {SERIALIZERS} or an object with dumps/loads")


def run_name_template(option: str, value: Any, parameter_names: Iterable[str], open_kwargs: bool):
    """A run-name template's fields must name parameters; a callable is taken as is."""
    if value is None or callable(value):
        return value
    if not isinstance(value, str):
        raise run_name_type_error(option, value)
    known = set(parameter_names)
    try:
        fields = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
    except ValueError as error:
        raise fail(option, value, f"a valid format string ({error})") from None
    for field in fields:
        base = field.split(".")[0].split("[")[0]
        if not base or (base not in known and not open_kwargs):
            raise InvalidOptionError(
                f"{option}={value!r} refers to {{{field}}}, which is not a parameter of the "
                f"function (parameters: {', '.join(sorted(known)) or 'none'})."
            )
    return value


def run_name_type_error(option: str, value: Any) -> InvalidOptionError:
    return InvalidOptionError(
        f"Expected string or callable for {option!r}; got {type(value).__name__} instead. "
        f"Use a template string like 'load-{{path}}' or a function returning a string."
    )


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double each time: ``backoff_factor * 2**n`` for retry n (0-based).

    Use as ``@task(retries=4, retry_delay_seconds=exponential_backoff(10))``.
    """
    if (
        isinstance(backoff_factor, bool)
        or not isinstance(backoff_factor, (int, float))
        or backoff_factor < 0
    ):
        raise fail("backoff_factor", backoff_factor, "a number >= 0")

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**n for n in range(retries)]

    return delays

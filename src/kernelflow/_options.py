"""Checks for ``@task`` and ``@flow`` options, run at decoration time.

Each check returns the normalised value or raises ``InvalidOptionError`` naming the
option, the bad value and what would be accepted, so a typo fails where it is written
rather than deep inside a run.
"""

from __future__ import annotations

import datetime
import numbers
import string
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from kernelflow.exceptions import InvalidOptionError

MAX_RETRY_DELAYS = 50
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


def non_negative_number(option: str, value: Any) -> float:
    if value is None:
        return 0.0
    if not _is_number(value) or value < 0:
        raise fail(option, value, "a number >= 0")
    return float(value)


def timeout(option: str, value: Any) -> float | None:
    if value is None:
        return None
    if not _is_number(value) or value <= 0:
        raise fail(option, value, "a number of seconds > 0, or None for no timeout")
    return float(value)


def optional_bool(option: str, value: Any) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise fail(option, value, "True, False or None")
    return value


def hooks(option: str, value: Any) -> tuple[Callable[..., Any], ...]:
    if value is None:
        return ()
    items = [value] if callable(value) else value
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise fail(option, value, "a list of callables")
    items = list(items)
    for item in items:
        if not callable(item):
            raise fail(option, value, f"a list of callables, but {item!r} is not callable")
    return tuple(items)


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
        return (non_negative_number(option, value),)
    if callable(value):
        produced = value(retries)
        delays = _delay_list(option, produced, f"{option}({retries}) returned {produced!r}")
    else:
        delays = _delay_list(option, value, None)
    if len(delays) > MAX_RETRY_DELAYS:
        raise InvalidOptionError(
            f"{option} gives {len(delays)} delays; at most {MAX_RETRY_DELAYS} are allowed."
        )
    return delays


def _delay_list(option: str, value: Any, context: str | None) -> tuple[float, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        what = context or f"{option}={value!r}"
        raise InvalidOptionError(
            f"{what} is not valid: {option} must be a number, a list of numbers, or a "
            "callable that takes the number of retries and returns such a list."
        )
    delays = list(value)
    for delay in delays:
        if not _is_number(delay) or delay < 0:
            raise InvalidOptionError(
                f"{option} contains {delay!r}; every delay must be a number >= 0."
            )
    return tuple(float(d) for d in delays)


def expiration(value: Any) -> datetime.timedelta | None:
    if value is None:
        return None
    if _is_number(value) and value > 0:
        return datetime.timedelta(seconds=float(value))
    if isinstance(value, datetime.timedelta) and value.total_seconds() > 0:
        return value
    raise fail("cache_expiration", value, "a datetime.timedelta (or seconds) > 0, or None")


def storage(value: Any) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, (str, Path)):
        raise fail("result_storage", value, "a directory path (str or pathlib.Path) or None")
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
        raise fail(option, value, "a template string like 'load-{path}', or a callable")
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

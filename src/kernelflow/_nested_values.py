"""Where kernelflow looks for futures inside a value, and how it copies one with some swapped.

Futures may sit anywhere in an argument or a return value: in lists, tuples, sets,
dicts (keys too), dataclass instances and pydantic models (as in Prefect). The task
inputs (``_engine/inputs.py``) and ``resolve_futures_to_*`` (``futures.py``) walk values
with these, at most ``MAX_SEARCH_DEPTH`` containers deep.
"""

from __future__ import annotations

import dataclasses
from typing import Any

# The containers searched for futures. Large static data can skip the walk with quote(...).
CONTAINERS = (list, tuple, set, frozenset, dict)
# How deep in nested containers futures are looked for: anything deeper passes on as it
# is (data nested thousands deep must not make a task call hit the recursion limit).
MAX_SEARCH_DEPTH = 100


def fields_of(value: Any) -> dict[str, Any] | None:
    """The fields of a dataclass instance or a pydantic model, else None.

    Only these two kinds of objects are looked into: their fields are declared, so a
    copy with some fields swapped is well defined (``with_fields``).
    """
    cls = type(value)
    if cls.__module__.startswith("kernelflow."):
        # kernelflow's own objects (a run context holds every future of its flow run,
        # the current task's too) are passed as they are, never waited on.
        return None
    if hasattr(cls, "__dataclass_fields__") and not isinstance(value, type):
        # Fields set by __post_init__ (init=False) are derived: they are not looked into.
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
    if hasattr(cls, "__pydantic_fields__") and hasattr(value, "model_copy"):
        return {name: getattr(value, name) for name in cls.__pydantic_fields__}
    return None


def with_fields(value: Any, changed: dict[str, Any]) -> Any:
    """A copy of a dataclass instance or pydantic model with ``changed`` fields swapped;
    no validation runs again (a future's value replaces the future, as in Prefect)."""
    if hasattr(type(value), "__dataclass_fields__"):
        return dataclasses.replace(value, **changed)
    return value.model_copy(update=changed)

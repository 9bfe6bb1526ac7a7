"""Nested-dict helpers under Prefect's path (``prefect.utilities.collections``)."""

from __future__ import annotations

from typing import Any

__all__ = ["dict_to_flatdict", "flatdict_to_dict"]


def dict_to_flatdict(dct: dict[Any, Any], _parent: tuple[Any, ...] = ()) -> dict[tuple, Any]:
    """``{"a": {"b": 1}}`` as ``{("a", "b"): 1}``: each leaf under the tuple of its keys."""
    flat: dict[tuple, Any] = {}
    for key, value in dct.items():
        path = (*_parent, key)
        if isinstance(value, dict) and value:
            flat.update(dict_to_flatdict(value, path))
        else:
            flat[path] = value
    return flat


def flatdict_to_dict(dct: dict[tuple, Any]) -> dict[Any, Any]:
    """The nested dict a ``dict_to_flatdict`` result came from (of the same dict type)."""
    nested = type(dct)()
    for path, value in dct.items():
        *parents, last = path
        current = nested
        for key in parents:
            current = current.setdefault(key, type(dct)())
        current[last] = value
    return nested

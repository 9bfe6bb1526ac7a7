"""Result serializers: "cloudpickle" (the default), "pickle", "json", or your own object.

A custom serializer is any object with ``dumps(value) -> bytes`` and ``loads(bytes)``.
"""

from __future__ import annotations

import json
import pickle
from typing import Any

import cloudpickle


class PickleSerializer:
    name = "pickle"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    loads = staticmethod(pickle.loads)


class CloudpickleSerializer(PickleSerializer):
    """Pickles what plain pickle cannot (functions and classes defined in a notebook)."""

    name = "cloudpickle"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


class JSONSerializer:
    name = "json"

    @staticmethod
    def dumps(value: Any) -> bytes:
        return json.dumps(value).encode()

    @staticmethod
    def loads(data: bytes) -> Any:
        return json.loads(data)


BUILTIN = {s.name: s for s in (CloudpickleSerializer, PickleSerializer, JSONSerializer)}


def get_serializer(option: Any) -> Any:
    """The serializer for a task's ``result_serializer`` option (None: cloudpickle)."""
    if option is None:
        return CloudpickleSerializer
    if isinstance(option, str):
        return BUILTIN[option]
    return option


def serializer_name(serializer: Any) -> str:
    name = getattr(serializer, "name", None)
    if isinstance(name, str) and BUILTIN.get(name) is serializer:
        return name
    return f"custom:{type(serializer).__qualname__}"


def for_reading(name: str, task_serializer: Any) -> Any:
    """The serializer to read an entry written with ``name``: a built-in by its name,
    else the task's own (custom serializers cannot be found by name)."""
    return BUILTIN.get(name) or task_serializer

"""Hashing values into stable key parts, and Prefect's ``task_input_hash``.

A value is hashed through canonical JSON when it can be (fast, and the same in every
process), else through cloudpickle; when neither works the hash is None, which the
engine takes to mean "do not cache this run". Keys are hex BLAKE2b digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import PurePath
from typing import Any

# A key part: (label, digest). The label says what was hashed ("inputs",
# "helper:clean", ...) so a miss can say what changed; a None digest means unhashable.
Part = tuple[str, "str | None"]


class _Unencodable(TypeError):
    pass


def _canonical(value: Any) -> Any:
    """JSON's fallback for values it lacks: sets in a stable order, bytes, paths."""
    if isinstance(value, (set, frozenset)):
        items = [json.dumps(item, sort_keys=True, default=_canonical) for item in value]
        return {"__set__": sorted(items)}
    if isinstance(value, (bytes, bytearray)):
        return {"__bytes__": bytes(value).hex()}
    if isinstance(value, PurePath):
        return {"__path__": str(value)}
    raise _Unencodable(f"Unable to serialize unknown type: {type(value)}")


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def hash_value(value: Any) -> str | None:
    """A digest of ``value`` that is the same in every process, or None if unhashable."""
    try:
        text = json.dumps(value, sort_keys=True, default=_canonical)
    except (TypeError, ValueError):  # not JSON (or keys of mixed types): try pickling
        pass
    else:
        return digest(text.encode())
    try:
        import cloudpickle

        return digest(b"pickle:" + cloudpickle.dumps(value))
    except Exception:
        return None


def why_unhashable(arguments: dict[str, Any]) -> str:
    """Why ``hash_value`` gave None for these arguments, in Prefect's words: which
    arguments, and what JSON and pickling each said (one line, as every warning of a run
    is). Only called after a failure."""
    import cloudpickle

    lines = ["Unable to create hash - objects could not be serialized."]
    for name, value in arguments.items():
        if hash_value(value) is not None:
            continue
        try:
            json.dumps(value, sort_keys=True, default=_canonical)
        except (TypeError, ValueError) as error:
            json_error = str(error)
        try:
            cloudpickle.dumps(value)
        except Exception as error:
            pickle_error = str(error)
        lines.append(f"argument {name!r}: JSON error: {json_error}; Pickle error: {pickle_error}")
    return " ".join(lines)


def combine(namespace: str, parts: Iterable[Part]) -> str:
    """The cache key for a task (``namespace``) from its key parts."""
    text = namespace + "\0" + "\0".join(f"{label}={value}" for label, value in parts)
    return digest(text.encode())


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """A ``cache_key_fn`` that hashes the task and every argument passed to it.

    As in Prefect: the arguments are hashed through JSON, then cloudpickle; when neither
    can hash them the result is None, and the run is not cached (with a warning).

    Args:
        context: The task run context (``.task``, ``.task_run``).
        arguments: The run's parameters, by name.

    Returns:
        A hex digest, or None.
    """
    inputs = hash_value(arguments)
    if inputs is None:
        from kernelflow._logging import run_logger

        run_logger(task_run=getattr(context, "task_run", None)).warning(
            "Not cached: task_input_hash cannot hash the arguments (%s).",
            ", ".join(sorted(arguments)) or "none",
        )
        return None
    fn = getattr(context.task, "fn", None)
    code = getattr(fn, "__code__", None)
    body = code.co_code.hex() if code is not None else ""
    return digest(f"{context.task.name}\0{body}\0{inputs}".encode())

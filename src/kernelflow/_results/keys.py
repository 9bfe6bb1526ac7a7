"""Hashing values into stable key parts, and Prefect's ``task_input_hash``.

A value is hashed through a canonical encoding that keeps its type, so that values
which compare or print alike but are not the same never share a key: ``(1, 2)`` and
``[1, 2]``, ``{1: x}`` and ``{"1": x}``, an ``IntEnum`` member and its int, a ``str``
subclass and its str, ``1`` and ``1.0`` and ``True``. The encoding is the same in every
process: dicts and sets are encoded in the order of their items' encodings, not in
their iteration order (which for sets depends on the hash seed).

- ``None``, bools, ints, floats, strs and bytes (exactly those types) are their
  ``repr``, which tells all of them apart;
- lists, tuples, dicts, sets and frozensets (exactly those types) are encoded item by
  item, with a mark for the container type;
- an open file is its path, size and modification time: never its content (hashing a
  1 GB file would read it all), so a file changed in place changes the key;
- anything else (an instance of a subclass, an enum member, a dataclass, an array) is
  a digest of its cloudpickle, which names its type.

When a value cannot be encoded (a lock, a file with no path) the hash is None, which
the engine takes to mean "do not cache this run". Keys are hex BLAKE2b digests.
Prefect hashes JSON first, which is why its keys confuse the pairs above.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from typing import Any

from kernelflow._lazy_imports import blake2b

# A key part: (label, digest). The label says what was hashed ("inputs",
# "helper:clean", ...) so a miss can say what changed; a None digest means unhashable.
Part = tuple[str, "str | None"]

# Exactly these types are their repr: repr tells each from the others (1, 1.0, True,
# '1', b'1', None), and a str's or bytes' repr escapes its quotes, so it ends where it
# seems to.
_REPR_TYPES = frozenset({type(None), bool, int, float, str, bytes})
_STR = frozenset({str})
_CONTAINERS = {list: b"L", tuple: b"T", set: b"S", frozenset: b"F", dict: b"D"}
# Files with a descriptor: hashed by what they are on disk, never by content.
_FILES = (io.FileIO, io.BufferedReader, io.BufferedWriter, io.BufferedRandom, io.TextIOWrapper)


class _Unencodable(TypeError):
    pass


class _Cyclic(_Unencodable):
    """A container that contains itself: hashed through cloudpickle, which keeps cycles."""


def digest(data: bytes) -> str:
    return blake2b(data, digest_size=16).hexdigest()


def encode(value: Any) -> bytes:
    """The canonical encoding of ``value`` (see the module docstring).

    Raises:
        TypeError: the value cannot be encoded, with why.
    """
    if type(value) is dict:  # a run's parameters: most often a record (see _record)
        record = _record(value)
        if record is not None:
            return record
    out: list[bytes] = []
    _encode(value, out, set())
    return b"".join(out)


def _record(value: dict) -> bytes | None:
    """The encoding of a dict of str keys and ``_REPR_TYPES`` values, or None if it is
    not one: the items sorted, their repr."""
    if _STR.issuperset(map(type, value)) and _REPR_TYPES.issuperset(map(type, value.values())):
        return b"D" + repr(sorted(value.items())).encode("utf-8", "backslashreplace")
    return None


def _encode(value: Any, out: list[bytes], open_containers: set[int]) -> None:
    kind = type(value)
    if kind in _REPR_TYPES:
        out.append(repr(value).encode("utf-8", "backslashreplace"))
        return
    mark = _CONTAINERS.get(kind)
    if mark is None:
        out.append(_encode_other(value))
        return
    if mark in (b"L", b"T") and _REPR_TYPES.issuperset(map(type, value)):
        out.append(mark + repr(value).encode("utf-8", "backslashreplace"))  # fast path
        return
    if kind is dict:
        record = _record(value)
        if record is not None:
            out.append(record)
            return
    if id(value) in open_containers:
        raise _Cyclic("it contains itself")
    open_containers.add(id(value))
    if kind is dict:
        items = sorted(
            _item(key, open_containers) + b":" + _item(item, open_containers)
            for key, item in value.items()
        )
    elif mark in (b"S", b"F"):
        items = sorted(_item(item, open_containers) for item in value)
    else:
        items = [_item(item, open_containers) for item in value]
    open_containers.discard(id(value))
    out.append(mark + b"(" + b",".join(items) + b")")


def _item(value: Any, open_containers: set[int]) -> bytes:
    out: list[bytes] = []
    _encode(value, out, open_containers)
    return b"".join(out)


def _encode_other(value: Any) -> bytes:
    if isinstance(value, _FILES):
        return b"file" + repr(file_identity(value)).encode()
    if type(value) in (bytearray, memoryview):
        return b"bytearray" + repr(bytes(value)).encode()
    # pathlib not imported yet: nothing can be a path (and the first @task, which loads
    # this module, need not load pathlib and urllib with it)
    pathlib = sys.modules.get("pathlib")
    if (
        pathlib is not None
        and isinstance(value, pathlib.PurePath)
        and type(value).__module__ == "pathlib"
    ):
        return type(value).__name__.encode() + repr(str(value)).encode()
    return b"pickle:" + digest(_pickle(value)).encode()


def file_identity(file: Any) -> tuple[str, int, int]:
    """(absolute path, size, modification time in ns) of an open file.

    Raises:
        TypeError: the file has no path (a pipe, a socket, a terminal) or is closed.
    """
    name = getattr(file, "name", None)
    try:
        st = os.fstat(file.fileno())
    except (OSError, ValueError) as error:  # closed, or no descriptor
        raise _Unencodable(f"the file {name!r} cannot be examined ({error})") from None
    if not isinstance(name, (str, bytes, os.PathLike)) or not os.path.exists(name):
        raise _Unencodable(
            f"the open file {name!r} has no path to identify it by (a pipe or a terminal); "
            "leave that argument out of the key"
        )
    return os.path.abspath(os.fsdecode(name)), st.st_size, st.st_mtime_ns


def _pickle(value: Any) -> bytes:
    import cloudpickle

    buffer = io.BytesIO()
    _KeyPickler.make(cloudpickle)(buffer).dump(value)
    return buffer.getvalue()


class _KeyPickler:
    """cloudpickle's pickler, except that an open file inside a value is its identity
    (cloudpickle would read the file's whole content)."""

    _class: Any = None

    @classmethod
    def make(cls, cloudpickle: Any) -> Any:
        if cls._class is None:

            class Pickler(cloudpickle.CloudPickler):
                def reducer_override(self, obj: Any) -> Any:
                    if isinstance(obj, _FILES):
                        return (_opened_file, file_identity(obj))
                    return super().reducer_override(obj)

            cls._class = Pickler
        return cls._class


def _opened_file(path: str, size: int, mtime_ns: int) -> None:
    """What an open file pickles to in a key (never called: key pickles are not loaded)."""


def hash_value(value: Any) -> str | None:
    """A digest of ``value`` that is the same in every process, or None if unhashable."""
    try:
        try:
            return digest(encode(value))
        except _Cyclic:
            return digest(b"cyclic:" + _pickle(value))
    except RecursionError:
        return None
    except Exception:  # an object neither the encoding nor cloudpickle can take
        return None


def why_unhashable(arguments: dict[str, Any]) -> str:
    """Why ``hash_value`` gave None for these arguments, in Prefect's words (its JSON
    error, then its pickle error), one line as every warning of a run is. Only called
    after a failure."""
    lines = ["Unable to create hash - objects could not be serialized."]
    for name, value in arguments.items():
        try:
            encode(value)
            continue
        except RecursionError:
            problem = "it is nested too deeply"
        except Exception as error:
            problem = str(error)
        json_error = _json_error(value)
        lines.append(f"argument {name!r}: JSON error: {json_error}; Pickle error: {problem}")
    return " ".join(lines)


def _json_error(value: Any) -> str:
    import json  # only to say why a value cannot be hashed

    def refuse(unknown: Any) -> Any:
        raise TypeError(f"Unable to serialize unknown type: {type(unknown)}")

    try:
        json.dumps(value, default=refuse)
    except (TypeError, ValueError, RecursionError) as error:
        return str(error)
    return "none"


def combine(namespace: str, parts: Sequence[Part]) -> str:
    """The cache key for a task (``namespace``) from its key parts."""
    try:  # the parts kernelflow makes are (str, str): "label=digest", with no comprehension
        text = "\0".join(map("=".join, parts))
    except TypeError:  # a key of another type (a policy's own compute_key gave it)
        text = "\0".join([f"{label}={value}" for label, value in parts])
    return digest((namespace + "\0" + text).encode())


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

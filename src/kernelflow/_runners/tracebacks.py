"""A worker's traceback, shown in the notebook as if the task had failed there.

The worker sends the traceback as data (a ``traceback.TracebackException`` without its
source lines), and the notebook formats it. Two things only the notebook knows:

- the source lines of code defined in cells, which live in the kernel's ``linecache``
  and nowhere a worker process could read them;
- where code that cloudpickle sent by value came from: cloudpickle >= 3.1.3 renames its
  file to ``<dynamic-code>`` (so that pickles do not depend on the path), which would
  leave a failing cell-defined task with ``File "<dynamic-code>", line 5`` and no source.
  The notebook still holds the original functions, so each such frame is matched to the
  code object of the same name whose lines contain it.
"""

from __future__ import annotations

import inspect
import sys
import traceback
import types
from collections.abc import Iterator
from typing import Any

import cloudpickle

DYNAMIC_CODE = "<dynamic-code>"  # cloudpickle's name for code pickled by value


def pack_traceback(error: BaseException, tb: types.TracebackType | None) -> bytes:
    """The traceback of ``error`` from frame ``tb`` on, as bytes; b"" if it won't pickle."""
    summary = traceback.TracebackException(type(error), error, tb, lookup_lines=False)
    try:
        return cloudpickle.dumps(summary)
    except Exception:
        return b""


def format_remote_traceback(packed: bytes, fn: Any) -> str | None:
    """The text of a packed traceback, with cell sources and original file names.

    ``fn`` is the task's function as the notebook has it. None if ``packed`` is empty.
    """
    if not packed:
        return None
    summary = cloudpickle.loads(packed)
    origins = _code_origins(fn)
    for part in _chain(summary):
        part.stack = traceback.StackSummary.from_list(
            [_relocated(frame, origins) for frame in part.stack]
        )
    return "".join(summary.format())


def _chain(summary: traceback.TracebackException) -> Iterator[traceback.TracebackException]:
    seen: set[int] = set()
    pending = [summary]
    while pending:
        part = pending.pop()
        if id(part) in seen:
            continue
        seen.add(id(part))
        yield part
        pending += [p for p in (part.__cause__, part.__context__) if p is not None]
        pending += getattr(part, "exceptions", None) or []  # exception groups


def _relocated(
    frame: traceback.FrameSummary, origins: list[types.CodeType]
) -> traceback.FrameSummary:
    """A copy of ``frame`` that reads its source line here, under its original file name."""
    filename = frame.filename
    if filename == DYNAMIC_CODE:
        filename = next((code.co_filename for code in origins if _contains(code, frame)), filename)
    positions: dict[str, Any] = {}
    if sys.version_info >= (3, 11):
        positions = {
            "end_lineno": frame.end_lineno,
            "colno": frame.colno,
            "end_colno": frame.end_colno,
        }
    return traceback.FrameSummary(filename, frame.lineno, frame.name, **positions)


def _contains(code: types.CodeType, frame: traceback.FrameSummary) -> bool:
    if code.co_name != frame.name or frame.lineno is None:
        return False
    lines = [line for _, _, line in code.co_lines() if line is not None]
    return bool(lines) and min(lines + [code.co_firstlineno]) <= frame.lineno <= max(lines)


def _code_origins(fn: Any, depth: int = 3) -> list[types.CodeType]:
    """The code objects cloudpickle sends with ``fn`` by value: its own, nested ones, and
    those of the functions and classes of its module that it names (a few levels deep)."""
    codes: list[types.CodeType] = []
    seen: set[int] = set()

    def visit(obj: Any, level: int) -> None:
        obj = inspect.unwrap(obj) if callable(obj) else obj
        if id(obj) in seen or level > depth:
            return
        seen.add(id(obj))
        if isinstance(obj, type):
            for member in vars(obj).values():
                visit(getattr(member, "__func__", member), level)
            return
        code = getattr(obj, "__code__", None)
        if not isinstance(code, types.CodeType):
            return
        codes.extend(_nested(code))
        names = {name for nested in _nested(code) for name in nested.co_names}
        namespace = getattr(obj, "__globals__", {})
        for name in names & namespace.keys():
            value = namespace[name]
            if getattr(value, "__module__", None) == getattr(obj, "__module__", None):
                visit(value, level + 1)

    visit(fn, 0)
    return codes


def _nested(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _nested(const)

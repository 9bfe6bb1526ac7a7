"""Whether a call is awaited where it is written: ``await state.result()``.

Prefect's ``State.result()`` hands back an awaitable whenever an event loop is running,
so ported async code writes ``await state.result()``. kernelflow never decides by "is
a loop running" (in a notebook one always is, and a plain ``state.result()`` in a cell
would give a coroutine). It reads the call site instead: the instruction after the call
is ``GET_AWAITABLE`` exactly when the call is the operand of ``await``. So each line
means what it says, wherever it runs, and ``state.result()`` without ``await`` keeps
giving the value.
"""

from __future__ import annotations

import dis
import functools
import inspect
import sys
import weakref
from collections.abc import Callable
from types import CodeType, FrameType
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

# Per code object: the offsets of the calls written as ``await <call>``.
_awaited_calls: weakref.WeakKeyDictionary[CodeType, frozenset[int]] = weakref.WeakKeyDictionary()


def awaitable_where_awaited(fn: F) -> F:
    """``fn``, except that a call written ``await fn(...)`` gets an awaitable of its
    result (or of its exception)."""

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if awaited_at(sys._getframe(1)):
            return _when_awaited(fn, args, kwargs)
        return fn(*args, **kwargs)

    return call  # type: ignore[return-value]


async def _when_awaited(fn: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
    __tracebackhide__ = True
    return fn(*args, **kwargs)


def awaited_at(frame: FrameType) -> bool:
    """True if the call ``frame`` is making right now is the operand of ``await``."""
    code = frame.f_code
    if not code.co_flags & _ASYNC_CODE:  # the common case, and cheap: sync code
        return False
    offsets = _awaited_calls.get(code)
    if offsets is None:
        offsets = _awaited_calls[code] = _find_awaited_calls(code)
    return frame.f_lasti in offsets


def _find_awaited_calls(code: CodeType) -> frozenset[int]:
    instructions = list(dis.get_instructions(code))  # inline caches left out
    # While a call runs, ``f_lasti`` is the call instruction's offset or, on Python
    # 3.11-3.12, that of one of its inline cache entries: any offset up to the next
    # instruction.
    return frozenset(
        offset
        for call, following in zip(instructions, instructions[1:], strict=False)
        if following.opname == "GET_AWAITABLE"
        for offset in range(call.offset, following.offset, 2)
    )


# Code that may contain ``await``: coroutine functions, async generators, and notebook
# cells compiled for top-level await (which set the coroutine flag).
_ASYNC_CODE = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR

"""TASK_SOURCE: a task's code as key parts, so editing the code invalidates its cache.

What is hashed, for the task function and, transitively, every user-defined helper
function it refers to (a function of the same module; in a notebook, ``__main__``):

- the source, parsed and dumped through ``ast`` without decorators or docstring, so
  comment, blank-line and formatting edits keep the cache. Source comes from
  ``inspect.getsource``, which reads notebook cells from the ``linecache`` entries
  IPython keeps for them; with no source, the compiled code object is hashed instead;
- the values of closure variables, and of scalar module globals (numbers, strings) the
  code reads, so ``THRESHOLD = 5`` -> ``6`` in an earlier cell invalidates too.

Not followed: functions of other modules (libraries change with their version, not
with your edits), classes and their methods, and mutable module globals (a list or a
dict read by the task), and variables the task itself rebinds (``nonlocal count`` /
``global count``: its state, not its definition). A closure value is hashed by value at
every run, so a closure over an object the task mutates in place (a call log it appends
to) changes the key each time.

Walking the code is slow next to a cache hit, so each function's parts are remembered
with the global (and closure) bindings they were read from; a later call only checks
that every binding still holds the same object. Redefining a helper in a notebook cell
rebinds its name, so the next call notices and hashes again.
"""

from __future__ import annotations

import ast
import dis
import inspect
import sys
import textwrap
import types
import weakref
from collections.abc import Callable
from typing import Any

from kernelflow._results.keys import Part, digest, hash_value

_MISSING = object()
_SCALARS = (int, float, complex, str, bytes, bool)


class _Plan:
    """A function's source parts, the bindings they depend on, and its closure cells."""

    __slots__ = ("parts", "bindings", "cells")

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.bindings: list[tuple[Any, str, Any]] = []  # (namespace, name, obj)
        self.cells: list[tuple[str, Any]] = []  # (label, closure cell)

    def still_valid(self) -> bool:
        for namespace, name, obj in self.bindings:
            current = _read(namespace, name)
            if current is not obj:
                return False
        return True


_plans: weakref.WeakKeyDictionary[Callable[..., Any], _Plan] = weakref.WeakKeyDictionary()


def source_parts(fn: Callable[..., Any]) -> list[Part]:
    """Key parts for ``fn``'s source, its helpers' sources, globals and closure values."""
    plan = _plans.get(fn)
    if plan is None or not plan.still_valid():
        plan = _plan(fn)
        _plans[fn] = plan
    if not plan.cells:
        return plan.parts
    return plan.parts + [(label, hash_value(cell.cell_contents)) for label, cell in plan.cells]


def _read(namespace: Any, name: str) -> Any:
    if isinstance(namespace, dict):
        return namespace.get(name, _MISSING)
    try:
        return namespace.cell_contents
    except ValueError:  # an empty cell
        return _MISSING


def _plan(root: Callable[..., Any]) -> _Plan:
    plan = _Plan()
    module = getattr(root, "__module__", None)
    queue: list[Callable[..., Any]] = [root]
    seen: set[int] = {id(root)}
    while queue:
        fn = queue.pop(0)
        label = "source" if fn is root else f"helper:{fn.__qualname__}"
        plan.parts.append((label, function_digest(fn)))
        for name, namespace, value in _references(fn):
            plan.bindings.append((namespace, name, value))
            helper = _user_function(value, module)
            if helper is not None:
                if id(helper) not in seen:
                    seen.add(id(helper))
                    queue.append(helper)
            elif isinstance(namespace, dict):
                if type(value) in _SCALARS or value is None:
                    plan.parts.append((f"global:{name}", hash_value(value)))
            elif value is not _MISSING:
                plan.cells.append((f"closure:{name}", namespace))
    return plan


def _references(fn: Callable[..., Any]) -> list[tuple[str, Any, Any]]:
    """(name, namespace, current value) for each global and closure variable ``fn`` reads."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    found = []
    written = _written_names(code)  # the task's own state (a counter), not its definition
    namespace = getattr(fn, "__globals__", {})
    for name in sorted(_global_names(code) - written):
        found.append((name, namespace, namespace.get(name, _MISSING)))
    cells = getattr(fn, "__closure__", None) or ()
    for name, cell in zip(code.co_freevars, cells, strict=False):
        if name not in written:
            found.append((name, cell, _read(cell, name)))
    return found


def _written_names(code: types.CodeType) -> set[str]:
    """Global and closure variables the code rebinds (``global`` / ``nonlocal``)."""
    names = {
        instruction.argval
        for instruction in dis.get_instructions(code)
        if instruction.opname in _REBINDING
    }
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _written_names(const)
    return names


_REBINDING = frozenset({"STORE_GLOBAL", "DELETE_GLOBAL", "STORE_DEREF", "DELETE_DEREF"})


def _global_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):  # nested functions, lambdas, comprehensions
            names |= _global_names(const)
    return names


def _user_function(value: Any, module: str | None) -> Callable[..., Any] | None:
    """The plain function behind ``value`` if it is user code of ``module``, else None."""
    fn = value
    if not isinstance(fn, types.FunctionType):
        fn = getattr(value, "fn", None)  # a kernelflow Task used as a helper
        if not isinstance(fn, types.FunctionType):
            return None
    return fn if fn.__module__ == module else None


def function_digest(fn: Callable[..., Any]) -> str:
    """A digest of ``fn``'s normalised source (or of its code object, without source)."""
    node = _function_node(fn)
    if node is not None:
        return digest(ast.dump(node).encode())
    code = getattr(fn, "__code__", None)
    fingerprint = _code_fingerprint(code) if code is not None else repr(fn)
    return digest(fingerprint.encode())


def _function_node(fn: Callable[..., Any]) -> ast.AST | None:
    try:
        source = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == fn.__name__:
            node.decorator_list = []
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
            return node
        if isinstance(node, ast.Lambda) and fn.__name__ == "<lambda>":
            return node
    return None


def _code_fingerprint(code: types.CodeType) -> str:
    consts = [
        _code_fingerprint(c) if isinstance(c, types.CodeType) else repr(c) for c in code.co_consts
    ]
    return f"{sys.version_info[:2]}|{code.co_code.hex()}|{consts}|{code.co_names}"

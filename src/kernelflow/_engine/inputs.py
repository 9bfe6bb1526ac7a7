"""Task inputs: binding call arguments to parameters, and futures to the values they hold.

Futures may sit anywhere in an argument: at the top, or inside lists, tuples, sets,
dicts, dataclass instances and pydantic models (as in Prefect). ``find_upstream`` walks
the arguments once, before the run waits, to list the futures to wait for and the
upstream edges; ``resolve`` swaps each future for its value
afterwards. Walking stops at ``quote``; ``allow_failure`` lets a failed upstream through.

Both walks go at most ``MAX_SEARCH_DEPTH`` containers deep and pass anything deeper on
as it is: data nested thousands deep (a linked list of lists, a parse tree) is a fine
argument for a plain call, and must not make a task call hit Python's recursion limit.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kernelflow._annotations import BaseAnnotation, allow_failure, quote
from kernelflow._nested_values import CONTAINERS, MAX_SEARCH_DEPTH, fields_of, with_fields
from kernelflow._runs import result_of
from kernelflow.exceptions import UpstreamTaskError
from kernelflow.futures import TaskFuture

if TYPE_CHECKING:
    import uuid

    from kernelflow._runs import FlowRun


class Resolved(BaseAnnotation[Any]):
    """Marks an argument already known to hold no futures, so it is not walked again.

    ``Task.map`` wraps each static argument once instead of walking it in every call.
    """

    __slots__ = ()


class Upstream:
    """What a walk over the arguments found. (A plain class: a dataclass is made at
    import, which a new process pays for at its first ``import kernelflow``.)"""

    __slots__ = ("futures", "edges", "possible", "needs_resolving")

    def __init__(
        self, futures: list[TaskFuture] | None = None, needs_resolving: bool = False
    ) -> None:
        self.futures: list[TaskFuture] = [] if futures is None else futures
        self.edges: dict[str, frozenset[uuid.UUID]] = {}
        # parameter -> the run that last returned an equal small shared value (no lineage)
        self.possible: dict[str, frozenset[uuid.UUID]] = {}
        self.needs_resolving = needs_resolving  # any future or annotation to replace


# Values that can hold no future; when every argument is one of these and none came
# from an earlier run, there is nothing to find (the common case of a direct call).
PLAIN_TYPES = frozenset({int, float, complex, str, bytes, bool, type(None)})
NOTHING_UPSTREAM = Upstream()  # shared: never mutated


def find_upstream(
    parameters: dict[str, Any], flow_run: FlowRun | None, wait_for: Any = None
) -> Upstream:
    """List the futures to wait for and the upstream run ids of each parameter.

    The result (and its ``edges``) must be treated as read-only.
    """
    links = flow_run._result_links if flow_run is not None else None
    small = flow_run._small_results if flow_run is not None else None
    if not wait_for:
        for value in parameters.values():
            if type(value) not in PLAIN_TYPES or links and id(value) in links:
                break
            if small and (type(value), value) in small:  # possible_producer_of, inline
                break
        else:
            return NOTHING_UPSTREAM
    return _walk_inputs(parameters, flow_run, wait_for, links, small)


def _walk_inputs(
    parameters: dict[str, Any],
    flow_run: FlowRun | None,
    wait_for: Any,
    links: dict[int, Any] | None,
    small: dict[tuple[type, Any], Any] | None,
) -> Upstream:
    # Apart from find_upstream's quick look: its closure would cost every call two cells.
    found = Upstream()

    def visit(value: Any, ids: set[uuid.UUID], depth: int = 0) -> None:
        # A plain value is no future: TaskFuture is an abc.ABC, and an isinstance test
        # against one is a Python call, for every value of every mapped run.
        if type(value) not in PLAIN_TYPES and isinstance(value, TaskFuture):
            found.futures.append(value)
            found.needs_resolving = True
            ids.add(value.task_run_id)
            return
        if links:
            producer = links.get(id(value))  # flow_run.producer_of, inline
            if producer is not None:
                ids.add(producer.id)
        if depth >= MAX_SEARCH_DEPTH:
            return
        if isinstance(value, BaseAnnotation):
            found.needs_resolving = True
            if not isinstance(value, (quote, Resolved)):
                visit(value.value, ids, depth + 1)
        elif isinstance(value, CONTAINERS):
            for item in value.values() if isinstance(value, dict) else value:
                visit(item, ids, depth + 1)
        elif type(value) not in PLAIN_TYPES and (fields := fields_of(value)) is not None:
            for item in fields.values():
                visit(item, ids, depth + 1)

    for name, value in parameters.items():
        ids: set[uuid.UUID] = set()
        visit(value, ids)
        if ids:
            found.edges[name] = frozenset(ids)
        elif small and (maybe := flow_run.possible_producer_of(value)) is not None:
            found.possible[name] = frozenset((maybe,))
    if wait_for:
        ids = set()
        for item in wait_for:
            visit(item, ids)
        if ids:
            found.edges["wait_for"] = frozenset(ids)
    return found


def resolve(parameters: dict[str, Any]) -> dict[str, Any]:
    """Swap every future for its value and unwrap annotations.

    Raises:
        UpstreamTaskError: a future did not complete and is not wrapped in allow_failure.
    """
    return {
        name: _resolve_value(value, tolerate_failure=False) for name, value in parameters.items()
    }


def check_wait_for(wait_for: Any) -> None:
    """Raise UpstreamTaskError if a ``wait_for`` future did not complete (allow_failure aside)."""
    for item in wait_for or ():
        _resolve_value(item, tolerate_failure=False)


def waits_for_itself(wait_for: Any, run: Any) -> bool:
    """Whether ``run``'s own future is in its ``wait_for`` (a list that grew after submit)."""
    items = wait_for if isinstance(wait_for, (list, tuple, set, frozenset)) else (wait_for,)
    return any(isinstance(item, TaskFuture) and item.task_run is run for item in items)


def _upstream_error(name: str, state: Any) -> UpstreamTaskError:
    if isinstance(state.data, UpstreamTaskError):  # it was skipped too: name the root
        root = state.data.root
        why = f"did not run, because {root}"
    else:
        root = f"upstream task run {name!r} ended {state.name} ({state.message})"
        why = f"did not complete: it ended {state.name} ({state.message})"
    error = UpstreamTaskError(
        f"Upstream task run {name!r} {why}. Wrap it in allow_failure(...) to run anyway.", root
    )
    # With the traceback of the run that failed (through a chain of skipped runs, the
    # first one's): a cell that ends on this error shows the line that raised, as its
    # last frame, after the flow's line that called the skipped task. Chaining it as a
    # cause instead would print those frames twice.
    return error.with_traceback(getattr(state, "traceback", None))


def _resolve_value(value: Any, tolerate_failure: bool, depth: int = 0) -> Any:
    if isinstance(value, TaskFuture):
        state = value.state  # (marks the future observed: its outcome was used)
        if not state.is_completed() and not tolerate_failure:
            raise _upstream_error(value.task_run.name, state)
        return result_of(state, False)
    if depth >= MAX_SEARCH_DEPTH:
        return value
    depth += 1
    if isinstance(value, BaseAnnotation):
        if isinstance(value, (quote, Resolved)):
            return value.value
        tolerate_failure = tolerate_failure or isinstance(value, allow_failure)
        return _resolve_value(value.value, tolerate_failure, depth)
    if isinstance(value, dict):
        return {k: _resolve_value(v, tolerate_failure, depth) for k, v in value.items()}
    if isinstance(value, CONTAINERS):
        items = [_resolve_value(v, tolerate_failure, depth) for v in value]
        if type(value) in (list, tuple, set, frozenset):
            return type(value)(items)
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a namedtuple
            return type(value)(*items)
        return type(value)(items)
    fields = None if type(value) in PLAIN_TYPES else fields_of(value)
    if fields is None:
        return value
    changed = {}
    for name, item in fields.items():
        resolved = _resolve_value(item, tolerate_failure, depth)
        if resolved is not item:
            changed[name] = resolved
    return with_fields(value, changed) if changed else value


class Signature:
    """A function's signature, prepared once per Task/Flow to bind and call quickly."""

    __slots__ = (
        "signature",
        "positional",
        "var_positional",
        "var_keyword",
        "by_keyword",
        "defaults",
        "_names",
        "positional_names",
        "_known",
        "_required",
        "_by_position",
    )

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.signature = inspect.signature(fn)
        params = self.signature.parameters.values()
        P = inspect.Parameter
        self.positional = [p.name for p in params if p.kind is P.POSITIONAL_ONLY]
        self.var_positional = next((p.name for p in params if p.kind is P.VAR_POSITIONAL), None)
        self.var_keyword = next((p.name for p in params if p.kind is P.VAR_KEYWORD), None)
        # Every parameter may be passed by keyword: split's (args, kwargs) is ((), parameters)
        self.by_keyword = not (self.positional or self.var_positional or self.var_keyword)
        self.defaults = {p.name: p.default for p in params if p.default is not P.empty}
        # Functions with neither *args, **kwargs nor positional-only parameters (nearly
        # all tasks) bind by a quick path: inspect's bind costs several microseconds.
        plain = all(p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY) for p in params)
        self._names = tuple(p.name for p in params) if plain else None
        # Every parameter may be given by position (no keyword-only ones): a call that
        # gives them all so binds by zip (Task.__call__ does it inline).
        by_position = all(p.kind is P.POSITIONAL_OR_KEYWORD for p in params)
        self.positional_names = self._names if by_position else None
        self._known = frozenset(self._names or ())
        self._required = frozenset(self._known - self.defaults.keys())
        self._by_position = sum(p.kind is P.POSITIONAL_OR_KEYWORD for p in params)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any], defaults: bool = True) -> dict:
        """Map call arguments to parameter names, in signature order (``TypeError`` for a
        bad call). With ``defaults=False`` (as ``map`` needs), unset defaults stay out."""
        names = self.positional_names
        if names is not None and not kwargs and len(args) == len(names):
            return dict(zip(names, args, strict=True))  # all given by position: the usual call
        names = self._names
        if names is not None and len(args) <= self._by_position and self._known.issuperset(kwargs):
            bound = dict(zip(names, args, strict=False))  # fewer args than names
            if bound.keys().isdisjoint(kwargs):
                bound.update(kwargs)
                if self._required <= bound.keys():
                    fill = self.defaults if defaults else {}
                    return {
                        n: bound[n] if n in bound else fill[n]
                        for n in names
                        if n in bound or n in fill
                    }
        # Anything else, including every mistake, goes through inspect for its messages.
        bound_args = self.signature.bind(*args, **kwargs)
        if defaults:
            bound_args.apply_defaults()
        return dict(bound_args.arguments)

    def split(self, parameters: dict[str, Any]) -> tuple[Sequence[Any], dict[str, Any]]:
        """Turn a parameters dict back into ``(args, kwargs)`` for calling the function."""
        if self.by_keyword:
            return (), parameters
        args: list[Any] = []
        kwargs = dict(parameters)
        if self.positional or self.var_positional:
            # Positional-only parameters, and everything before a used *args, must be
            # passed by position, in order.
            P = inspect.Parameter
            for name, param in self.signature.parameters.items():
                if param.kind is P.VAR_POSITIONAL:
                    args.extend(kwargs.pop(name, ()))
                    break
                if param.kind not in (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD):
                    break
                if name not in kwargs:
                    break
                args.append(kwargs.pop(name))
        if self.var_keyword:
            kwargs.update(kwargs.pop(self.var_keyword, {}))
        return args, kwargs

    def explode_var_keyword(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Lift the entries of ``**kwargs`` to top-level parameters (for ``map``)."""
        if not self.var_keyword or self.var_keyword not in parameters:
            return parameters
        exploded = dict(parameters)
        exploded.update(exploded.pop(self.var_keyword))
        return exploded

    def collapse_var_keyword(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Undo ``explode_var_keyword``: gather unknown names back under ``**kwargs``."""
        if not self.var_keyword:
            return parameters
        known = self.signature.parameters
        collapsed = {k: v for k, v in parameters.items() if k in known}
        extra = {k: v for k, v in parameters.items() if k not in known}
        collapsed[self.var_keyword] = {**collapsed.get(self.var_keyword, {}), **extra}
        return collapsed

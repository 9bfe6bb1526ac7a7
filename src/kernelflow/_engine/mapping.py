"""How ``.map()`` turns one call into many: the seed's ``TaskRunner.map`` semantics.

Iterable arguments are split element by element; non-iterables, and iterables wrapped
in ``unmapped``, go whole to every call; defaults apply per call; ``**kwargs`` entries
are mapped like named parameters; top-level futures are resolved first so their values
can be mapped over; ``allow_failure``/``quote`` wrap each element again.
"""

from __future__ import annotations

import itertools
from io import IOBase
from typing import TYPE_CHECKING, Any

from kernelflow._annotations import BaseAnnotation, allow_failure, quote, unmapped
from kernelflow._engine.inputs import PLAIN_TYPES, Resolved, find_upstream
from kernelflow.exceptions import (
    MappingError,
    MappingLengthMismatch,
    MappingMissingIterable,
    UpstreamTaskError,
)
from kernelflow.futures import PrefectFuture, TaskFuture
from kernelflow.states import State

if TYPE_CHECKING:
    import uuid

    from kernelflow._runs import FlowRun
    from kernelflow.tasks import Task

# How many items .map() reads from an iterator that has no length before it calls it
# endless; sized collections (lists, ranges, arrays) may be any length.
MAX_UNSIZED_ITEMS = 1_000_000


def top_level_dependencies(
    parameters: dict[str, Any], flow_run: FlowRun | None
) -> dict[str, frozenset[uuid.UUID]]:
    """Edges every mapped run gets from the arguments given whole to ``.map()``: futures
    (noted before they are resolved) and results an earlier run returned. A mapped run
    receives only one item of such a result, and items like small ints carry no trace of
    where they came from; the collection they were mapped over does."""
    futures = {k: v for k, v in parameters.items() if isinstance(v, TaskFuture)}
    edges = dict(find_upstream(futures, flow_run).edges) if futures else {}
    if flow_run is not None:
        for key, value in parameters.items():
            while isinstance(value, BaseAnnotation):
                value = value.value
            producer = flow_run.producer_of(value)
            if producer is not None:
                edges[key] = edges.get(key, frozenset()) | {producer}
    return edges


def mapped_calls(task: Task, parameters: dict[str, Any], flow_run: FlowRun | None) -> list[dict]:
    """The parameters of each mapped call, in order.

    Raises:
        MappingMissingIterable: no parameter is iterable.
        MappingLengthMismatch: the iterables differ in length.
    """
    parameters = {name: _resolve_top_level(value) for name, value in parameters.items()}
    parameters = task.signature.explode_var_keyword(parameters)
    iterable, static, annotated = _split(parameters)
    lengths = {key: len(values) for key, values in iterable.items()}
    if len(set(lengths.values())) > 1:
        raise MappingLengthMismatch(
            "Received iterable parameters with different lengths. Parameters for map "
            f"must all be the same length. Got lengths: {lengths}"
        )
    # Static values are searched for futures once here, not once per mapped run. Plain
    # values (numbers, strings) are left bare: no run walks them, nor must unwrap them.
    for key, value in static.items():
        if (
            key not in annotated
            and type(value) not in PLAIN_TYPES
            and not find_upstream({key: value}, flow_run).needs_resolving
        ):
            static[key] = Resolved(value)
    defaults = task.signature.defaults
    collapse = task.signature.var_keyword is not None
    names = tuple(iterable)
    calls = []
    # Each call built by C code (zip, dict) where it can: a Python call per run here was
    # a fair share of recording a trivial mapped run.
    for row in zip(*iterable.values(), strict=True):  # lengths checked above
        call = dict(zip(names, row, strict=True))
        if static:
            call.update(static)
        for key, value in defaults.items():
            call.setdefault(key, value)
        for key, annotation in annotated.items():
            call[key] = annotation.rewrap(call[key])
        calls.append(task.signature.collapse_var_keyword(call) if collapse else call)
    return calls


def _split(parameters: dict[str, Any]) -> tuple[dict[str, list], dict[str, Any], dict[str, Any]]:
    iterable: dict[str, list[Any]] = {}
    static: dict[str, Any] = {}
    annotated: dict[str, Any] = {}
    for key, value in parameters.items():
        if isinstance(value, (allow_failure, quote)):
            annotated[key] = value  # unwrapped to see if iterable, rewrapped per call
            value = value.unwrap()
        if isinstance(value, unmapped):
            static[key] = value.value
        elif iterated_by_map(value):
            iterable[key] = _items(key, value)
        else:
            static[key] = value
    if not iterable:
        raise MappingMissingIterable(
            "No iterable parameters were received. Parameters for map must include at "
            f"least one iterable. Parameters: {parameters}"
        )
    return iterable, static, annotated


def _items(key: str, value: Any) -> list[Any]:
    """The elements to map over. An iterator without a length is read up to a bound: an
    endless one (``itertools.count()``) would otherwise fill memory, in one C call that
    not even the Stop button interrupts."""
    if hasattr(value, "__len__"):
        return list(value)
    items = list(itertools.islice(value, MAX_UNSIZED_ITEMS + 1))
    if len(items) > MAX_UNSIZED_ITEMS:
        raise MappingError(
            f"Parameter {key!r} of .map() gave more than {MAX_UNSIZED_ITEMS:,} items and has "
            "no length: an endless iterator (such as itertools.count())? Map over a sized "
            "collection (a list, a range), or take a slice with itertools.islice."
        )
    return items


def _resolve_top_level(value: Any, tolerate_failure: bool = False) -> Any:
    """A top-level future (or State) becomes its value (waiting for it); annotations are kept."""
    if isinstance(value, PrefectFuture) and not isinstance(value, TaskFuture):
        return value.result()  # a future made outside kernelflow's runners: its result
    if isinstance(value, TaskFuture):
        value.wait()
        if not value.state.is_completed() and not tolerate_failure:
            raise UpstreamTaskError(
                f"Cannot map over the result of task run {value.task_run.name!r}: it ended "
                f"{value.state.name} ({value.state.message})."
            )
        return value.state.result(raise_on_failure=False)
    if isinstance(value, State):  # a run's state (return_state=True): map over its result
        if not value.is_completed() and not tolerate_failure:
            raise UpstreamTaskError(
                f"Cannot map over the result of a run that ended {value.name} ({value.message})."
            )
        return value.result(raise_on_failure=False)
    if isinstance(value, (allow_failure, unmapped)):
        tolerate_failure = tolerate_failure or isinstance(value, allow_failure)
        return value.rewrap(_resolve_top_level(value.value, tolerate_failure))
    return value  # quote(...) is passed through untouched


def iterated_by_map(value: Any) -> bool:
    """Whether ``.map()`` iterates over ``value`` (``Flow.visualize`` asks too)."""
    # Strings, bytes and files iterate, but are almost always meant as single values.
    if isinstance(value, (str, bytes, IOBase)):
        return False
    try:
        iter(value)
    except TypeError:
        return False
    return True

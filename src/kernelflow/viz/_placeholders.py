"""Placeholders: what task calls give back while ``Flow.visualize()`` traces a flow body.

No task runs during visualize, so a task call returns a ``Traced`` value instead of a
result. It carries *lineage* (the graph nodes it came from) and, if the task has a
``viz_return_value``, that stand-in value. Everything derived from it (indexing,
attribute access, method calls, arithmetic, comparisons, iteration) is a new ``Traced``
with the same lineage, so an edge survives ``rows[0]`` or ``total + 1`` on its way into
the next task. ``.submit()`` gives a ``VizFuture`` and ``.map()`` a ``VizFutureList``,
which behave like the real futures (``result``, ``wait``, ``state``, ``await``).
"""

from __future__ import annotations

import concurrent.futures as cf
import operator
import uuid
from collections.abc import Iterator
from typing import Any, NamedTuple

from kernelflow._annotations import BaseAnnotation, quote
from kernelflow._context import visualize_tracker
from kernelflow.exceptions import PlaceholderValueError
from kernelflow.states import Completed, State


class Ref(NamedTuple):
    """One graph node a value came from; ``index`` picks one run of a mapped group."""

    node: str
    index: int | None = None


class _Unknown:
    """The value of a task result with no ``viz_return_value``."""

    def __repr__(self) -> str:
        return "<unknown>"


UNKNOWN: Any = _Unknown()
_EMPTY: frozenset[Ref] = frozenset()


class Traced:
    """A stand-in for a task's result: a known stand-in value (or none) plus lineage.

    ``isinstance(traced, list)`` is true when the stand-in is a list, so flow code that
    checks types keeps working. Code that needs an unknown value (``bool``, ``len``,
    iteration, ``int``) raises ``PlaceholderValueError`` naming the task it came from.
    """

    __slots__ = ("_kf_value", "_kf_refs")

    def __init__(self, value: Any, refs: frozenset[Ref]) -> None:
        object.__setattr__(self, "_kf_value", value)
        object.__setattr__(self, "_kf_refs", refs)

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        # Lie about the class only when there is a value to stand behind the lie.
        value = object.__getattribute__(self, "_kf_value")
        return Traced if value is UNKNOWN else type(value)

    def _kf_need(self, why: str) -> Any:
        """The stand-in value, or the error that explains how to provide one."""
        if self._kf_value is UNKNOWN:
            raise PlaceholderValueError(_needs_value_message(self._kf_refs, why))
        return self._kf_value

    def __getattr__(self, name: str) -> Any:
        if name in Traced.__slots__:
            raise AttributeError(name)  # not set yet: copy and pickle make one bare first
        value = self._kf_value
        if name.startswith("_"):
            # Private and dunder lookups (IPython's _repr_*, numpy's __array__...) probe
            # for features: an unknown value has none, a known one answers for itself.
            if value is UNKNOWN:
                raise AttributeError(name)
            return getattr(value, name)
        return derive(lambda v: getattr(v, name), self)

    def __setattr__(self, name: str, new: Any) -> None:
        if name in Traced.__slots__:
            object.__setattr__(self, name, new)  # (copy.copy and deepcopy restore slots)
        elif self._kf_value is not UNKNOWN:
            setattr(self._kf_value, name, unwrap(new))

    def __call__(self, *args: Any, **kwargs: Any) -> Traced:
        return derive(lambda fn, *a, **k: fn(*a, **k), self, *args, **kwargs)

    def __getitem__(self, key: Any) -> Traced:
        return derive(operator.getitem, self, key)

    def __setitem__(self, key: Any, new: Any) -> None:
        if self._kf_value is not UNKNOWN:
            self._kf_value[unwrap(key)] = unwrap(new)

    def __iter__(self) -> Iterator[Traced]:
        refs = self._kf_refs
        for item in self._kf_need("iterating over it"):
            yield Traced(item, refs | refs_in(item))

    def __len__(self) -> int:
        return len(self._kf_need("len()"))

    def __bool__(self) -> bool:
        return bool(self._kf_need("a truth test (if/while/and/or)"))

    def __contains__(self, item: Any) -> bool:
        return unwrap(item) in self._kf_need("an 'in' test")

    def __int__(self) -> int:
        return int(self._kf_need("int()"))

    def __float__(self) -> float:
        return float(self._kf_need("float()"))

    def __index__(self) -> int:
        return operator.index(self._kf_need("use as an integer (range, slicing)"))

    def __hash__(self) -> int:
        return id(self)

    def __str__(self) -> str:
        return _describe(self) if self._kf_value is UNKNOWN else str(self._kf_value)

    def __repr__(self) -> str:
        return _describe(self) if self._kf_value is UNKNOWN else repr(self._kf_value)

    def __format__(self, spec: str) -> str:
        return _describe(self) if self._kf_value is UNKNOWN else format(self._kf_value, spec)


def _binary(op: Any, reflected: bool = False) -> Any:
    if reflected:
        return lambda self, other: derive(lambda a, b: op(b, a), self, other)
    return lambda self, other: derive(op, self, other)


# Arithmetic and comparisons give new placeholders that keep the lineage of both sides.
for _name, _op in {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "matmul": operator.matmul,
    "truediv": operator.truediv,
    "floordiv": operator.floordiv,
    "mod": operator.mod,
    "pow": operator.pow,
    "and": operator.and_,
    "or": operator.or_,
    "xor": operator.xor,
    "lshift": operator.lshift,
    "rshift": operator.rshift,
}.items():
    setattr(Traced, f"__{_name}__", _binary(_op))
    setattr(Traced, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {
    "lt": operator.lt,
    "le": operator.le,
    "gt": operator.gt,
    "ge": operator.ge,
    "eq": operator.eq,
    "ne": operator.ne,
}.items():
    setattr(Traced, f"__{_name}__", _binary(_op))
for _name, _op in {
    "neg": operator.neg,
    "pos": operator.pos,
    "abs": abs,
    "invert": operator.invert,
}.items():
    setattr(Traced, f"__{_name}__", lambda self, _op=_op: derive(_op, self))


def derive(fn: Any, *args: Any, **kwargs: Any) -> Traced:
    """``fn`` applied to the stand-in values, with the lineage of every argument.

    The result is unknown if any argument is, or if ``fn`` fails on the stand-ins
    (a stand-in is an example, not the real data, so the failure says nothing).
    """
    refs = refs_in(args) | refs_in(kwargs)
    plain_args = [unwrap(a) for a in args]
    plain_kwargs = {k: unwrap(v) for k, v in kwargs.items()}
    if any(v is UNKNOWN for v in (*plain_args, *plain_kwargs.values())):
        return Traced(UNKNOWN, refs)
    try:
        return Traced(fn(*plain_args, **plain_kwargs), refs)
    except Exception:
        return Traced(UNKNOWN, refs)


def unwrap(value: Any) -> Any:
    """A placeholder's stand-in value (or UNKNOWN); other values as they are."""
    if type(value) is Traced:
        return object.__getattribute__(value, "_kf_value")
    if isinstance(value, VizFuture):
        return unwrap(value.result())
    return value


def is_unknown(value: Any) -> bool:
    return type(value) is Traced and object.__getattribute__(value, "_kf_value") is UNKNOWN


# Walking stops here, so a huge argument cannot make visualize slow.
_MAX_WALK = 100_000


def refs_in(value: Any) -> frozenset[Ref]:
    """Every graph node ``value`` depends on, also inside lists, tuples, sets and dicts.

    Like the engine's walk for futures, it stops at ``quote(...)``.
    """
    found: set[Ref] = set()
    budget = [_MAX_WALK]

    def visit(item: Any) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            return
        kind = type(item)
        if kind is Traced:
            found.update(object.__getattribute__(item, "_kf_refs"))
        elif isinstance(item, VizFuture):
            found.add(item.ref)
        elif isinstance(item, BaseAnnotation):
            if not isinstance(item, quote):
                visit(item.value)
        elif kind is dict or isinstance(item, dict):
            for key, val in item.items():
                visit(key)
                visit(val)
        elif isinstance(item, (list, tuple, set, frozenset)):
            for val in item:
                visit(val)

    visit(value)
    return frozenset(found) if found else _EMPTY


def _describe(value: Traced) -> str:
    names = _node_names(object.__getattribute__(value, "_kf_refs"))
    return f"<placeholder for {', '.join(names) or 'a task result'}>"


def _node_names(refs: frozenset[Ref]) -> list[str]:
    tracker = visualize_tracker.get()
    describe = getattr(tracker, "describe_node", None)
    return sorted({describe(ref.node) if describe else ref.node for ref in refs})


def _needs_value_message(refs: frozenset[Ref], why: str) -> str:
    names = _node_names(refs) or ["an upstream task"]
    hints = []
    if any(not name.startswith("parameter") for name in names):
        hints.append(
            "give the task a stand-in value to use while visualizing, "
            "@task(viz_return_value=<an example result>), or keep that logic inside a task"
        )
    if any(name.startswith("parameter") for name in names):
        hints.append("pass the parameter to visualize(), as to the flow itself")
    return (
        f"Flow.visualize() runs no tasks, but the flow code needed the value of "
        f"{' and '.join(names)} for {why}. Flow code outside tasks still runs during "
        f"visualize: {'; or '.join(hints)}."
    )


class _Ready:
    """An awaitable that is already done: what an async task call gives in an async flow."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __await__(self):  # type: ignore[no-untyped-def]
        return self.value
        yield  # pragma: no cover  (makes this a generator)


class VizFuture:
    """What ``task.submit()`` returns during visualize: a finished future of a placeholder."""

    __slots__ = ("ref", "_value", "_done", "_observed", "task_run_id")
    _final = True  # (read by kernelflow.futures.wait and as_completed)

    def __init__(self, ref: Ref, value: Traced) -> None:
        self.ref = ref
        self._value = value
        self.task_run_id = uuid.uuid4()
        self._observed = True
        # A done standard future, so kernelflow.futures.wait/as_completed accept it.
        self._done: cf.Future[State] = cf.Future()
        self._done.set_result(Completed(value))

    @property
    def state(self) -> State:
        return self._done.result()

    def done(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return True

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Traced:
        return self._value

    def add_done_callback(self, fn: Any) -> None:
        fn(self)

    def cancel(self) -> bool:
        return False  # already finished, as far as the graph is concerned

    def _help(self) -> None:
        """(Nothing to help with: kernelflow.futures.wait calls this on every future.)"""

    def __await__(self):  # type: ignore[no-untyped-def]
        return _Ready(self._value).__await__()

    def __repr__(self) -> str:
        return f"VizFuture({_describe(self._value)})"


class VizFutureList(list):  # type: ignore[type-arg]
    """What ``task.map()`` returns during visualize: one VizFuture per mapped run.

    When the number of runs is unknown (mapping over a placeholder with no
    ``viz_return_value``), it holds one representative future and ``count`` is None.
    """

    def __init__(self, futures: list[VizFuture], group: str, count: int | None) -> None:
        super().__init__(futures)
        self.group = group
        self.count = count

    def wait(self, timeout: float | None = None) -> None:
        return None

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        if self.count is None:
            return Traced(UNKNOWN, frozenset({Ref(self.group)}))
        return [future.result() for future in self]


def resolve_returned(value: Any) -> Any:
    """A flow's return value as its caller sees it: futures replaced by their results."""
    if isinstance(value, VizFutureList):
        return value.result()
    if isinstance(value, VizFuture):
        return value.result()
    if type(value) is dict:
        return {k: resolve_returned(v) for k, v in value.items()}
    if type(value) in (list, tuple, set, frozenset):
        return type(value)(resolve_returned(v) for v in value)
    return value


def ready(value: Any) -> _Ready:
    return _Ready(value)

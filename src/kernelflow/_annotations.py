"""Wrappers that change how a task argument is treated: unmapped, allow_failure, quote."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A value wrapped to tell the engine how to treat it; ``unwrap()`` gives it back."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def rewrap(self, value: Any) -> BaseAnnotation[Any]:
        """The same annotation around another value (used when ``map`` splits an iterable)."""
        return type(self)(value)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.value == other.value  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self), id(self.value)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """Pass an iterable to ``Task.map`` as one static value instead of mapping over it.

    ``add.map([1, 2, 3], unmapped([10, 20]))`` calls ``add(1, [10, 20])``, ``add(2, ...)``...
    """

    __slots__ = ()

    def __getitem__(self, _index: Any) -> T:
        # Indexing gives the whole value, so code that indexes every mapped argument
        # sees the static value each time.
        return self.value


class allow_failure(BaseAnnotation[T]):
    """Run the downstream task even if this upstream future failed.

    The downstream receives the upstream's exception in place of its value.
    """

    __slots__ = ()


class quote(BaseAnnotation[T]):
    """Pass a value through untouched: futures inside it are not resolved or waited for.

    Also skips walking large arguments when looking for futures.
    """

    __slots__ = ()

    def unquote(self) -> T:
        """The value inside (Prefect's name for ``.value``)."""
        return self.value


class opaque(BaseAnnotation[T]):
    """Resolve a future passed as an argument to its value, without looking inside the
    value (Prefect's ``opaque``): States or futures held in the result reach the task
    as they are. kernelflow never looks inside a future's value, so ``opaque(future)``
    is resolved like ``future``; around any other value it walks it like an
    unannotated argument.
    """

    __slots__ = ()

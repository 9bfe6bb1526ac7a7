"""The completed runs a retry may reuse, and the checks that decide a match.

``RetryPlan`` (``retry_plan.py``) files each completed run of the original here, by where it
stands; a run of the retry takes the first one left whose inputs are the same (its very
objects, or equal ones of the same types) and whose inputs and result still hold what
they held when it ended (``unchanged``, from ``_digests``).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from kernelflow import _digests


@dataclass(slots=True)
class Reusable:
    """A completed run of the original: its name, the inputs it received, its result,
    their digests when it ended; whether a run of the retry took it."""

    name: str
    parameters: dict[str, Any] | None  # None for a run read from the history
    value: Any
    digests: tuple[dict[str, str] | None, str] | None
    input_digests: dict[str, str] | None = None  # each input's, for a run from history
    taken: bool = False


def unchanged(original: Reusable, parameters: dict[str, Any]) -> bool | None:
    """Whether the inputs the retry passes and the original's result still hold what
    they held when it ended (``_digests``): True, False, or None if not checked."""
    if original.digests is None:  # completed before digests were taken: none to check
        return None
    inputs, output = original.digests
    if inputs is None and output == _digests.UNCHANGEABLE:
        return True  # the usual for small values: nothing could change in place
    verdicts = [_digests.changed(output, original.value)]
    if inputs:
        verdicts.extend(_digests.changed(d, parameters.get(n)) for n, d in inputs.items())
    if any(verdicts):
        return False
    return None if None in verdicts else True


class Candidates:
    """The reusable runs of one task at one place, taken in the order they ran.

    Runs usually ask in that order too, so the first one left is tried first. Past a
    run that does not match it (a failed item, changed inputs) they are looked up by
    their inputs: by a dict when the inputs hash, else one by one. So a map whose
    inputs all changed costs no more per run than one whose inputs did not.
    """

    __slots__ = ("_order", "_index", "_unhashable", "_left")

    def __init__(self) -> None:
        self._order: deque[Reusable] = deque()
        self._index: dict[tuple[Any, ...], deque[Reusable]] | None = None
        self._unhashable: list[Reusable] = []
        self._left = 0

    def add(self, reusable: Reusable) -> None:
        self._order.append(reusable)
        self._left += 1

    def take(self, parameters: dict[str, Any]) -> Reusable | None:
        """The first run left whose inputs are the same as ``parameters``, taken."""
        order = self._order
        while order and order[0].taken:
            order.popleft()
        if order and _same_inputs(parameters, order[0].parameters):
            found: Reusable | None = order.popleft()
        else:
            found = self._look_up(parameters)
        if found is not None:
            found.taken = True
            self._left -= 1
        return found

    def _look_up(self, parameters: dict[str, Any]) -> Reusable | None:
        if self._index is None:
            self._index = {}
            for reusable in self._order:
                key = _inputs_key(reusable.parameters)
                if key is None:
                    self._unhashable.append(reusable)
                else:
                    self._index.setdefault(key, deque()).append(reusable)
        key = _inputs_key(parameters)
        if key is not None:
            try:
                same = self._index.get(key)
            except Exception:  # an input whose == raises: compare them one by one
                same = None
            while same and same[0].taken:
                same.popleft()
            if same:
                return same.popleft()
        for index, reusable in enumerate(self._unhashable):
            if not reusable.taken and _same_inputs(parameters, reusable.parameters):
                return self._unhashable.pop(index)
        return None

    def __len__(self) -> int:
        return self._left


def _inputs_key(parameters: dict[str, Any]) -> tuple[Any, ...] | None:
    # Equal keys are equal inputs in _same's sense: each value with its exact type.
    values = tuple(parameters.values())
    key = (tuple(parameters), tuple(map(type, values)), values)
    try:
        hash(key)
    except Exception:
        return None
    return key


def _same_inputs(new: dict[str, Any], old: dict[str, Any]) -> bool:
    if len(new) != len(old):
        return False
    for name, value in new.items():
        if name not in old or not _same(value, old[name]):
            return False
    return True


def _same(new: Any, old: Any) -> bool:
    if new is old:
        return True
    if type(new) is not type(old):
        return False
    try:
        return bool(new == old)
    except Exception:  # e.g. arrays, whose == is elementwise: only identity counts
        return False

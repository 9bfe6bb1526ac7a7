"""Retry from the run history: what a retry of an earlier session's run can reuse.

An earlier session's run left no values in this process, only records (``PastFlowRun``)
that link its completed task runs to the result store, where the results of tasks
with ``persist_result=True`` or a cache policy are (or of every task of a flow with
``persist_result=True``).
``retry_plan.RetryPlan`` indexes them as ``StoredCandidates``, matched by the digests of
their inputs (``_digests``), and reads each ``StoredValue`` when a run of the retry
takes it. Its flow is found by name among
the flows defined now (``defined_flow``).
"""

from __future__ import annotations

from collections import deque
from typing import Any

from kernelflow import _digests
from kernelflow._logging import run_logger

MISSING = object()


class StoredValue:
    """A result in the result store, linked to a past run's record by its key."""

    __slots__ = ("root", "key", "serializer")

    def __init__(self, root: str, key: str, serializer: str | None) -> None:
        self.root, self.key, self.serializer = root, key, serializer

    def load(self) -> Any:
        """The value, or MISSING (said in a log line) when the entry is gone."""
        from pathlib import Path

        from kernelflow._results.serializers import get_serializer
        from kernelflow._results.store import store_for

        try:
            loaded = store_for(Path(self.root)).load(self.key, get_serializer(self.serializer))
        except Exception as error:
            loaded = None
            detail = repr(error)
        else:
            detail = loaded.status
        if loaded is not None and loaded.status == "hit":
            return loaded.value
        run_logger().info("Not reused: the result store entry %s is %s.", self.key, detail)
        return MISSING


def not_reusable(run: Any) -> str | None:
    if run.stored is None:
        return "its result was not persisted (give its task persist_result=True or a cache policy)"
    if not run.input_digests or _digests.NOT_CHECKED in run.input_digests.values():
        return "its inputs were too large to digest, so they cannot be compared"
    return None


class StoredCandidates:
    """Reusable runs of one task at one place, read from the history: matched by the
    digests of their inputs (the values themselves stayed in the other process)."""

    __slots__ = ("_by_inputs", "_left")

    def __init__(self) -> None:
        self._by_inputs: dict[tuple[tuple[str, str], ...], deque[Any]] = {}
        self._left = 0

    def add(self, reusable: Any) -> None:
        key = tuple(sorted((reusable.input_digests or {}).items()))
        self._by_inputs.setdefault(key, deque()).append(reusable)
        self._left += 1

    def take(self, parameters: dict[str, Any]) -> Any:
        key = tuple(sorted((n, _digests.content_digest(v)) for n, v in parameters.items()))
        same = self._by_inputs.get(key)
        if not same:
            return None
        found = same.popleft()
        found.taken = True
        self._left -= 1
        return found

    def __len__(self) -> int:
        return self._left


def defined_flow(name: str) -> Any:
    """The flow named ``name`` defined in this session: the one in ``__main__`` (a
    notebook's namespace) if there is one, else the newest found in memory."""
    import gc
    import sys

    main = getattr(sys.modules.get("__main__"), "__dict__", {})
    found = [obj for obj in list(main.values()) if _is_flow(obj) and obj.name == name]
    if not found:  # defined elsewhere (a module, a test): any live Flow object
        found = [obj for obj in gc.get_objects() if _is_flow(obj) and obj.name == name]
    if not found:
        raise LookupError(
            f"No flow named {name!r} is defined in this session: run the cell (or import "
            "the module) that defines it, then retry again."
        )
    return found[-1]


def _is_flow(obj: Any) -> bool:
    # By class name, not isinstance: the engine does not import the definitions layer.
    return any(
        c.__name__ == "Flow" and c.__module__ == "kernelflow.flows" for c in type(obj).__mro__
    )

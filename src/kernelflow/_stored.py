"""``StoredResult``: where a run's value is, when its record keeps none in memory.

A task with ``cache_result_in_memory=False`` whose result went to the result store
ends in a state holding one of these instead of the value; ``State.result()`` reads
the value from the store each time it is asked.
"""

from __future__ import annotations

from typing import Any

from kernelflow.exceptions import MissingResult


class StoredResult:
    """Where a result is, for a run whose task keeps none in memory
    (``cache_result_in_memory=False``): ``State.result()`` reads it from the store."""

    __slots__ = ("store", "key", "serializer")

    def __init__(self, store: Any, key: str, serializer: Any) -> None:
        self.store = store
        self.key = key
        self.serializer = serializer

    def load(self) -> Any:
        """The stored value.

        Raises:
            MissingResult: the entry is gone (deleted, or expired by cache_expiration).
        """
        from kernelflow._results.serializers import get_serializer

        loaded = self.store.load(self.key, get_serializer(self.serializer))
        if loaded.status != "hit":
            raise MissingResult(
                f"The result was kept only in the result store ({self.store.path(self.key)}), "
                f"and the entry is {loaded.status}; run the task again, or set "
                "cache_result_in_memory=True to keep results in memory as well."
            )
        return loaded.value

    def __repr__(self) -> str:
        return f"<stored result {self.key[:12]}>"

"""Listing and removing cache entries (``kernelflow.cache``)."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._results.store import store_for


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached result on disk."""

    task: str
    key: str
    size: int  # bytes of the serialized result
    created: datetime.datetime
    expires: datetime.datetime | None
    path: Path


def _time(value: float | None) -> datetime.datetime | None:
    return None if value is None else datetime.datetime.fromtimestamp(value)


def entries(storage: str | os.PathLike[str] | None = None) -> list[CacheEntry]:
    """Every cache entry in the default store (or ``storage``), oldest first."""
    store = store_for(Path(storage).expanduser() if storage is not None else None)
    found = [
        CacheEntry(
            meta.get("task", "?"),
            meta.get("key", path.name),
            int(meta.get("size", 0)),
            _time(meta.get("created", 0.0)),
            _time(meta.get("expires")),
            path,
        )
        for path, meta in store.scan()
    ]
    return sorted(found, key=lambda entry: entry.created)


def clear(task: Any = None, storage: str | os.PathLike[str] | None = None) -> int:
    """Remove the entries of ``task`` (a Task or a task name), or all; returns how many."""
    name = getattr(task, "name", task)
    store = store_for(Path(storage).expanduser() if storage is not None else None)
    removed = 0
    for path, meta in list(store.scan()):
        if name is None or meta.get("task") == name:
            try:
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
    store.forget()
    return removed

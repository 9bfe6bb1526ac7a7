"""Result records by key (Prefect's ``prefect.results``): ``ResultStore`` and ``ResultRecord``.

What a keyed transaction commits to, and reads back::

    from kernelflow.results import ResultStore
    from kernelflow.transactions import transaction

    with transaction(key="report-2026-11", store=ResultStore()) as txn:
        if not txn.is_committed():          # True if a record is there already
            txn.stage(build_report())       # written when the block commits
    txn.read().result

A ``ResultStore`` keeps one record per key in kernelflow's result store (a file per key,
written atomically, private to the user: ``kernelflow._results.store``), in
``$KERNELFLOW_HOME/results`` or in ``result_storage`` (a folder, or a
``LocalFileSystem``). ``transaction(key=...)`` without a store uses ``get_result_store()``,
as Prefect does. SERIALIZABLE transactions need a ``lock_manager``.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from kernelflow._results.serializers import get_serializer, serializer_name
from kernelflow._results.store import store_for
from kernelflow.exceptions import MissingResult

R = TypeVar("R")

__all__ = ["ResultRecord", "ResultRecordMetadata", "ResultStore", "get_result_store"]


@dataclass(frozen=True)
class ResultRecordMetadata:
    """Where a record is and how it was written: enough to read it again, so a State may
    hold it as its data (``Failed(data=record.metadata)``) and give the stored value.
    ``storage_block_id`` is Prefect's block document id: kernelflow keeps no blocks, so
    it is None."""

    storage_key: str
    expiration: datetime.datetime | None = None
    serializer: str = "cloudpickle"
    storage_block_id: None = None
    result_storage: str | None = None  # the store's folder; None for the default one

    def load(self) -> Any:
        """The value stored under ``storage_key``.

        Raises:
            MissingResult: it is not there (any more).
        """
        store = ResultStore(result_storage=self.result_storage, serializer=self.serializer)
        return store.read(self.storage_key).result


@dataclass(frozen=True)
class ResultRecord(Generic[R]):
    """A value kept under a key: ``result`` and its ``metadata``."""

    result: R
    metadata: ResultRecordMetadata


class ResultStore:
    """Records by key in a folder: ``write``, ``read``, ``exists`` (and their async
    forms ``awrite``, ``aread``, ``aexists``), plus the locks of SERIALIZABLE
    transactions when given a ``lock_manager``.

    Args:
        result_storage: The folder (a path or a ``LocalFileSystem``); None for
            ``$KERNELFLOW_HOME/results``.
        metadata_storage: Prefect's separate place for record metadata; kernelflow keeps
            a record's metadata in its file, so only None is taken.
        lock_manager: E.g. ``MemoryLockManager()``; needed for SERIALIZABLE.
        serializer: "cloudpickle" (default), "pickle", "json" or a serializer object.
    """

    def __init__(
        self,
        result_storage: Any = None,
        metadata_storage: Any = None,
        lock_manager: Any = None,
        serializer: Any = "cloudpickle",
    ) -> None:
        if metadata_storage is not None:
            raise ValueError(
                f"ResultStore(metadata_storage={metadata_storage!r}) is not supported: "
                "kernelflow keeps a record's metadata in the record's own file. Leave "
                "metadata_storage out."
            )
        self.result_storage = result_storage
        self.metadata_storage = None
        self.lock_manager = lock_manager
        self.serializer = get_serializer(serializer)  # a name (as in metadata) or object
        self._folder = _folder(result_storage)

    # --- records --------------------------------------------------------------------

    def write(
        self,
        obj: Any,
        key: str | None = None,
        expiration: datetime.datetime | None = None,
        holder: str | None = None,
    ) -> None:
        """Keep ``obj`` under ``key`` (replacing what was there), until ``expiration``.

        Raises:
            RuntimeError: another holder has the key locked.
        """
        if key is None:
            raise ValueError("ResultStore.write needs a key: write(obj, key='...').")
        self._check_holder(key, holder)
        expires = expiration.timestamp() if expiration is not None else None
        meta = {"created": time.time(), "expires": expires, "task": "(result record)"}
        self._store().save(key, obj, self.serializer, meta)

    def read(self, key: str, holder: str | None = None) -> ResultRecord[Any]:
        """The record under ``key``.

        Raises:
            MissingResult: nothing (or only an expired or unreadable record) is there.
        """
        loaded = self._store().load(key, self.serializer)
        if loaded.status != "hit":
            detail = f" ({loaded.detail})" if loaded.detail else ""
            raise MissingResult(f"No result record under key {key!r}: {loaded.status}{detail}.")
        return ResultRecord(loaded.value, self._metadata(key, None))

    def create_result_record(
        self, obj: Any, key: str | None = None, expiration: datetime.datetime | None = None
    ) -> ResultRecord[Any]:
        """A record of ``obj``, not yet written (``persist_result_record`` writes it);
        under a new random key unless given one."""
        return ResultRecord(obj, self._metadata(key or uuid.uuid4().hex, expiration))

    def persist_result_record(
        self, result_record: ResultRecord[Any], holder: str | None = None
    ) -> None:
        """Write a record made by ``create_result_record``."""
        meta = result_record.metadata
        self.write(result_record.result, meta.storage_key, meta.expiration, holder)

    async def apersist_result_record(
        self, result_record: ResultRecord[Any], holder: str | None = None
    ) -> None:
        await asyncio.to_thread(self.persist_result_record, result_record, holder)

    def _metadata(self, key: str, expiration: datetime.datetime | None) -> ResultRecordMetadata:
        folder = str(self._folder) if self._folder is not None else None
        return ResultRecordMetadata(key, expiration, serializer_name(self.serializer), None, folder)

    def exists(self, key: str) -> bool:
        """Whether a readable, unexpired record is under ``key``."""
        return self._store().load(key, self.serializer).status == "hit"

    async def awrite(self, obj: Any, key: str | None = None, **options: Any) -> None:
        await asyncio.to_thread(self.write, obj, key, **options)

    async def aread(self, key: str, holder: str | None = None) -> ResultRecord[Any]:
        return await asyncio.to_thread(self.read, key, holder)

    async def aexists(self, key: str) -> bool:
        return await asyncio.to_thread(self.exists, key)

    # --- locks ----------------------------------------------------------------------

    def supports_isolation_level(self, level: Any) -> bool:
        """READ_COMMITTED always; SERIALIZABLE with a lock manager."""
        name = getattr(level, "value", level)
        return name == "READ_COMMITTED" or (
            name == "SERIALIZABLE" and self.lock_manager is not None
        )

    def acquire_lock(
        self, key: str, holder: str | None = None, timeout: float | None = None
    ) -> bool:
        return self._locks().acquire_lock(key, holder or _holder(), acquire_timeout=timeout)

    async def aacquire_lock(
        self, key: str, holder: str | None = None, timeout: float | None = None
    ) -> bool:
        manager = self._locks()
        holder = holder or _holder()
        if hasattr(manager, "aacquire_lock"):
            return await manager.aacquire_lock(key, holder, acquire_timeout=timeout)
        return await asyncio.to_thread(manager.acquire_lock, key, holder, timeout)

    def release_lock(self, key: str, holder: str | None = None) -> None:
        self._locks().release_lock(key, holder or _holder())

    def is_locked(self, key: str) -> bool:
        return self.lock_manager is not None and self.lock_manager.is_locked(key)

    def is_lock_holder(self, key: str, holder: str | None = None) -> bool:
        return self.lock_manager is not None and self.lock_manager.is_lock_holder(
            key, holder or _holder()
        )

    def _locks(self) -> Any:
        if self.lock_manager is None:
            raise ValueError(
                "This ResultStore has no lock manager: give it one, e.g. "
                "ResultStore(lock_manager=MemoryLockManager())."
            )
        return self.lock_manager

    def _check_holder(self, key: str, holder: str | None) -> None:
        manager = self.lock_manager
        if manager is not None and manager.is_locked(key):
            if not manager.is_lock_holder(key, holder or _holder()):
                raise RuntimeError(
                    f"Cannot write to result record with key {key!r}: it is locked by "
                    "another holder."
                )

    def _store(self) -> Any:
        store = store_for(self._folder)
        store.prepare()
        return store

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ResultStore):
            return NotImplemented
        return (self._folder, self.lock_manager, self.serializer) == (
            other._folder,
            other.lock_manager,
            other.serializer,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = self._folder or "$KERNELFLOW_HOME/results"
        return f"ResultStore(result_storage={str(where)!r})"


def get_result_store() -> ResultStore:
    """The result store a keyed transaction uses when given none: kernelflow's default."""
    return ResultStore()


def _folder(result_storage: Any) -> Path | None:
    if result_storage is None:
        return None
    base = getattr(result_storage, "basepath", result_storage)  # a LocalFileSystem
    if not isinstance(base, (str, os.PathLike)):
        raise TypeError(
            f"ResultStore(result_storage={result_storage!r}) is not valid: give a folder "
            "(a path) or a LocalFileSystem."
        )
    return Path(base).expanduser()


def _holder() -> str:
    """Prefect's default holder: this thread (and asyncio task) of this process."""
    import threading

    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return f"{os.getpid()}:{threading.get_ident()}:{id(task) if task else ''}"

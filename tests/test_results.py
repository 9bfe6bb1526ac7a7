"""``kernelflow.results``: records by key (``ResultStore``), and keyed transactions that
commit to them, as Prefect's ``transaction(key=...)`` does."""

from __future__ import annotations

import asyncio
import datetime
import threading

import pytest

from kernelflow.exceptions import MissingResult
from kernelflow.filesystems import LocalFileSystem
from kernelflow.locking.memory import MemoryLockManager
from kernelflow.results import ResultRecord, ResultStore, get_result_store
from kernelflow.transactions import IsolationLevel, atransaction, transaction


def test_a_record_is_written_read_and_found_by_key(tmp_path):
    store = ResultStore(result_storage=tmp_path)
    assert not store.exists("k")
    with pytest.raises(MissingResult, match="'k'"):
        store.read("k")
    store.write({"rows": 3}, key="k")
    record = store.read("k")
    assert isinstance(record, ResultRecord) and record.result == {"rows": 3}
    assert record.metadata.storage_key == "k" and store.exists("k")
    assert (tmp_path / "k").exists()  # a file per key in the folder given
    assert ResultStore(result_storage=LocalFileSystem(basepath=tmp_path)).read("k") == record


def test_an_expired_record_is_not_there(tmp_path):
    store = ResultStore(result_storage=tmp_path)
    past = datetime.datetime.now() - datetime.timedelta(seconds=1)
    store.write("old", key="gone", expiration=past)
    assert not store.exists("gone")


def test_options_kernelflow_cannot_honour_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="metadata_storage"):
        ResultStore(metadata_storage=tmp_path)
    with pytest.raises(TypeError, match="give a folder"):
        ResultStore(result_storage=42)
    with pytest.raises(ValueError, match="needs a key"):
        ResultStore(result_storage=tmp_path).write("x")
    assert not ResultStore().supports_isolation_level(IsolationLevel.SERIALIZABLE)
    assert ResultStore(lock_manager=MemoryLockManager()).supports_isolation_level(
        IsolationLevel.SERIALIZABLE
    )


def test_a_keyed_transaction_commits_a_record_in_the_default_store_once():
    ran = []
    for _ in range(2):
        with transaction(key="daily-report") as txn:
            assert isinstance(txn.store, ResultStore)
            if not txn.is_committed():
                ran.append("built")
                txn.stage({"total": 10})
    assert ran == ["built"]  # the second block found the record
    assert txn.read().result == {"total": 10}
    assert get_result_store().read("daily-report").result == {"total": 10}


def test_an_async_keyed_transaction_reads_its_record_awaited():
    async def main():
        async with atransaction(key="async-report") as txn:
            txn.stage([1, 2])
        return await txn.read()

    assert asyncio.run(main()).result == [1, 2]


def test_serializable_transactions_on_one_key_take_turns(tmp_path):
    store = ResultStore(result_storage=tmp_path, lock_manager=MemoryLockManager())
    first_in = threading.Event()
    release = threading.Event()

    def winner():
        with transaction(key="k", store=store, isolation_level="SERIALIZABLE") as txn:
            first_in.set()
            release.wait(5)
            txn.stage({"by": "winner"})

    thread = threading.Thread(target=winner)
    thread.start()
    first_in.wait(5)
    threading.Timer(0.1, release.set).start()
    # waits for the lock, then finds the winner's record: committed, writes nothing
    with transaction(key="k", store=store, isolation_level="SERIALIZABLE") as txn:
        assert txn.is_committed()
        txn.stage({"by": "loser"})
    thread.join()
    assert store.read("k").result == {"by": "winner"}
    assert not store.is_locked("k")


def test_a_state_holding_a_records_metadata_gives_the_stored_exception(tmp_path):
    from kernelflow.states import Failed, get_state_exception, raise_state_exception

    store = ResultStore(result_storage=tmp_path)
    record = store.create_result_record(ValueError("persisted error"))
    assert not store.exists(record.metadata.storage_key)  # made, not yet written
    store.persist_result_record(record)
    state = Failed(data=record.metadata)
    error = get_state_exception(state)
    assert isinstance(error, ValueError) and str(error) == "persisted error"
    with pytest.raises(ValueError, match="persisted error"):
        raise_state_exception(state)
    assert asyncio.run(_persisted_async(store)) == "kept"


async def _persisted_async(store):
    record = store.create_result_record("kept", key="async-record")
    await store.apersist_result_record(record)
    return record.metadata.load()

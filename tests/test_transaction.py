"""The Transaction object (``kernelflow._transaction``): Prefect 3's states, nesting,
``stage()`` with hooks, keyed records in a store, and the async form. Task runs inside
transactions are in ``test_transactions.py``."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kernelflow.exceptions import ConfigurationError
from kernelflow.transactions import (
    AsyncTransaction,
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    atransaction,
    get_transaction,
    transaction,
)


class DictStore:
    """A store with Prefect's result-store methods, keeping records in a dict; locks
    are real, so SERIALIZABLE is supported."""

    def __init__(self):
        self.records, self.calls, self.locks = {}, [], {}

    def exists(self, key):
        return key in self.records

    def read(self, key, holder=None):
        return self.records.get(key)

    def write(self, key, obj, holder=None):
        self.calls.append(("write", key, obj))
        self.records[key] = obj

    def supports_isolation_level(self, level):
        return True

    def acquire_lock(self, key, holder=None):
        self.calls.append(("lock", key))
        self.locks.setdefault(key, threading.Lock()).acquire()

    def release_lock(self, key, holder=None):
        self.calls.append(("unlock", key))
        self.locks[key].release()


def test_a_transaction_is_pending_then_active_then_committed_or_rolled_back():
    txn = Transaction()
    assert txn.is_pending() and txn.store is None and txn.commit_mode is None
    with txn:
        assert txn.is_active() and get_transaction() is txn
        assert txn.commit_mode is CommitMode.LAZY  # decided on entry
    assert txn.is_committed() and get_transaction() is None

    txn = Transaction()
    with pytest.raises(ValueError, match="boom"):
        with txn:
            raise ValueError("boom")
    assert txn.is_rolled_back() and get_transaction() is None


def test_states_match_their_questions_and_two_fresh_transactions_are_equal():
    for state in TransactionState:
        txn = Transaction(state=state)
        assert [txn.is_pending(), txn.is_active(), txn.is_staged()] == [
            state.name == name for name in ("PENDING", "ACTIVE", "STAGED")
        ]
        assert txn.is_committed() == (state is TransactionState.COMMITTED)
        assert txn.is_rolled_back() == (state is TransactionState.ROLLED_BACK)
    assert Transaction() == Transaction() and Transaction() != Transaction(key="k")
    assert TransactionState.COMMITTED == "COMMITTED"


def test_a_transaction_cannot_be_entered_twice_at_once():
    txn = Transaction()
    with txn:
        with pytest.raises(RuntimeError, match="already entered"):
            txn.__enter__()


def test_nested_ones_wait_for_their_parent_and_know_it():
    with Transaction(key="outer") as outer:
        with Transaction(key="inner") as inner:
            assert inner.get_parent() is outer and outer.get_parent() is None
        assert not inner.is_committed() and outer.children == [inner]
    assert outer.is_committed() and inner.is_committed()

    with Transaction(commit_mode=CommitMode.EAGER) as eager:
        with Transaction() as inner:  # takes its parent's mode
            pass
        assert inner.is_committed() and not eager.is_committed()
    assert eager.is_committed()


def test_a_child_that_ends_rolled_back_rolls_its_parent_back():
    undone = []
    with Transaction(key="outer") as outer:
        with Transaction(key="first") as first:
            first.stage("x", on_rollback_hooks=[lambda txn: undone.append(txn.get_parent())])
        with Transaction(key="second") as second:
            second.rollback()
        assert outer.is_rolled_back()
    assert undone == [outer] and first.is_rolled_back()


def test_commit_mode_off_rolls_back_unless_committed():
    with Transaction(commit_mode=CommitMode.OFF) as txn:
        pass
    assert txn.is_rolled_back()
    with Transaction(commit_mode="OFF") as txn:
        assert txn.commit() is True
    assert txn.is_committed() and txn.commit() is False


def test_an_error_committing_a_child_rolls_the_parent_back():
    class Broken(Transaction):
        def commit(self):
            raise ValueError("cannot commit")

    with Transaction() as txn:
        txn.add_child(Broken())
    assert txn.is_rolled_back() and txn.children[0].is_rolled_back()


def test_staged_hooks_run_with_the_transaction_sync_or_async():
    log = []

    async def async_hook(txn):
        await asyncio.sleep(0)
        log.append(("async", txn.key))

    with transaction(key="ok") as txn:
        txn.stage("value", on_commit_hooks=[lambda t: log.append(("sync", t.key)), async_hook])
        assert txn.is_staged()
    assert log == [("sync", "ok"), ("async", "ok")]

    log.clear()
    with pytest.raises(RuntimeError):
        with transaction(key="bad") as txn:
            txn.stage("v", on_rollback_hooks=[lambda t: log.append("first"), async_hook])
            txn.stage("w", on_rollback_hooks=[lambda t: log.append("second")])
            raise RuntimeError("undo")
    assert log == ["second", ("async", "bad"), "first"]  # newest first


def test_values_set_in_a_parent_after_the_child_opened_are_visible_as_copies():
    parent, child = Transaction(), Transaction()
    parent.__enter__()
    child.__enter__()
    try:
        parent.set("list", [1, 2])
        child.get("list").append(3)
        assert child.get("list") == [1, 2]
        child.set("list", [1, 2, 3])
        assert parent.get("list") == [1, 2] and child.get("list") == [1, 2, 3]
        with pytest.raises(ValueError, match="nothing"):
            child.get("nothing")
    finally:
        child.__exit__(None, None, None)
        parent.__exit__(None, None, None)


def test_a_keyed_transaction_with_a_store_writes_its_staged_value_once():
    store = DictStore()
    with transaction(key="report", store=store) as txn:
        assert txn.is_active()
        txn.stage({"rows": 3})
    assert store.records == {"report": {"rows": 3}} and txn.read() == {"rows": 3}

    with transaction(key="report", store=store) as again:
        assert again.is_committed()  # found on entry: nothing to do
        again.stage({"rows": 4})
    assert store.records == {"report": {"rows": 3}}

    with transaction(key="report", store=store, overwrite=True) as forced:
        assert forced.is_active()
        forced.stage({"rows": 5})
    assert store.records["report"] == {"rows": 5}

    with transaction(key="dry", store=store, write_on_commit=False) as dry:
        dry.stage("nothing")
    assert "dry" not in store.records and dry.is_committed()


def test_serializable_holds_the_stores_lock_and_needs_a_store_that_supports_it():
    store = DictStore()
    with transaction(key="k", store=store, isolation_level=IsolationLevel.SERIALIZABLE) as txn:
        with transaction() as inner:
            assert inner.isolation_level is IsolationLevel.SERIALIZABLE  # inherited
        txn.stage(1)
    assert store.calls == [("lock", "k"), ("write", "k", 1), ("unlock", "k")]

    class NoLocks(DictStore):
        def supports_isolation_level(self, level):
            return level is IsolationLevel.READ_COMMITTED

    with pytest.raises(ConfigurationError, match="SERIALIZABLE is not supported"):
        with transaction(key="k", store=NoLocks(), isolation_level="SERIALIZABLE"):
            pass


def test_async_transactions_commit_and_roll_back_awaited():
    log = []

    async def main():
        async with atransaction(key="outer") as outer:
            assert isinstance(outer, AsyncTransaction) and get_transaction() is outer
            async with AsyncTransaction(key="inner") as inner:
                inner.stage("x", on_commit_hooks=[lambda t: log.append(t.key)])
            assert not inner.is_committed()
        async with AsyncTransaction() as rolled:
            await rolled.rollback()
        with pytest.raises(NotImplementedError, match="async with"):
            with AsyncTransaction():
                pass
        return outer, inner, rolled

    outer, inner, rolled = asyncio.run(main())
    assert outer.is_committed() and inner.is_committed() and log == ["inner"]
    assert rolled.is_rolled_back()

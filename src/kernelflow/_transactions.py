"""Transactions: the task runs completed inside one commit together or roll back together.

    with kernelflow.transaction() as txn:     # async with, in an async flow
        path = write_file(...)      # completed: on_rollback hooks will undo it if...
        load_table(path)            # ...this raises: rollback runs in reverse order

A run of a task that has ``on_commit`` or ``on_rollback`` hooks gets a transaction of its
own, nested in the one it was started in: ``current_transaction()`` in the task body
returns it, so ``txn.set("path", ...)`` there is what the run's own hooks read with
``txn.get("path")`` (values of enclosing transactions are visible too). A task without
such hooks gets none (nothing would read it, and runs stay cheap): in its body
``current_transaction()`` is the enclosing transaction, or None.

A task run that completes inside a transaction is held by it: its ``on_commit`` hooks
(and work the result store defers, such as writing its cache record) run when the
outermost transaction commits. If the block raises, or a task run started in it failed,
the transaction rolls back: the ``on_rollback(txn)`` hooks of the runs that completed in
it run, newest first, and nothing deferred is done. A run outside any transaction
commits as soon as it completes. A cached run did no work, so it has nothing to commit
or undo: its hooks do not run. The object itself, its states and nesting rules are
Prefect's (``_transaction``).

The transaction a run belongs to is taken when the run is created
(``TaskRun.transaction``), so runs on the process and Dask runners, whose lifecycles
are stepped from other threads, join the right one. There the body runs in a worker
process with a stand-in transaction: the (picklable) values it sets come back to the
run's own transaction before its hooks run, but values set in enclosing transactions
are not visible to it.

Hook errors never change a run's state; each is logged against its task run, kept in
``txn.hook_errors``, and reported once more where the outermost transaction ends: as a
note on the exception that rolled it back, else as a ``TransactionHookWarning``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from typing import Any

from kernelflow._transaction import (
    BaseTransaction,
    CommitMode,
    IsolationLevel,
    TransactionState,
    current,
)
from kernelflow._transaction_forms import AsyncTransaction, Transaction

_current = current  # the engine binds a run's own transaction here


def _opener(form: type[Transaction], name: str, doc: str) -> Callable[..., Transaction]:
    """``transaction()`` or ``atransaction()``: Prefect's signature, written once."""

    def open_transaction(
        key: str | None = None,
        store: Any = None,
        commit_mode: CommitMode | str | None = None,
        isolation_level: IsolationLevel | str | None = None,
        overwrite: bool = False,
        write_on_commit: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
    ) -> Transaction:
        options = {
            "store": store,
            "commit_mode": commit_mode,
            "isolation_level": isolation_level,
            "overwrite": overwrite,
            "write_on_commit": write_on_commit,
            "logger": logger,
        }
        return form(key, **_options(key, options))

    open_transaction.__name__ = open_transaction.__qualname__ = name
    open_transaction.__doc__ = doc
    return open_transaction


transaction = _opener(
    Transaction,
    "transaction",
    """Group task runs: they commit together, or roll back together if the block raises
    or one of them fails. Transactions nest; a nested one commits with its parent.

    ``with transaction() as txn:`` in sync code; ``async with transaction() as txn:`` in
    an async flow, where the block's submitted async runs are awaited, not waited for
    (``atransaction()`` gives Prefect's ``AsyncTransaction``).

    Args:
        key: The key of the transaction's record in ``store`` (and its name in messages).
        store: A ``kernelflow.results.ResultStore`` (or an object with its methods)
            where the key's record is kept: a record already there makes the
            transaction committed on entry (unless ``overwrite``), and the commit
            writes the ``stage()``d value there. With a key and no store, the default
            store (``get_result_store()``), as in Prefect; without a key, no record.
        commit_mode: ``CommitMode.LAZY`` (default), ``EAGER`` or ``OFF`` (see CommitMode).
        isolation_level: ``READ_COMMITTED`` (default, or the parent's) or
            ``SERIALIZABLE`` (see IsolationLevel).
        overwrite: Ignore a record already in the store under the key.
        write_on_commit: False keeps the cache entries of the block's runs (and a staged
            value) from being written when it commits (their commit hooks still run).
        logger: Where the transaction logs (default: the "kernelflow.transactions" logger).
    """,
)

atransaction = _opener(
    AsyncTransaction,
    "atransaction",
    """``transaction()`` for ``async with``: an ``AsyncTransaction``, whose ``commit()``,
    ``rollback()`` and ``read()`` are awaited (Prefect's ``atransaction``).""",
)


def _options(key: str | None, given: dict[str, Any]) -> dict[str, Any]:
    if key and given["store"] is None:  # Prefect's default: a keyed record
        from kernelflow.results import get_result_store

        given = {**given, "store": get_result_store()}
    for name, kind in (("commit_mode", CommitMode), ("isolation_level", IsolationLevel)):
        value = given[name]
        if value is not None and value not in {member.value for member in kind}:
            raise _option_error(name, value, kind)
    return given


def _option_error(name: str, value: Any, kind: type[enum.Enum]) -> Exception:
    from kernelflow.exceptions import InvalidOptionError

    choices = ", ".join(member.name for member in kind)
    return InvalidOptionError(f"{name}={value!r} is not valid: {name} must be one of {choices}.")


def current_transaction() -> BaseTransaction | None:
    """The transaction the calling code is in: inside a task with commit or rollback
    hooks, that run's own; else the innermost ``with transaction()``; else None."""
    return _current.get()


# --- the engine's calls (task_engine.py) ---------------------------------------------


def run_transaction(task: Any, run: Any) -> Transaction:
    """A new transaction of the run's own, nested in the one it was started in. Made
    before the first attempt, and only for tasks with commit or rollback hooks."""
    own = Transaction(run.name, parent=run.transaction, task_run=run, isolation_level=None)
    own.state = TransactionState.ACTIVE
    if own.commit_mode is None:
        own.commit_mode = CommitMode.LAZY
    run.transaction = own
    return own


def enclosing(run: Any) -> BaseTransaction | None:
    """The transaction the run was started in (where its cache record is deferred)."""
    txn = run.transaction
    if txn is not None and txn.task_run is run:
        return txn.parent
    return txn


def task_completed(task: Any, run: Any) -> None:
    """The engine's call when a task run completes: its own transaction ends as a block
    does (committed for good, or left to the enclosing one). A cached run never made
    one: nothing to do."""
    txn = run.transaction
    if txn is None:
        return
    run.transaction = None  # the record outlives the run; the transaction need not
    if txn.task_run is run:
        txn.record_completed(task)
        if txn.parent is None or txn.commit_mode is CommitMode.EAGER:
            txn.commit()
        if txn.parent is not None:
            txn.parent.add_child(txn)
        txn.report_hook_errors()


def task_failed(run: Any) -> None:
    txn = run.transaction
    if txn is None:
        return
    run.transaction = None
    txn.record_failed(run)  # the enclosing ones roll back when their blocks end
    if txn.task_run is run:
        txn.rollback()  # undoes runs that completed inside its body, if any
        txn.report_hook_errors()

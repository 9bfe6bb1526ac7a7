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

A task run that completes inside a transaction is *staged*: its ``on_commit`` hooks (and
work the result store stages, such as writing its cache record) run when the outermost
transaction commits. If the block raises, or a task run started in it failed, the
transaction rolls back: the ``on_rollback(txn)`` hooks of the runs that completed in it
run, newest first, and nothing staged is committed. A run outside any transaction
commits as soon as it completes. A cached run did no work, so it has nothing to commit
or undo: its hooks do not run.

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

import asyncio
import copy
import enum
import inspect
import logging
import warnings
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from kernelflow._context import flow_run_context
from kernelflow.exceptions import MissingTransactionValue

logger = logging.getLogger("kernelflow.transactions")

_current: ContextVar[Transaction | None] = ContextVar("kernelflow_transaction", default=None)
_MISSING: Any = object()


class CommitMode(str, enum.Enum):
    """When a transaction commits. LAZY (the default): with its outermost transaction.
    EAGER: when its own block ends, even if nested. OFF: only if ``txn.commit()`` is
    called in the block; otherwise it rolls back when the block ends. A transaction
    without a mode takes its parent's."""

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class IsolationLevel(str, enum.Enum):
    """Prefect's isolation levels. Both hold in kernelflow without a lock manager: two
    identical cached runs in one process run once (the second waits for the first);
    across processes the last writer of an entry wins, each write whole."""

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class TransactionHookWarning(UserWarning):
    """Issued when an ``on_commit`` or ``on_rollback`` hook raised during a commit or a
    rollback that no exception reports (the errors are in ``txn.hook_errors``)."""


class Transaction:
    """A unit of work that commits or rolls back as a whole.

    Attributes:
        key: An optional name, for messages.
        parent: The enclosing transaction, if nested.
        task_run: For the transaction of one task run, that run; None for a block.
        state: "active", "committed" or "rolled_back".
        hook_errors: ``(hook, exception)`` for each commit or rollback hook that raised,
            here and in the transactions nested in this one.
    """

    def __init__(
        self,
        key: str | None = None,
        parent: Transaction | None = None,
        task_run: Any = None,
        commit_mode: CommitMode | str | None = None,
        isolation_level: IsolationLevel | str | None = None,
        write_on_commit: bool = True,
    ) -> None:
        self.key = key
        self.parent = parent
        self.task_run = task_run
        if commit_mode is None and parent is not None:
            commit_mode = parent.commit_mode
        self.commit_mode = CommitMode(commit_mode) if commit_mode is not None else None
        if isolation_level is None:
            isolation_level = parent.isolation_level if parent else IsolationLevel.READ_COMMITTED
        self.isolation_level = IsolationLevel(isolation_level)
        self.write_on_commit = bool(write_on_commit)
        self.state = "active"
        self.hook_errors: list[tuple[Callable[..., Any], BaseException]] = []
        self._values: dict[str, Any] = {}
        # (task, task_run, the transaction its hooks get), in completion order
        self._completed: list[tuple[Any, Any, Transaction]] = []
        self._children: list[Transaction] = []  # nested ones committed into this one
        self._staged: list[Callable[[], None]] = []
        self._failed_runs: list[Any] = []

    def set(self, name: str, value: Any) -> None:
        """Keep a value for the hooks (e.g. the path a task wrote)."""
        self._values[name] = value

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A copy of the value set under ``name`` here or in an enclosing transaction
        (a copy, so changing it changes no transaction's value: ``set`` it back).

        Raises:
            MissingTransactionValue (a KeyError and ValueError): nothing was set under
                ``name`` and no default was given.
        """
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return _copy(txn._values[name])
            txn = txn.parent
        if default is _MISSING:
            raise MissingTransactionValue(
                f"Could not retrieve value for unknown key {name!r}: nothing was set under "
                "it in this transaction or an enclosing one. Pass a default: "
                f"txn.get({name!r}, None)."
            )
        return default

    def record_completed(self, task: Any, task_run: Any) -> None:
        self._completed.append((task, task_run, self))

    def record_failed(self, task_run: Any) -> None:
        # A failure anywhere inside rolls back every enclosing transaction too.
        txn: Transaction | None = self
        while txn is not None:
            txn._failed_runs.append(task_run)
            txn = txn.parent

    def stage(self, action: Callable[[], None]) -> None:
        """Do ``action`` when the outermost transaction commits; drop it on rollback.

        In an EAGER transaction it is done at once: the run that staged it has ended,
        and eager means each run's work is committed as it ends (so a second identical
        cached call in the block finds the first one's entry)."""
        if self.commit_mode is CommitMode.EAGER:
            if self.write_on_commit:
                self._call(action, None)
            return
        self._staged.append(action)

    def is_active(self) -> bool:
        return self.state == "active"

    def is_committed(self) -> bool:
        return self.state == "committed"

    def is_rolled_back(self) -> bool:
        return self.state == "rolled_back"

    def commit(self) -> None:
        if self.state != "active":  # already ended (e.g. committed in its block)
            return
        if self.parent is not None and self.commit_mode is not CommitMode.EAGER:
            # a nested commit waits for its parent's
            self.parent._completed.extend(self._completed)
            self.parent._staged.extend(self._staged)
            self.parent._children.append(self)
            self.state = "committed"
            return
        if self.write_on_commit:
            for action in self._staged:
                self._call(action, None)
        for task, run, txn in self._completed:
            for hook in task.on_commit_hooks:
                self._call(hook, run, txn)
        self._mark("committed")

    def rollback(self) -> None:
        """Run every rollback hook, newest run first. A hook that raises does not stop
        the others: an Exception is kept in ``hook_errors``; a BaseException (SystemExit,
        KeyboardInterrupt) is raised again once every hook has run."""
        first: BaseException | None = None
        for task, run, txn in reversed(self._completed):
            for hook in task.on_rollback_hooks:
                try:
                    self._call(hook, run, txn)
                except BaseException as error:  # not an Exception: _call keeps those
                    first = first or error
        self._staged.clear()
        self._mark("rolled_back")
        if first is not None:
            raise first

    def report_hook_errors(self, error: BaseException | None = None) -> None:
        """Say once more, where the outermost transaction ends, that hooks raised: as a
        note on ``error`` (what rolled it back) if given, else as a warning."""
        if not self.hook_errors or self.parent is not None:
            return
        which = ", ".join(
            f"{getattr(hook, '__name__', hook)} ({type(e).__name__}: {e})"
            for hook, e in self.hook_errors
        )
        message = f"{len(self.hook_errors)} transaction hook(s) raised: {which}"
        if error is not None:
            note = f"kernelflow: while rolling back, {message}"
            # BaseException.add_note is Python 3.11's; 3.10 prints no notes, but code
            # and tests read them from __notes__ all the same.
            error.__notes__ = [*getattr(error, "__notes__", ()), note]
        else:
            warnings.warn(f"{message}; see txn.hook_errors.", TransactionHookWarning, stacklevel=4)

    def _mark(self, state: str) -> None:
        self.state = state
        for child in self._children:  # nested ones end as their outermost one did
            child._mark(state)

    def _call(self, fn: Callable[..., Any], task_run: Any, *args: Any) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                from kernelflow._loops import run_coroutine_sync

                run_coroutine_sync(result)
        except Exception as error:
            # Kept by the run's own transaction (the hook's argument), this one and every
            # enclosing one: wherever the user holds a transaction, the error is there.
            holders = [*args[:1]] if args and args[0] is not self else []
            txn: Transaction | None = self
            while txn is not None:
                holders.append(txn)
                txn = txn.parent
            for holder in holders:
                holder.hook_errors.append((fn, error))
            _hook_logger(task_run).error(
                "Transaction hook %r raised (the run's state is unchanged); carrying on.",
                getattr(fn, "__name__", fn),
                exc_info=error,
            )

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state!r})"


def transaction(
    key: str | None = None,
    commit_mode: CommitMode | str | None = None,
    isolation_level: IsolationLevel | str | None = None,
    write_on_commit: bool = True,
) -> TransactionBlock:
    """Group task runs: they commit together, or roll back together if the block raises
    or one of them fails. Transactions nest; a nested one commits with its parent.

    ``with transaction() as txn:`` in sync code; ``async with transaction() as txn:`` (or
    Prefect's ``atransaction()``) in an async flow, where the block's submitted async
    runs are awaited, not waited for.

    Args:
        key: A name, for messages.
        commit_mode: ``CommitMode.LAZY`` (default), ``EAGER`` or ``OFF`` (see CommitMode).
        isolation_level: Prefect's option; see IsolationLevel for what kernelflow gives.
        write_on_commit: False keeps the cache entries of the block's runs from being
            written when it commits (their commit hooks still run).
    """
    options = {"commit_mode": commit_mode, "isolation_level": isolation_level}
    for name, kind in (("commit_mode", CommitMode), ("isolation_level", IsolationLevel)):
        value = options[name]
        if value is not None and value not in {member.value for member in kind}:
            raise _option_error(name, value, kind)
    return TransactionBlock(key, commit_mode, isolation_level, write_on_commit)


atransaction = transaction  # Prefect's name for the async form: use it with `async with`


def _option_error(name: str, value: Any, kind: type[enum.Enum]) -> Exception:
    from kernelflow.exceptions import InvalidOptionError

    choices = ", ".join(member.name for member in kind)
    return InvalidOptionError(f"{name}={value!r} is not valid: {name} must be one of {choices}.")


def _copy(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable (a lock, a connection): the object itself
        return value


class TransactionBlock:
    """The ``with`` / ``async with`` block of ``transaction()``; gives its Transaction.

    Runs submitted in the block belong to it: its end waits for them (even when the block
    raised), then commits, or rolls back if the block raised or one of them failed."""

    def __init__(self, key: str | None, *options: Any) -> None:
        self.key = key
        self._options = options

    def __enter__(self) -> Transaction:
        self.txn = Transaction(self.key, _current.get(), None, *self._options)
        flow_ctx = flow_run_context.get()
        self._futures = flow_ctx.futures if flow_ctx is not None else []
        self._first = len(self._futures)
        self._token = _current.set(self.txn)
        return self.txn

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        try:
            if _waits_for_runs(error):
                for future in self._futures[self._first :]:
                    future.wait()
        except BaseException as waiting_error:
            self._end(waiting_error)
            raise
        self._end(error)

    async def __aenter__(self) -> Transaction:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        try:
            if _waits_for_runs(error):
                for future in self._futures[self._first :]:
                    await asyncio.wrap_future(future.settled)  # its final state; never raises
        except BaseException as waiting_error:
            self._end(waiting_error)
            raise
        self._end(error)

    def _end(self, error: BaseException | None) -> None:
        _current.reset(self._token)
        txn = self.txn
        if not txn.is_active():  # committed or rolled back inside the block
            pass
        elif error is not None or txn._failed_runs or txn.commit_mode is CommitMode.OFF:
            txn.rollback()
        else:
            txn.commit()
        txn.report_hook_errors(error)


def _waits_for_runs(error: BaseException | None) -> bool:
    """Whether the block's end waits for the runs it submitted: always, so that a block
    that raised rolls back runs still in flight too (their hooks run, their work is
    undone); not when the user interrupts, who wants to stop now."""
    return not isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))


def _hook_logger(task_run: Any) -> Any:
    if task_run is None:
        return logger
    from kernelflow._logging import run_logger

    return run_logger(task_run=task_run)


def current_transaction() -> Transaction | None:
    """The transaction the calling code is in: inside a task with commit or rollback
    hooks, that run's own; else the innermost ``with transaction()``; else None."""
    return _current.get()


# --- the engine's calls (task_engine.py) ---------------------------------------------


def run_transaction(task: Any, run: Any) -> Transaction:
    """A new transaction of the run's own, nested in the one it was started in. Made
    before the first attempt, and only for tasks with commit or rollback hooks."""
    own = run.transaction = Transaction(run.name, parent=run.transaction, task_run=run)
    return own


def enclosing(run: Any) -> Transaction | None:
    """The transaction the run was started in (where its cache record is staged)."""
    txn = run.transaction
    if txn is not None and txn.task_run is run:
        return txn.parent
    return txn


def task_completed(task: Any, run: Any) -> None:
    """The engine's call when a task run completes: commit its own transaction (into
    the enclosing one, or for good). A cached run never made one: nothing to do."""
    txn = run.transaction
    if txn is None:
        return
    run.transaction = None  # the record outlives the run; the transaction need not
    if txn.task_run is run:
        txn.record_completed(task, run)
        txn.commit()
        txn.report_hook_errors()


def task_failed(run: Any) -> None:
    txn = run.transaction
    if txn is None:
        return
    run.transaction = None
    txn.record_failed(run)
    if txn.task_run is run:
        txn.rollback()  # undoes runs that completed inside its body, if any
        txn.report_hook_errors()

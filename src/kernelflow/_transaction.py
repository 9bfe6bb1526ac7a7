"""The Transaction object: Prefect 3's state machine, plus the task runs it holds.

A transaction is PENDING until entered, ACTIVE in its block, STAGED once a value was
``stage()``d, and ends COMMITTED or ROLLED_BACK. Entered inside another one, it ends its
block still open and its parent takes responsibility (``children``): the parent's commit
commits it first, and a child that ends rolled back rolls its parent back, as Prefect
does. EAGER commits at the block's end even when nested; OFF rolls back at the end of a
top-level block unless ``commit()`` was called in it.

What kernelflow adds: the task runs that complete in it (their ``on_commit`` and
``on_rollback`` hooks), work the engine defers to the commit (cache records), and hook
errors kept in ``hook_errors`` instead of undoing the commit (a hook that raises never
changes a run's state). ``_transaction_forms`` has the ``with`` and ``async with`` forms
(``Transaction``, ``AsyncTransaction``); ``_transactions`` has ``transaction()`` and the
engine's calls.
"""

from __future__ import annotations

import copy
import enum
import inspect
import logging
import warnings
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from kernelflow._context import flow_run_context
from kernelflow._lazy_imports import asyncio, uuid
from kernelflow.exceptions import ConfigurationError, MissingTransactionValue

_default_logger = logging.getLogger("kernelflow.transactions")

current: ContextVar[BaseTransaction | None] = ContextVar("kernelflow_transaction", default=None)
_MISSING: Any = object()


class TransactionState(str, enum.Enum):
    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class CommitMode(str, enum.Enum):
    """When a transaction commits. LAZY (the default): with its outermost transaction.
    EAGER: when its own block ends, even if nested. OFF: only if ``txn.commit()`` is
    called in the block; otherwise a top-level one rolls back when its block ends (a
    nested one is left to its parent, as in Prefect). Without a mode, a transaction
    takes its parent's when entered."""

    EAGER = "EAGER"
    LAZY = "LAZY"
    OFF = "OFF"


class IsolationLevel(str, enum.Enum):
    """READ_COMMITTED, or SERIALIZABLE: a transaction with a key and a store holds the
    store's lock on that key from entry to its end (the store must support it).
    kernelflow's own cached runs need neither: two identical cached runs in one process
    run once (the second waits for the first); across processes the last writer of an
    entry wins, each write whole."""

    READ_COMMITTED = "READ_COMMITTED"
    SERIALIZABLE = "SERIALIZABLE"


class TransactionHookWarning(UserWarning):
    """Issued when an ``on_commit`` or ``on_rollback`` hook raised during a commit or a
    rollback that no exception reports (the errors are in ``txn.hook_errors``)."""


_ENDED = (TransactionState.COMMITTED, TransactionState.ROLLED_BACK)
# Compared by ``==``, as Prefect compares its transactions (two fresh ones are equal).
_FIELDS = (
    "store", "key", "children", "commit_mode", "isolation_level", "state",
    "on_commit_hooks", "on_rollback_hooks", "overwrite", "write_on_commit",
)  # fmt: skip


class BaseTransaction:
    """A unit of work that commits or rolls back as a whole.

    Attributes:
        key: A name; with a ``store``, the key of the record the commit writes.
        store: Where a keyed transaction's staged value goes (an object with Prefect's
            result-store methods ``exists``, ``read``, ``write``); None for none.
        state: A ``TransactionState``.
        children: The nested transactions this one took responsibility for.
        task_run: For the transaction of one task run, that run; else None.
        hook_errors: ``(hook, exception)`` for each commit or rollback hook that raised,
            here and in the transactions nested in this one.
    """

    __hash__ = None  # type: ignore[assignment]  # equal by value, as Prefect's models

    def __init__(
        self,
        key: str | None = None,
        *,
        store: Any = None,
        state: TransactionState | str = TransactionState.PENDING,
        commit_mode: CommitMode | str | None = None,
        isolation_level: IsolationLevel | str | None = IsolationLevel.READ_COMMITTED,
        overwrite: bool = False,
        write_on_commit: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        children: list[BaseTransaction] | None = None,
        on_commit_hooks: list[Callable[..., Any]] | None = None,
        on_rollback_hooks: list[Callable[..., Any]] | None = None,
        parent: BaseTransaction | None = None,
        task_run: Any = None,
    ) -> None:
        self.key = key
        self.store = store
        self.state = TransactionState(state)
        self.commit_mode = CommitMode(commit_mode) if commit_mode is not None else None
        self.isolation_level = IsolationLevel(isolation_level) if isolation_level else None
        self.overwrite = bool(overwrite)
        self.write_on_commit = bool(write_on_commit)
        self.logger = logger if logger is not None else _default_logger
        self.children: list[BaseTransaction] = list(children or [])
        self.on_commit_hooks: list[Callable[..., Any]] = list(on_commit_hooks or [])
        self.on_rollback_hooks: list[Callable[..., Any]] = list(on_rollback_hooks or [])
        self.parent = parent
        self.task_run = task_run
        if parent is not None:  # a run's transaction, made open
            self._inherit(parent)
        self.hook_errors: list[tuple[Callable[..., Any], BaseException]] = []
        self._values: dict[str, Any] = {}
        self._staged_value: Any = None
        self._task: Any = None  # the task whose hooks run, once its run completed
        self._deferred: list[Callable[[], None]] = []
        self._failed_runs: list[Any] = []
        self._token: Token[BaseTransaction | None] | None = None
        self._holder = str(uuid.uuid4())
        self._futures: list[Any] = []
        self._first = 0

    # --- values ---------------------------------------------------------------------

    def set(self, name: str, value: Any) -> None:
        """Keep a value for later in the transaction and its hooks."""
        self._values[name] = value

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A copy of the value set under ``name`` here or in an enclosing transaction
        (a copy, so changing it changes no transaction's value: ``set`` it back).

        Raises:
            MissingTransactionValue (a KeyError and ValueError): nothing was set under
                ``name`` and no default was given.
        """
        txn: BaseTransaction | None = self
        while txn is not None:
            if name in txn._values:
                return _copy(txn._values[name])
            txn = txn.get_parent()
        if default is _MISSING:
            raise MissingTransactionValue(
                f"Could not retrieve value for unknown key {name!r}: nothing was set under "
                "it in this transaction or an enclosing one. Pass a default: "
                f"txn.get({name!r}, None)."
            )
        return default

    def stage(
        self,
        value: Any,
        on_rollback_hooks: list[Callable[..., Any]] | None = None,
        on_commit_hooks: list[Callable[..., Any]] | None = None,
    ) -> None:
        """Stage ``value`` to be written under the key when this commits (with a store),
        and add hooks that get this transaction when it commits or rolls back. A
        committed transaction stages nothing."""
        if self.state is TransactionState.COMMITTED:
            return
        self._staged_value = value
        self.on_rollback_hooks += on_rollback_hooks or []
        self.on_commit_hooks += on_commit_hooks or []
        self.state = TransactionState.STAGED

    # --- state ----------------------------------------------------------------------

    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def get_parent(self) -> BaseTransaction | None:
        """The transaction this one was entered in (None at the top level)."""
        return self.parent

    def add_child(self, transaction: BaseTransaction) -> None:
        """Take responsibility for ``transaction``: commit or roll it back with this one."""
        self.children.append(transaction)

    # --- what the engine records ----------------------------------------------------

    def defer(self, action: Callable[[], None]) -> None:
        """Do ``action`` when this commits (with its parents); drop it on rollback.

        In an EAGER transaction it is done at once: the run that deferred it has ended,
        and eager means each run's work is committed as it ends (so a second identical
        cached call in the block finds the first one's entry)."""
        if self.commit_mode is CommitMode.EAGER:
            if self.write_on_commit:
                self._call(action)
            return
        self._deferred.append(action)

    def record_completed(self, task: Any) -> None:
        """The run of this transaction completed: its task's hooks run at the end."""
        self._task = task

    def record_failed(self, task_run: Any) -> None:
        # A failure anywhere inside rolls back every enclosing transaction too.
        txn: BaseTransaction | None = self
        while txn is not None:
            txn._failed_runs.append(task_run)
            txn = txn.parent

    # --- entering and leaving -------------------------------------------------------

    def _prepare(self) -> None:
        if self._token is not None:
            raise RuntimeError("Context already entered. Context enter calls cannot be nested.")
        parent = current.get()
        self.parent = parent
        self._inherit(parent)
        if self.commit_mode is None:
            self.commit_mode = CommitMode.LAZY
        level = self.isolation_level
        if self.store is not None and self.key and not _supports(self.store, level):
            raise ConfigurationError(
                f"Isolation level {level.name} is not supported by provided configuration. "
                "Please ensure you've provided a lock file directory or lock manager when "
                "using the SERIALIZABLE isolation level."
            )
        self.state = TransactionState.ACTIVE
        flow_ctx = flow_run_context.get()
        self._futures = flow_ctx.futures if flow_ctx is not None else []
        self._first = len(self._futures)

    def _inherit(self, parent: BaseTransaction | None) -> None:
        if self.commit_mode is None and parent is not None:
            self.commit_mode = parent.commit_mode
        if self.isolation_level is None:
            self.isolation_level = (
                parent.isolation_level if parent is not None else IsolationLevel.READ_COMMITTED
            )

    def _serializable(self) -> bool:
        return bool(
            self.store is not None
            and self.key
            and self.isolation_level is IsolationLevel.SERIALIZABLE
        )

    def _release(self) -> None:
        if self._serializable():
            self.store.release_lock(self.key, holder=self._holder)

    def _end_block(self, error: BaseException | None) -> str:
        """What the block's end does, after its runs were waited for: "rollback",
        "commit", or "parent" (a parent takes responsibility)."""
        if error is not None or self._failed_runs:
            return "rollback"
        if self.parent is not None:
            return "parent"
        return "rollback" if self.commit_mode is CommitMode.OFF else "commit"

    def _unset(self) -> BaseTransaction | None:
        """Leave the context; the parent (which this one now belongs to), if any."""
        parent = self.parent
        if parent is not None:
            parent.add_child(self)
        if self._token is not None:
            current.reset(self._token)
            self._token = None
        return parent

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

    # --- hooks ----------------------------------------------------------------------

    def _commit_hooks(self) -> list[Callable[..., Any]]:
        task_hooks = list(self._task.on_commit_hooks) if self._task is not None else []
        return [*task_hooks, *self.on_commit_hooks]

    def _rollback_hooks(self) -> list[Callable[..., Any]]:
        """Newest first: staged hooks in reverse, then the task's (its run came first)."""
        task_hooks = list(self._task.on_rollback_hooks) if self._task is not None else []
        return [*reversed(self.on_rollback_hooks), *task_hooks]

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run a hook (args: this transaction) or a deferred action (no args). An
        Exception is logged against the run and kept in ``hook_errors``, here and in
        every enclosing transaction, and the commit or rollback goes on."""
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                from kernelflow._loops import run_coroutine_sync

                run_coroutine_sync(result)
        except Exception as error:
            txn: BaseTransaction | None = self
            while txn is not None:
                txn.hook_errors.append((fn, error))
                txn = txn.parent
            _hook_logger(self).error(
                "Transaction hook %r raised (the run's state is unchanged); carrying on.",
                getattr(fn, "__name__", fn),
                exc_info=error,
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BaseTransaction):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(key={self.key!r}, state={self.state.name})"


def _supports(store: Any, level: IsolationLevel) -> bool:
    check = getattr(store, "supports_isolation_level", None)
    if check is None:
        return level is IsolationLevel.READ_COMMITTED
    return bool(check(level))


def _sync(result: Any) -> Any:
    """A commit or rollback of a sync or async child, from sync code."""
    if inspect.isawaitable(result):
        from kernelflow._loops import run_coroutine_sync

        return run_coroutine_sync(result)
    return result


async def _async(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


def _copy(value: Any) -> Any:
    try:
        return copy.deepcopy(value)
    except Exception:  # not copyable (a lock, a connection): the object itself
        return value


def _waits_for_runs(error: BaseException | None) -> bool:
    """Whether the block's end waits for the runs it submitted: always, so that a block
    that raised rolls back runs still in flight too (their hooks run, their work is
    undone); not when the user interrupts, who wants to stop now."""
    return not isinstance(error, (KeyboardInterrupt, asyncio.CancelledError))


def _hook_logger(txn: BaseTransaction) -> Any:
    if txn.task_run is None:
        return txn.logger
    from kernelflow._logging import run_logger

    return run_logger(task_run=txn.task_run)

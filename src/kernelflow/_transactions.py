"""Transactions: the task runs completed inside one commit together or roll back together.

    with kernelflow.transaction() as txn:
        path = write_file(...)      # completed: on_rollback hooks will undo it if...
        load_table(path)            # ...this raises: rollback runs in reverse order

A task run that completes inside a transaction is *staged*: its ``on_commit`` hooks (and
work the result store stages, such as writing its cache record) run when the outermost
transaction commits. If the block raises, or a task run started in it failed, the
transaction rolls back: the ``on_rollback(txn)`` hooks of the runs that completed in it
run, newest first, and nothing staged is committed. A task run outside any transaction
is its own transaction, committed as soon as it completes. Hook errors are logged and
kept in ``txn.hook_errors``; they never change a run's state.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from kernelflow._context import flow_run_context

logger = logging.getLogger("kernelflow.transactions")

_current: ContextVar[Transaction | None] = ContextVar("kernelflow_transaction", default=None)
_MISSING: Any = object()

__all__ = ["Transaction", "transaction", "current_transaction"]


class Transaction:
    """A unit of work that commits or rolls back as a whole.

    Attributes:
        key: An optional name, for messages.
        parent: The enclosing transaction, if nested.
        state: "active", "committed" or "rolled_back".
        hook_errors: ``(hook, exception)`` for each commit or rollback hook that raised.
    """

    def __init__(self, key: str | None = None, parent: Transaction | None = None) -> None:
        self.key = key
        self.parent = parent
        self.state = "active"
        self.hook_errors: list[tuple[Callable[..., Any], BaseException]] = []
        self._values: dict[str, Any] = {}
        self._completed: list[tuple[Any, Any]] = []  # (task, task_run), in completion order
        self._staged: list[Callable[[], None]] = []
        self._failed_runs: list[Any] = []

    def set(self, name: str, value: Any) -> None:
        """Keep a value for the hooks (e.g. the path a task wrote)."""
        self._values[name] = value

    def get(self, name: str, default: Any = _MISSING) -> Any:
        """A value set in this transaction or an enclosing one."""
        txn: Transaction | None = self
        while txn is not None:
            if name in txn._values:
                return txn._values[name]
            txn = txn.parent
        if default is _MISSING:
            raise KeyError(f"No value {name!r} was set in this transaction.")
        return default

    def record_completed(self, task: Any, task_run: Any) -> None:
        self._completed.append((task, task_run))

    def record_failed(self, task_run: Any) -> None:
        # A failure anywhere inside rolls back every enclosing transaction too.
        txn: Transaction | None = self
        while txn is not None:
            txn._failed_runs.append(task_run)
            txn = txn.parent

    def stage(self, action: Callable[[], None]) -> None:
        """Do ``action`` when the outermost transaction commits; drop it on rollback."""
        self._staged.append(action)

    def commit(self) -> None:
        if self.parent is not None:  # a nested commit waits for its parent's
            self.parent._completed.extend(self._completed)
            self.parent._staged.extend(self._staged)
            self.state = "committed"
            return
        for action in self._staged:
            self._call(action)
        for task, _run in self._completed:
            for hook in task.on_commit_hooks:
                self._call(hook, self)
        self.state = "committed"

    def rollback(self) -> None:
        for task, _run in reversed(self._completed):
            for hook in task.on_rollback_hooks:
                self._call(hook, self)
        self._staged.clear()
        self.state = "rolled_back"

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        try:
            result = fn(*args)
            if inspect.isawaitable(result):
                from kernelflow._engine.effects import run_coroutine_sync

                run_coroutine_sync(result)
        except Exception as error:
            self.hook_errors.append((fn, error))
            logger.error("Transaction hook %r raised; carrying on.",
                         getattr(fn, "__name__", fn), exc_info=error)

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state!r})"


@contextlib.contextmanager
def transaction(key: str | None = None) -> Iterator[Transaction]:
    """Group task runs: they commit together, or roll back together if the block raises
    or one of them fails. Transactions nest; a nested one commits with its parent."""
    txn = Transaction(key, parent=_current.get())
    flow_ctx = flow_run_context.get()
    first_future = len(flow_ctx.futures) if flow_ctx else 0
    token = _current.set(txn)
    try:
        yield txn
        if flow_ctx is not None:  # runs submitted in the block belong to it: wait for them
            for future in flow_ctx.futures[first_future:]:
                future.wait()
    except BaseException:
        txn.rollback()
        raise
    finally:
        _current.reset(token)
    if txn._failed_runs:
        txn.rollback()
    else:
        txn.commit()


def current_transaction() -> Transaction | None:
    return _current.get()


def task_completed(task: Any, task_run: Any) -> None:
    """The engine's call when a task run completes: stage it, or commit it at once."""
    txn = _current.get()
    if txn is not None:
        txn.record_completed(task, task_run)
    elif task.on_commit_hooks:
        own = Transaction()  # the implicit transaction around a run outside any other
        own.record_completed(task, task_run)
        own.commit()


def task_failed(task_run: Any) -> None:
    txn = _current.get()
    if txn is not None:
        txn.record_failed(task_run)

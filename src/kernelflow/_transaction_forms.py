"""The two block forms of a transaction: ``Transaction`` (``with``, and ``async with``
in kernelflow) and ``AsyncTransaction`` (Prefect's ``async with`` only, whose
``commit``, ``rollback`` and ``read`` are awaited). Both enter and leave as Prefect's do:
the state machine and the bookkeeping are ``_transaction.BaseTransaction``'s.

One body, two drivers: beginning, reading, committing, rolling back and leaving the
block are each written once, as a generator that yields the steps that may block (a
hook, a store call, a nested transaction's commit, a run to wait for) and gets each
step's result back. ``_run`` runs the steps in the calling thread (``Transaction``);
``_arun`` awaits them (``AsyncTransaction``: a sync hook in a worker thread, a store's
``a``-prefixed method when it has one).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from kernelflow._lazy_imports import asyncio
from kernelflow._transaction import (
    _ENDED,
    BaseTransaction,
    CommitMode,
    TransactionState,
    _async,
    _sync,
    _waits_for_runs,
    current,
)

Steps = Generator["_Step", Any, Any]


class Transaction(BaseTransaction):
    """A transaction used with ``with`` (or ``async with``, where the block's async runs
    are awaited, not waited for)."""

    def __enter__(self) -> Transaction:
        self._prepare()
        self.begin()
        self._token = current.set(self)
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        _left(self, _run(_leaving(self, error)), error)

    async def __aenter__(self) -> Transaction:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        # Only the waiting for the block's runs is awaited; the rest is as with ``with``.
        _left(self, await _arun(_leaving(self, error), awaits=_Settle), error)

    def begin(self) -> None:
        _run(_beginning(self))

    def read(self) -> Any:
        """The record committed under the key, from the store (None without one)."""
        return _run(_reading(self))

    def commit(self) -> bool:
        """Commit the children, run the commit hooks, do the deferred work, and write the
        staged value to the store. An error in a child's commit or in the write rolls
        this back instead (a hook's error is only kept).

        Returns:
            True if this call committed it; False if it had already ended.
        """
        return _run(_committing(self))

    def rollback(self) -> bool:
        """Run the rollback hooks, newest first, then roll back the children, newest
        first. A hook that raises does not stop the others: an Exception is kept in
        ``hook_errors``; a BaseException (SystemExit, KeyboardInterrupt) is raised again
        once every hook has run.

        Returns:
            True if this call rolled it back; False if it had already ended.
        """
        return _run(_rolling_back(self))


class AsyncTransaction(BaseTransaction):
    """A transaction used with ``async with`` only (Prefect's ``atransaction()``): its
    ``commit``, ``rollback`` and ``read`` are coroutines, and sync hooks run in a worker
    thread."""

    async def __aenter__(self) -> AsyncTransaction:
        self._prepare()
        await self.begin()
        self._token = current.set(self)
        return self

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        _left(self, await _arun(_leaving(self, error)), error)

    def __enter__(self) -> Any:
        raise NotImplementedError(
            "AsyncTransaction does not support the `with` statement. Use the `async with` "
            "statement instead."
        )

    def __exit__(self, *exc_info: Any) -> Any:
        raise NotImplementedError(
            "AsyncTransaction does not support the `with` statement. Use the `async with` "
            "statement instead."
        )

    async def begin(self) -> None:
        await _arun(_beginning(self))

    async def read(self) -> Any:
        return await _arun(_reading(self))

    async def commit(self) -> bool:
        """As ``Transaction.commit``, awaited."""
        return await _arun(_committing(self))

    async def rollback(self) -> bool:
        """As ``Transaction.rollback``, awaited."""
        return await _arun(_rolling_back(self))


# --- the bodies ----------------------------------------------------------------------


def _beginning(txn: BaseTransaction) -> Steps:
    if txn._serializable():
        yield _StoreCall(txn.store, "acquire_lock", txn.key, holder=txn._holder)
    if not txn.overwrite and txn.store is not None and txn.key:
        if (yield _StoreCall(txn.store, "exists", key=txn.key)):
            txn.state = TransactionState.COMMITTED


def _reading(txn: BaseTransaction) -> Steps:
    if txn.store is not None and txn.key:
        return (yield _StoreCall(txn.store, "read", key=txn.key, holder=txn._holder))
    return None


def _committing(txn: BaseTransaction) -> Steps:
    if txn.state in _ENDED:
        txn._release()
        return False
    try:
        for child in txn.children:
            yield _Nested(child.commit)
        yield _Blocking(_run_commit_hooks, txn)
        if txn.write_on_commit and txn.store is not None and txn.key:
            yield _StoreCall(
                txn.store, "write", key=txn.key, obj=txn._staged_value, holder=txn._holder
            )
        txn.state = TransactionState.COMMITTED
        txn._release()
        return True
    except Exception:
        txn.logger.exception("An error was encountered while committing transaction %r", txn.key)
        yield _Nested(txn.rollback)
        return False


def _run_commit_hooks(txn: BaseTransaction) -> None:
    for hook in txn._commit_hooks():
        txn._call(hook, txn)
    if txn.write_on_commit:
        for action in txn._deferred:
            txn._call(action)


def _rolling_back(txn: BaseTransaction) -> Steps:
    if txn.state in _ENDED:
        return False
    first: BaseException | None = None
    try:
        for hook in txn._rollback_hooks():
            try:
                yield _Blocking(txn._call, hook, txn)
            except BaseException as error:  # not an Exception: _call keeps those
                first = first or error
        txn.state = TransactionState.ROLLED_BACK
        txn._deferred.clear()
        for child in reversed(txn.children):
            try:
                yield _Nested(child.rollback)
            except BaseException as error:
                first = first or error
    finally:
        txn._release()
    if first is not None:
        raise first
    return True


def _leaving(txn: BaseTransaction, error: BaseException | None) -> Steps:
    """The block's end: wait for the runs it submitted, then end the transaction.
    Returns what ended the block: ``error``, or what interrupted the waiting."""
    try:
        if _waits_for_runs(error):
            for future in txn._futures[txn._first :]:
                yield _Settle(future)
    except BaseException as waiting_error:
        yield from _ending(txn, waiting_error)
        return waiting_error
    yield from _ending(txn, error)
    return error


def _ending(txn: BaseTransaction, error: BaseException | None) -> Steps:
    if txn._token is None:
        raise RuntimeError("Asymmetric use of context. Context exit called without an enter.")
    end = txn._end_block(error)
    try:
        if end == "rollback":
            yield _Nested(txn.rollback)
        elif txn.commit_mode is CommitMode.EAGER or end == "commit":
            yield _Nested(txn.commit)
    finally:  # a hook's SystemExit still leaves the context
        parent = txn._unset()
    if parent is not None and txn.is_rolled_back():
        yield _Nested(parent.rollback)


def _left(
    txn: BaseTransaction, ended_by: BaseException | None, error: BaseException | None
) -> None:
    """After ``_leaving``: say that hooks raised, and raise what interrupted the waiting.
    Called from ``__exit__``/``__aexit__`` themselves, so that the warning names the
    user's ``with`` line."""
    txn.report_hook_errors(ended_by)
    if ended_by is not error:
        raise ended_by  # type: ignore[misc]  # not None: it is not the block's error


# --- the steps and the drivers -------------------------------------------------------


class _Step:
    """Something a body waits for: ``run()`` does it here, ``arun()`` awaits it."""

    def run(self) -> Any:
        raise NotImplementedError

    async def arun(self) -> Any:
        raise NotImplementedError


class _Blocking(_Step):
    """A call of user code (hooks, deferred work) that may block: in a worker thread
    from async code."""

    def __init__(self, fn: Callable[..., Any], *args: Any) -> None:
        self.fn, self.args = fn, args

    def run(self) -> Any:
        return self.fn(*self.args)

    async def arun(self) -> Any:
        return await asyncio.to_thread(self.fn, *self.args)


class _Nested(_Step):
    """A transaction's ``commit`` or ``rollback``: a coroutine for an AsyncTransaction."""

    def __init__(self, method: Callable[[], Any]) -> None:
        self.method = method

    def run(self) -> Any:
        return _sync(self.method())

    async def arun(self) -> Any:
        return await _async(self.method())


class _StoreCall(_Step):
    """A store method; from async code, the store's ``a``-prefixed one when it has it
    (Prefect's stores have ``aexists``, ``aread``, ``awrite``)."""

    def __init__(self, store: Any, name: str, *args: Any, **kwargs: Any) -> None:
        self.store, self.name, self.args, self.kwargs = store, name, args, kwargs

    def run(self) -> Any:
        return getattr(self.store, self.name)(*self.args, **self.kwargs)

    async def arun(self) -> Any:
        method = getattr(self.store, f"a{self.name}", None) or getattr(self.store, self.name)
        return await _async(method(*self.args, **self.kwargs))


class _Settle(_Step):
    """A run the block submitted, to wait for until it reaches its final state."""

    def __init__(self, future: Any) -> None:
        self.future = future

    def run(self) -> None:
        self.future.wait()

    async def arun(self) -> None:
        await asyncio.wrap_future(self.future.settled)  # its final state; never raises


def _run(steps: Steps) -> Any:
    """Run a body's steps in this thread; what the body returns. This is ``_arun``
    awaiting none of them: a coroutine that never suspends ends at its first ``send``."""
    driving = _arun(steps, awaits=())
    try:
        driving.send(None)
    except StopIteration as done:
        return done.value
    raise AssertionError("_arun suspended with nothing to await")  # never: see above


async def _arun(steps: Steps, awaits: type[_Step] | tuple[type[_Step], ...] = _Step) -> Any:
    """Run a body's steps from async code, awaiting those of the ``awaits`` kinds (all,
    by default) and running any others here; what the body returns."""
    resume, value = steps.send, None
    while True:
        try:
            step = resume(value)
        except StopIteration as done:
            return done.value
        try:
            result = await step.arun() if isinstance(step, awaits) else step.run()
            resume, value = steps.send, result
        except BaseException as error:  # the body decides what stops it
            resume, value = steps.throw, error

"""The two block forms of a transaction: ``Transaction`` (``with``, and ``async with``
in kernelflow) and ``AsyncTransaction`` (Prefect's ``async with`` only, whose
``commit``, ``rollback`` and ``read`` are awaited). Both enter and leave as Prefect's do:
the state machine and the bookkeeping are ``_transaction.BaseTransaction``'s."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

from kernelflow._transaction import (
    _ENDED,
    BaseTransaction,
    CommitMode,
    TransactionState,
    _sync,
    _waits_for_runs,
    current,
)


class Transaction(BaseTransaction):
    """A transaction used with ``with`` (or ``async with``, where the block's async runs
    are awaited, not waited for)."""

    def __enter__(self) -> Transaction:
        self._prepare()
        self.begin()
        self._token = current.set(self)
        return self

    def __exit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        try:
            if _waits_for_runs(error):
                for future in self._futures[self._first :]:
                    future.wait()
        except BaseException as waiting_error:
            self._exit(waiting_error)
            raise
        self._exit(error)

    async def __aenter__(self) -> Transaction:
        return self.__enter__()

    async def __aexit__(self, kind: Any, error: BaseException | None, traceback: Any) -> None:
        try:
            if _waits_for_runs(error):
                for future in self._futures[self._first :]:
                    await asyncio.wrap_future(future.settled)  # its final state; never raises
        except BaseException as waiting_error:
            self._exit(waiting_error)
            raise
        self._exit(error)

    def _exit(self, error: BaseException | None) -> None:
        if self._token is None:
            raise RuntimeError("Asymmetric use of context. Context exit called without an enter.")
        end = self._end_block(error)
        try:
            if end == "rollback":
                self.rollback()
            elif self.commit_mode is CommitMode.EAGER or end == "commit":
                self.commit()
        finally:  # a hook's SystemExit still leaves the context
            parent = self._unset()
        if parent is not None and self.is_rolled_back():
            parent.rollback()
        self.report_hook_errors(error)

    def begin(self) -> None:
        if self._serializable():
            self.store.acquire_lock(self.key, holder=self._holder)
        if not self.overwrite and self.store is not None and self.key:
            if self.store.exists(key=self.key):
                self.state = TransactionState.COMMITTED

    def read(self) -> Any:
        """The record committed under the key, from the store (None without one)."""
        if self.store is not None and self.key:
            return self.store.read(key=self.key, holder=self._holder)
        return None

    def commit(self) -> bool:
        """Commit the children, run the commit hooks, do the deferred work, and write the
        staged value to the store. An error in a child's commit or in the write rolls
        this back instead (a hook's error is only kept).

        Returns:
            True if this call committed it; False if it had already ended.
        """
        if self.state in _ENDED:
            self._release()
            return False
        try:
            for child in self.children:
                _sync(child.commit())
            self._finish_commit()
            return True
        except Exception:
            self.logger.exception(
                "An error was encountered while committing transaction %r", self.key
            )
            self.rollback()
            return False

    def _finish_commit(self) -> None:
        for hook in self._commit_hooks():
            self._call(hook, self)
        if self.write_on_commit:
            for action in self._deferred:
                self._call(action)
            if self.store is not None and self.key:
                self.store.write(key=self.key, obj=self._staged_value, holder=self._holder)
        self.state = TransactionState.COMMITTED
        self._release()

    def rollback(self) -> bool:
        """Run the rollback hooks, newest first, then roll back the children, newest
        first. A hook that raises does not stop the others: an Exception is kept in
        ``hook_errors``; a BaseException (SystemExit, KeyboardInterrupt) is raised again
        once every hook has run.

        Returns:
            True if this call rolled it back; False if it had already ended.
        """
        if self.state in _ENDED:
            return False
        first: BaseException | None = None
        try:
            for hook in self._rollback_hooks():
                try:
                    self._call(hook, self)
                except BaseException as error:  # not an Exception: _call keeps those
                    first = first or error
            self.state = TransactionState.ROLLED_BACK
            self._deferred.clear()
            for child in reversed(self.children):
                try:
                    _sync(child.rollback())
                except BaseException as error:
                    first = first or error
        finally:
            self._release()
        if first is not None:
            raise first
        return True


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
        try:
            if _waits_for_runs(error):
                for future in self._futures[self._first :]:
                    await asyncio.wrap_future(future.settled)
        except BaseException as waiting_error:
            await self._exit(waiting_error)
            raise
        await self._exit(error)

    async def _exit(self, error: BaseException | None) -> None:
        if self._token is None:
            raise RuntimeError("Asymmetric use of context. Context exit called without an enter.")
        end = self._end_block(error)
        try:
            if end == "rollback":
                await self.rollback()
            elif self.commit_mode is CommitMode.EAGER or end == "commit":
                await self.commit()
        finally:
            parent = self._unset()
        if parent is not None and self.is_rolled_back():
            await _async(parent.rollback())
        self.report_hook_errors(error)

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
        if self._serializable():
            await _async(_store_call(self.store, "acquire_lock", self.key, holder=self._holder))
        if not self.overwrite and self.store is not None and self.key:
            if await _async(_store_call(self.store, "exists", key=self.key)):
                self.state = TransactionState.COMMITTED

    async def read(self) -> Any:
        if self.store is not None and self.key:
            return await _async(_store_call(self.store, "read", key=self.key, holder=self._holder))
        return None

    async def commit(self) -> bool:
        """As ``Transaction.commit``, awaited."""
        if self.state in _ENDED:
            self._release()
            return False
        try:
            for child in self.children:
                await _async(child.commit())
            await asyncio.to_thread(self._finish_commit_sync_part)
            if self.write_on_commit and self.store is not None and self.key:
                await _async(
                    _store_call(
                        self.store,
                        "write",
                        key=self.key,
                        obj=self._staged_value,
                        holder=self._holder,
                    )  # fmt: skip
                )
            self.state = TransactionState.COMMITTED
            self._release()
            return True
        except Exception:
            self.logger.exception(
                "An error was encountered while committing transaction %r", self.key
            )
            await self.rollback()
            return False

    def _finish_commit_sync_part(self) -> None:
        for hook in self._commit_hooks():
            self._call(hook, self)
        if self.write_on_commit:
            for action in self._deferred:
                self._call(action)

    async def rollback(self) -> bool:
        """As ``Transaction.rollback``, awaited."""
        if self.state in _ENDED:
            return False
        first: BaseException | None = None
        try:
            for hook in self._rollback_hooks():
                try:
                    await asyncio.to_thread(self._call, hook, self)
                except BaseException as error:
                    first = first or error
            self.state = TransactionState.ROLLED_BACK
            self._deferred.clear()
            for child in reversed(self.children):
                try:
                    await _async(child.rollback())
                except BaseException as error:
                    first = first or error
        finally:
            self._release()
        if first is not None:
            raise first
        return True


def _store_call(store: Any, name: str, *args: Any, **kwargs: Any) -> Any:
    """Prefect's stores have ``aexists``/``aread``/``awrite``; use them when present."""
    method = getattr(store, f"a{name}", None) or getattr(store, name)
    return method(*args, **kwargs)


async def _async(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result

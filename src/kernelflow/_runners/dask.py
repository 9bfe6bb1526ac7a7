"""``DaskTaskRunner``: task bodies run on a Dask cluster (needs ``kernelflow[dask]``).

With no arguments an embedded ``distributed.LocalCluster`` is started on first use;
``address=`` connects to a running scheduler instead; ``cluster_class`` with
``cluster_kwargs`` and ``adapt_kwargs`` starts any other cluster, as in prefect-dask.
The client (and the cluster it started) is kept warm for the session, shared by every
runner with the same configuration, and closed when the interpreter exits.

Each call is one Dask task whose key names the run. Dask's scheduler handles worker
loss: a call whose worker dies is run again elsewhere, so the flow does not lose it;
only a call that keeps killing workers (``KilledWorker``) ends its run Crashed. A call
reports its start through a Dask event if it has a deadline or runs a while (a quick
one's start comes back in its reply), and lets go of its worker slot at its timeout or
when cancelled (``dask_worker.py``). How kernelflow starts a cluster, and checks that
it still has workers, is in ``dask_cluster.py``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any

from kernelflow._runners.dask_cluster import (
    check_address,
    cluster_options,
    distributed_module,
    has_workers,
    loopback_link,
    resolve_cluster_class,
)
from kernelflow._runners.dask_worker import STARTED_TOPIC, StartReports, run_on_dask
from kernelflow._runners.pool import Job
from kernelflow._runners.remote import (
    Backend,
    Outbound,
    RemoteTaskRunner,
    forget_backend,
    running_backend,
    warm_backend,
)
from kernelflow.exceptions import CrashedRun


class DaskTaskRunner(RemoteTaskRunner):
    """Runs task bodies on a Dask cluster: an embedded one, or one you point it to.

    Futures, states, retries, timeouts, caching and hooks behave as on the other
    runners: the run's lifecycle stays in the notebook and only the task's call goes to
    Dask (see ``kernelflow._runners.remote``). Functions, arguments and results travel
    with cloudpickle; the workers of a cluster you connect to need kernelflow installed
    (they run ``kernelflow._runners.dask_worker.run_on_dask``). A timed-out or
    cancelled call frees its worker slot at once; its body, if it never returns, is left
    running in a thread of that worker (Python cannot kill a thread).

    Args:
        address: A running scheduler, e.g. ``"tcp://127.0.0.1:8786"``. Not together
            with the cluster options.
        cluster_class: The cluster to start (a class, or its import path as a string);
            default ``distributed.LocalCluster``.
        cluster_kwargs: Keyword arguments for ``cluster_class``.
        adapt_kwargs: If given, ``cluster.adapt(**adapt_kwargs)`` (adaptive scaling).
        client_kwargs: Keyword arguments for ``distributed.Client``
            (``set_as_default`` is False unless you say otherwise).
    """

    def __init__(
        self,
        address: str | None = None,
        cluster_class: str | Callable[..., Any] | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        adapt_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if address is not None and (cluster_class or cluster_kwargs or adapt_kwargs):
            raise ValueError(
                "DaskTaskRunner: give either address= (an existing scheduler) or the cluster "
                "options (cluster_class, cluster_kwargs, adapt_kwargs), not both."
            )
        if address is not None:
            check_address(address)
        if cluster_class is not None and not (
            callable(cluster_class) or isinstance(cluster_class, str)
        ):
            raise TypeError(
                f"cluster_class must be a class or an import path, not {cluster_class!r}."
            )
        self.address = address
        self.cluster_class = cluster_class
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.adapt_kwargs = dict(adapt_kwargs) if adapt_kwargs is not None else None
        self.client_kwargs = dict(client_kwargs or {})
        self.client_kwargs.setdefault("set_as_default", False)

    def duplicate(self) -> DaskTaskRunner:
        return type(self)(
            self.address,
            self.cluster_class,
            self.cluster_kwargs,
            self.adapt_kwargs,
            self.client_kwargs,
        )

    def startup_message(self) -> str | None:
        if running_backend(self._config()) is not None:
            return None  # warm: entering takes no time
        if self.address is not None:
            return f"Connecting to the Dask scheduler at {self.address}..."
        given = self.cluster_class or "LocalCluster"  # named without importing it
        cluster = given.rpartition(".")[2] if isinstance(given, str) else given.__name__
        workers = self.cluster_kwargs.get("n_workers")
        size = f" with {workers} worker{'s' if workers != 1 else ''}" if workers else ""
        return f"Starting a Dask {cluster}{size}..."

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` (started by entering the runner)."""
        return self._open_backend().client  # type: ignore[attr-defined]

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address, if this configuration's cluster is running and
        has one (for displays: reading it never starts a cluster)."""
        backend = running_backend(self._config())
        try:
            link = backend.client.dashboard_link if backend else None  # type: ignore[attr-defined]
        except Exception:
            return None
        if not link or self.address is not None:
            return link
        options = cluster_options(resolve_cluster_class(self.cluster_class), self.cluster_kwargs)
        return loopback_link(link, options)

    def _config(self) -> tuple[Any, ...]:
        cluster_class = self.cluster_class
        if callable(cluster_class):
            cluster_class = f"{cluster_class.__module__}.{cluster_class.__qualname__}"
        return (
            "dask",
            self.address,
            cluster_class,
            repr(sorted(self.cluster_kwargs.items())),
            repr(self.adapt_kwargs),
            repr(sorted(self.client_kwargs.items())),
        )

    def _open_backend(self) -> Backend:
        distributed_module()
        backend = warm_backend(self._config(), self._start)
        alive = backend.client.status in ("running", "connecting")  # type: ignore[attr-defined]
        if not alive or not has_workers(backend, self.address, self.adapt_kwargs is not None):
            forget_backend(backend)  # the scheduler or its workers went away: start afresh
            backend = warm_backend(self._config(), self._start)
        backend.refresh()  # type: ignore[attr-defined]
        return backend

    def _start(self) -> _DaskBackend:
        distributed = distributed_module()
        cluster = None
        if self.address is None:
            cluster_class = resolve_cluster_class(self.cluster_class)
            cluster = cluster_class(**cluster_options(cluster_class, self.cluster_kwargs))
            if self.adapt_kwargs is not None:
                cluster.adapt(**self.adapt_kwargs)
        client = distributed.Client(self.address or cluster, **self.client_kwargs)
        return _DaskBackend(client, cluster)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        return self._config() == other._config()  # type: ignore[attr-defined]

    __hash__ = RemoteTaskRunner.__hash__

    def __repr__(self) -> str:
        where = (
            f"address={self.address!r}"
            if self.address
            else (f"cluster_class={self.cluster_class or 'LocalCluster'}")
        )
        return f"DaskTaskRunner({where})"


class _Call(Job):
    """A call on its way to Dask; the sending thread gives it its Dask future."""

    __slots__ = (
        "key",
        "future",
        "cancelled",
        "timeout",
        "timed",
        "address",
        "started_at",
        "ended_quietly",
    )

    def __init__(self, outbound: Outbound) -> None:
        super().__init__(0, outbound.fn_blob, outbound.arguments, outbound.started)
        self.key = outbound.key
        self.future: Any = None
        self.cancelled = False
        self.timeout = outbound.timeout
        self.timed = outbound.timed  # its start is reported at once (dask_worker.py)
        self.address: str | None = None  # its worker, once a start report named it
        self.started_at: float | None = None  # when its body started, from its reply
        self.ended_quietly = False  # a start report said it ended, unreported


class _DaskBackend(Backend):
    """Talks to Dask in batches, as ``client.map`` and ``client.gather`` do.

    One thread sends whatever calls queued up while it sent the previous batch, in one
    ``client.map`` (one graph update for the scheduler, not one per task); another
    gathers the replies of whatever finished meanwhile in one ``client.gather`` (one
    round trip per worker, not one per task), then hands each reply to its run.
    """

    stop_note = "Dask forgot its call and its worker slot was freed"

    def __init__(self, client: Any, cluster: Any) -> None:
        self.client = client
        self.cluster = cluster
        self._calls: dict[str, _Call] = {}  # by key: calls sent, their replies not handed on
        self._by_key: dict[str, _Call] = {}  # calls not yet reported started
        self._starts = StartReports(self._calls.get)
        self._capacity = 64
        self._queue: list[_Call] = []
        self._lock = threading.Lock()
        self._queued = threading.Event()
        self._sent = threading.Event()
        self._closed = False
        self._finished = distributed_module().as_completed(loop=client.loop)
        self._threads = [
            threading.Thread(target=loop, name=name, daemon=True)
            for loop, name in (
                (self._send_forever, "kernelflow-dask-send"),
                (self._gather_forever, "kernelflow-dask-gather"),
            )
        ]
        for thread in self._threads:
            thread.start()
        client.subscribe_topic(STARTED_TOPIC, self._started)

    def _started(self, event: tuple[float, dict[str, Any]]) -> None:
        """A worker began a call's body (called on the client's event loop)."""
        _, message = event
        call = self._by_key.pop(message["key"], None)
        if call is not None:
            self._starts.started(call, message["worker"], message["at"], message["after"])

    def refresh(self) -> None:
        """Size the number of calls kept at Dask to the cluster's threads (it may scale)."""
        threads = sum(self.client.nthreads().values())
        self._capacity = max(64, 16 * threads)

    def capacity(self) -> int:
        return self._capacity

    def submit(self, outbound: Outbound) -> _Call:
        call = _Call(outbound)
        with self._lock:
            self._queue.append(call)
            self._by_key[call.key] = call
        self._queued.set()
        return call

    def on_done(self, handle: _Call, callback: Callable[[], None]) -> None:
        handle.on_done(callback)

    def reply(self, handle: _Call) -> bytes:
        return handle.result()

    def cancel(self, handle: _Call) -> None:
        handle.cancelled = True
        self._by_key.pop(handle.key, None)
        handle.settle(error=CancelledError())
        self._starts.ended(handle)
        if handle.future is not None:
            try:
                self.client.cancel(handle.future)
            except Exception:  # the cluster may be gone already
                pass

    def close(self) -> None:
        self._closed = True
        self._queued.set()
        self._sent.set()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        for thread in self._threads:
            thread.join(5)

    def _send_forever(self) -> None:
        while self._queued.wait() and not self._closed:
            self._queued.clear()
            with self._lock:
                calls, self._queue = [c for c in self._queue if not c.cancelled], []
            if not calls:
                continue
            try:
                futures = self.client.map(
                    run_on_dask,
                    [c.fn_blob for c in calls],
                    [c.arguments for c in calls],
                    [c.key for c in calls],
                    [c.timeout for c in calls],
                    [c.timed for c in calls],
                    key=[c.key for c in calls],
                    pure=False,
                )
            except Exception as error:  # the cluster is gone: fail these calls, never hang
                for call in calls:
                    call.settle(error=_lost(error))
                continue
            for call, future in zip(calls, futures, strict=True):
                call.future = future
                self._calls[future.key] = call
            self._finished.update(futures)
            self._sent.set()

    def _gather_forever(self) -> None:
        while not self._closed:
            try:
                batch = self._finished.next_batch(block=True)
            except StopIteration:  # nothing away: wait for the next batch to be sent
                self._sent.wait()
                self._sent.clear()
                continue
            except Exception:
                if self._closed:
                    return
                raise
            self._deliver(batch)

    def _deliver(self, futures: list[Any]) -> None:
        finished = [f for f in futures if f.status == "finished"]
        try:
            replies = self.client.gather(finished) if finished else []
        except Exception:  # data lost meanwhile: take them one by one
            replies = [_one_reply(f) for f in finished]
        outcomes = {f.key: reply for f, reply in zip(finished, replies, strict=True)}
        # In the order their bodies started: a run whose start came in its reply shows
        # Running as it is settled, after the one before it on its worker has ended.
        futures = sorted(futures, key=lambda f: _started_at(outcomes.get(f.key)))
        for future in futures:
            call = self._calls.pop(future.key, None)
            if call is None:
                continue
            self._by_key.pop(call.key, None)
            reply, error = outcomes.get(future.key), None
            if isinstance(reply, BaseException):
                reply, error = None, reply
            elif reply is not None:
                reply, _, call.started_at, call.ended_at = reply
            if reply is None and error is None:
                error = _failure(future)
            call.settle(reply, error)
            self._starts.ended(call)


def _started_at(reply: Any) -> float:
    return reply[2] if isinstance(reply, tuple) else 0.0


def _one_reply(future: Any) -> Any:
    try:
        return future.result()
    except BaseException as error:
        return _lost(error)


def _failure(future: Any) -> BaseException:
    if future.status == "cancelled":
        return CancelledError()
    try:
        error = future.exception()
    except BaseException as own:
        error = own
    return _lost(error)


def _lost(error: BaseException) -> CrashedRun:
    return CrashedRun(
        f"Dask could not run this task ({type(error).__name__}: {error}). A task that "
        "keeps killing its workers ends like this: see the workers' logs."
    )

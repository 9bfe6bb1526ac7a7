"""``DaskTaskRunner``: task bodies run on a Dask cluster (needs ``kernelflow[dask]``).

With no arguments an embedded ``distributed.LocalCluster`` is started on first use;
``address=`` connects to a running scheduler instead; ``cluster_class`` with
``cluster_kwargs`` and ``adapt_kwargs`` starts any other cluster, as in prefect-dask.
The client (and the cluster it started) is kept warm for the session, shared by every
runner with the same configuration, and closed when the interpreter exits.

Each call is one Dask task whose key names the run. Dask's scheduler handles worker
loss: a call whose worker dies is run again elsewhere, so the flow does not lose it;
only a call that keeps killing workers (``KilledWorker``) ends its run Crashed. A call
reports its start through a Dask event, and lets go of its worker slot at its timeout
or when cancelled (``dask_worker.py``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable
from concurrent.futures import CancelledError
from typing import Any
from urllib.parse import urlsplit

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
from kernelflow.exceptions import CrashedRun, InvalidOptionError

_WORKER_SETUP = "kernelflow._runners.dask_preload"
_LOOPBACK = "127.0.0.1"
_WORKER_WAIT = 10.0  # seconds a scheduler of the user's may take to get its first worker
_logger = logging.getLogger("kernelflow.task_runner")


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ImportError(
            "DaskTaskRunner needs the 'distributed' package. Install it with: "
            "pip install 'kernelflow[dask]'"
        ) from error
    return distributed


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
            _check_address(address)
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
        dashboard = self._cluster_kwargs(self._cluster_class()).get("dashboard_address")
        if isinstance(dashboard, str) and dashboard.startswith(_LOOPBACK + ":"):
            # Dask names the machine's address, where a loopback-only dashboard is not.
            link = urlsplit(link)._replace(netloc=f"{_LOOPBACK}:{urlsplit(link).port}").geturl()
        return link

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
        _distributed()
        backend = warm_backend(self._config(), self._start)
        if backend.client.status not in ("running", "connecting") or not self._has_workers(  # type: ignore[attr-defined]
            backend
        ):
            forget_backend(backend)  # the scheduler or its workers went away: start afresh
            backend = warm_backend(self._config(), self._start)
        backend.refresh()  # type: ignore[attr-defined]
        return backend

    def _has_workers(self, backend: Any) -> bool:
        """False for a cluster kernelflow started that has lost all its workers (it is
        then closed, to be replaced); an error for a scheduler of yours with none, where
        calls would otherwise wait without a word."""
        client = backend.client
        if self.adapt_kwargs is not None or client.status != "running" or client.nthreads():
            return True  # an adaptive cluster scales up from zero when calls arrive
        if backend.cluster is None:
            try:
                client.wait_for_workers(1, timeout=_WORKER_WAIT)
                return True
            except Exception:
                raise CrashedRun(
                    f"The Dask scheduler at {self.address} has no workers, so no task can "
                    f"run there (waited {_WORKER_WAIT:.0f} s). Start some (for example "
                    f"`dask worker {self.address}`) and run the flow again."
                ) from None
        _logger.warning(
            "The Dask cluster kernelflow started for this session has lost all its workers "
            "(something stopped them); starting a new cluster."
        )
        threading.Thread(target=backend.close, name="kernelflow-dask-close", daemon=True).start()
        return False

    def _start(self) -> _DaskBackend:
        distributed = _distributed()
        cluster = None
        if self.address is None:
            cluster_class = self._cluster_class()
            cluster = cluster_class(**self._cluster_kwargs(cluster_class))
            if self.adapt_kwargs is not None:
                cluster.adapt(**self.adapt_kwargs)
        client = distributed.Client(self.address or cluster, **self.client_kwargs)
        return _DaskBackend(client, cluster)

    def _cluster_class(self) -> Any:
        cluster_class = self.cluster_class or _distributed().LocalCluster
        if isinstance(cluster_class, str):
            module, _, name = cluster_class.rpartition(".")
            cluster_class = getattr(importlib.import_module(module), name)
        return cluster_class

    def _cluster_kwargs(self, cluster_class: Any) -> dict[str, Any]:
        """The user's cluster options; for a ``LocalCluster``, safe defaults under them.

        Its worker processes ignore the kernel's interrupts (see ``dask_preload``). Unless
        told otherwise it listens on the loopback interface only (Dask's defaults put
        the dashboard, and an in-process worker's HTTP server, on every interface), and
        its scheduler and workers talk TLS with a key made for this cluster alone, so
        another user of the same machine cannot connect and run code as you.
        """
        kwargs = dict(self.cluster_kwargs)
        if not (
            isinstance(cluster_class, type)
            and issubclass(cluster_class, _distributed().LocalCluster)
        ):
            return kwargs
        kwargs["preload"] = [*kwargs.get("preload", ()), _WORKER_SETUP]
        if kwargs.get("processes", True):  # in-process (inproc://) has no network to guard
            if not {"host", "ip", "interface"} & kwargs.keys():
                kwargs["host"] = _LOOPBACK
            if "security" not in kwargs:
                kwargs["security"] = _can_make_keys()  # True: distributed's Security.temporary()
        else:
            kwargs.setdefault("worker_dashboard_address", ":0")
        for name in ("dashboard_address", "worker_dashboard_address"):
            address = kwargs.get(name, ":8787" if name == "dashboard_address" else None)
            if isinstance(address, str) and address.startswith(":"):
                kwargs[name] = _LOOPBACK + address
        return kwargs

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

    __slots__ = ("key", "future", "cancelled", "timeout", "address")

    def __init__(self, outbound: Outbound) -> None:
        super().__init__(0, outbound.fn_blob, outbound.arguments, outbound.started)
        self.key = outbound.key
        self.future: Any = None
        self.cancelled = False
        self.timeout = outbound.timeout
        self.address: str | None = None  # the worker that reported starting it


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
        self._by_key: dict[str, _Call] = {}  # calls not yet reported started
        self._starts = StartReports()
        self._capacity = 64
        self._queue: list[_Call] = []
        self._lock = threading.Lock()
        self._queued = threading.Event()
        self._sent = threading.Event()
        self._closed = False
        self._calls: dict[str, _Call] = {}
        self._finished = _distributed().as_completed(loop=client.loop)
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
            self._starts.started(call, message["worker"], message["at"])

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
        outcomes = {f.key: (reply, None) for f, reply in zip(finished, replies, strict=True)}
        for future in futures:
            call = self._calls.pop(future.key, None)
            if call is None:
                continue
            self._by_key.pop(call.key, None)
            reply, error = outcomes.get(future.key, (None, None))
            if isinstance(reply, BaseException):
                reply, error = None, reply
            elif reply is not None:
                reply, call.ended_at = reply
            if reply is None and error is None:
                error = _failure(future)
            call.settle(reply, error)
            self._starts.ended(call)


_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")


def _check_address(address: Any) -> None:
    """Refuse a scheduler address Dask could not use, before a client tries it (a bad
    port failed deep inside Dask, and the client then held up the interpreter's exit)."""
    scheme, _, location = str(address).rpartition("://")
    host, _, port = location.rpartition(":")
    if isinstance(address, str) and scheme == "inproc":
        return
    if (
        isinstance(address, str)
        and scheme in ("", *_SCHEMES)
        and host
        and port.isdigit()
        and 0 < int(port) < 65536
    ):
        return
    raise InvalidOptionError(
        f"DaskTaskRunner(address={address!r}) is not a scheduler address: give it as "
        "'tcp://host:port' (for example 'tcp://127.0.0.1:8786', as `dask scheduler` "
        "prints it), or leave address out to start a local cluster."
    )


def _can_make_keys() -> bool:
    if importlib.util.find_spec("cryptography") is not None:
        return True
    _logger.warning(
        "The Dask cluster starts without TLS: other users of this machine could connect to "
        "it. Install 'cryptography' (pip install 'kernelflow[dask]') to make it private."
    )
    return False


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

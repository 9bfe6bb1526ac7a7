"""The Dask cluster a ``DaskTaskRunner`` uses: how kernelflow starts one, and checks it.

A scheduler runs whatever code it is sent, as the user who started it, so the
``LocalCluster`` kernelflow starts for you is made private under your options: it
listens on the loopback interface only (Dask's defaults put the dashboard, and an
in-process worker's HTTP server, on every interface), its scheduler and workers talk TLS
with a key made for it alone (so another user of the machine cannot connect), and its
worker processes ignore the kernel's interrupts (``dask_preload``). A cluster that has
lost all its workers is noticed before calls are sent to it.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from kernelflow.exceptions import CrashedRun, InvalidOptionError

WORKER_SETUP = "kernelflow._runners.dask_preload"
LOOPBACK = "127.0.0.1"
WORKER_WAIT = 10.0  # seconds a scheduler of the user's may take to get its first worker
_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")
_logger = logging.getLogger("kernelflow.task_runner")


def distributed_module() -> Any:
    try:
        import distributed
    except ImportError as error:
        raise ImportError(
            "DaskTaskRunner needs the 'distributed' package. Install it with: "
            "pip install 'kernelflow[dask]'"
        ) from error
    return distributed


def check_address(address: Any) -> None:
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


def resolve_cluster_class(cluster_class: str | Callable[..., Any] | None) -> Any:
    """The cluster class to start: given, imported from its path, or ``LocalCluster``."""
    cluster_class = cluster_class or distributed_module().LocalCluster
    if isinstance(cluster_class, str):
        module, _, name = cluster_class.rpartition(".")
        cluster_class = getattr(importlib.import_module(module), name)
    return cluster_class


def cluster_options(cluster_class: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The user's cluster options; for a ``LocalCluster``, the safe defaults under them
    (see the module docstring)."""
    kwargs = dict(given)
    local = distributed_module().LocalCluster
    if not (isinstance(cluster_class, type) and issubclass(cluster_class, local)):
        return kwargs
    kwargs["preload"] = [*kwargs.get("preload", ()), WORKER_SETUP]
    if kwargs.get("processes", True):  # in-process (inproc://) has no network to guard
        if not {"host", "ip", "interface"} & kwargs.keys():
            kwargs["host"] = LOOPBACK
        if "security" not in kwargs:
            kwargs["security"] = _can_make_keys()  # True: distributed's Security.temporary()
    else:
        kwargs.setdefault("worker_dashboard_address", ":0")
    for name in ("dashboard_address", "worker_dashboard_address"):
        address = kwargs.get(name, ":8787" if name == "dashboard_address" else None)
        if isinstance(address, str) and address.startswith(":"):
            kwargs[name] = LOOPBACK + address
    return kwargs


def loopback_link(link: str, options: dict[str, Any]) -> str:
    """Dask names the machine's address in the dashboard link, where a loopback-only
    dashboard is not: the link with 127.0.0.1 then."""
    dashboard = options.get("dashboard_address")
    if isinstance(dashboard, str) and dashboard.startswith(LOOPBACK + ":"):
        return urlsplit(link)._replace(netloc=f"{LOOPBACK}:{urlsplit(link).port}").geturl()
    return link


def has_workers(backend: Any, address: str | None, adaptive: bool) -> bool:
    """False for a cluster kernelflow started that has lost all its workers (it is then
    closed, to be replaced); ``CrashedRun`` for a scheduler of the user's with none,
    where calls would otherwise wait without a word."""
    client = backend.client
    if adaptive or client.status != "running" or client.nthreads():
        return True  # an adaptive cluster scales up from zero when calls arrive
    if backend.cluster is None:
        try:
            client.wait_for_workers(1, timeout=WORKER_WAIT)
            return True
        except Exception:
            raise CrashedRun(
                f"The Dask scheduler at {address} has no workers, so no task can run there "
                f"(waited {WORKER_WAIT:.0f} s). Start some (for example "
                f"`dask worker {address}`) and run the flow again."
            ) from None
    _logger.warning(
        "The Dask cluster kernelflow started for this session has lost all its workers "
        "(something stopped them); starting a new cluster."
    )
    threading.Thread(target=backend.close, name="kernelflow-dask-close", daemon=True).start()
    return False


def _can_make_keys() -> bool:
    if importlib.util.find_spec("cryptography") is not None:
        return True
    _logger.warning(
        "The Dask cluster starts without TLS: other users of this machine could connect to "
        "it. Install 'cryptography' (pip install 'kernelflow[dask]') to make it private."
    )
    return False

"""Concurrency and rate limits in tasks on a real Dask cluster (a scheduler and two
worker processes on 127.0.0.1): the cluster's semaphores bound them across workers."""

from __future__ import annotations

import time

import pytest

distributed = pytest.importorskip("distributed")

from kernelflow import flow, task  # noqa: E402
from kernelflow._runners.remote import close_warm_backends  # noqa: E402
from kernelflow.concurrency import set_limit  # noqa: E402
from kernelflow.concurrency.sync import concurrency, rate_limit  # noqa: E402
from kernelflow.task_runners import DaskTaskRunner  # noqa: E402
from tests.test_concurrency import most_at_once  # noqa: E402
from tests.test_dask_runner import STARTUP_SECONDS, _free_port, _start, _stop  # noqa: E402


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A scheduler and two workers with two threads each, sharing a KERNELFLOW_HOME."""
    home = str(tmp_path_factory.mktemp("dask-home"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KERNELFLOW_HOME", home)  # the worker processes inherit it
        processes = [
            _start(
                "distributed.cli.dask_scheduler",
                *("--host", "127.0.0.1", "--port", str(port), "--no-dashboard"),
            )
        ]
        try:
            for _ in range(2):
                processes.append(
                    _start(
                        "distributed.cli.dask_worker",
                        address,
                        *("--host", "127.0.0.1", "--nthreads", "2"),
                        *("--no-nanny", "--no-dashboard"),
                    )
                )
            with distributed.Client(address, timeout=STARTUP_SECONDS) as client:
                client.wait_for_workers(2, timeout=STARTUP_SECONDS)
            yield address, home
        finally:
            close_warm_backends()
            for process in reversed(processes):
                _stop(process)


@task
def guarded(i: int) -> tuple[float, float, str]:
    with concurrency("dask-db"):
        start = time.time()
        time.sleep(0.3)
        return start, time.time(), distributed.get_worker().address


def test_concurrency_bounds_task_runs_across_dask_workers(cluster, monkeypatch):
    address, home = cluster
    monkeypatch.setenv("KERNELFLOW_HOME", home)
    set_limit("dask-db", limit=2)

    @flow(task_runner=DaskTaskRunner(address=address))
    def bounded() -> list:
        return guarded.map(range(8)).result()

    runs = bounded()
    assert len({worker for _, _, worker in runs}) == 2  # both workers took part
    assert most_at_once([(start, end) for start, end, _ in runs]) == 2  # of 4 threads
    with distributed.Client(address, timeout=STARTUP_SECONDS) as client:
        semaphores = client.run_on_scheduler(
            lambda dask_scheduler: dict(dask_scheduler.extensions["semaphores"].max_leases)
        )
    assert semaphores.get("kernelflow-concurrency-dask-db") == 2  # the cluster's semaphore


@task
def paced(i: int) -> float:
    rate_limit("dask-api")
    return time.time()


def test_rate_limit_paces_task_runs_across_dask_workers(cluster, monkeypatch):
    address, home = cluster
    monkeypatch.setenv("KERNELFLOW_HOME", home)
    set_limit("dask-api", limit=1, slot_decay_per_second=5)

    @flow(task_runner=DaskTaskRunner(address=address))
    def pacing() -> list[float]:
        return paced.map(range(5)).result()

    times = sorted(pacing())
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.17 for gap in gaps), gaps  # one slot back every 0.2 s

"""The Dask cluster kernelflow starts for you: private to you, and still there after the
Stop button.

Real clusters throughout: a LocalCluster with worker processes, sockets read from the
operating system, a real kernel interrupted as JupyterLab interrupts it.
"""

from __future__ import annotations

import logging
import time

import psutil
import pytest

distributed = pytest.importorskip("distributed")

from kernelflow import flow, task  # noqa: E402
from kernelflow._runners import dask_cluster  # noqa: E402
from kernelflow._runners.remote import close_warm_backends  # noqa: E402
from kernelflow.exceptions import CrashedRun, InvalidOptionError  # noqa: E402
from kernelflow.task_runners import DaskTaskRunner  # noqa: E402
from tests.kernel import RealKernel  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_clusters():
    yield
    close_warm_backends()


@task
def plus_one(x: int) -> int:
    return x + 1


def _listening(process: psutil.Process) -> set[str]:
    """The addresses the process and its children listen on, as 'ip:port'."""
    addresses = set()
    for proc in [process, *process.children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                addresses.add(f"{conn.laddr.ip}:{conn.laddr.port}")
    return addresses


def _run_on(runner: DaskTaskRunner) -> int:
    @flow(task_runner=runner)
    def one() -> int:
        return plus_one.submit(1).result()

    return one()


def test_the_default_cluster_listens_on_loopback_only_and_demands_its_key():
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 1})
    assert _run_on(runner) == 2

    listening = _listening(psutil.Process())
    assert listening, "the cluster should be listening somewhere"
    assert all(address.startswith("127.0.0.1:") for address in listening), listening
    scheduler = runner.client.scheduler.address
    assert scheduler.startswith("tls://127.0.0.1:")
    assert runner.dashboard_link.startswith("http://127.0.0.1:")

    # Someone else on this machine, without the cluster's key, cannot get in.
    with pytest.raises(Exception):  # noqa: B017 (TLS refusal or timeout: either way, no)
        distributed.Client(scheduler.replace("tls://", "tcp://"), timeout="3s")
    with pytest.raises(Exception):  # noqa: B017
        distributed.Client(scheduler, timeout="3s")


def test_an_in_process_cluster_listens_on_loopback_only():
    runner = DaskTaskRunner(
        cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": ":0"}
    )
    assert _run_on(runner) == 2
    listening = _listening(psutil.Process())
    assert all(address.startswith("127.0.0.1:") for address in listening), listening
    assert runner.dashboard_link.startswith("http://127.0.0.1:")


def test_options_you_give_win_over_the_safe_defaults():
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "security": None})
    assert _run_on(runner) == 2
    assert runner.client.scheduler.address.startswith("tcp://127.0.0.1:")


def test_a_cluster_that_lost_all_its_workers_is_replaced(caplog):
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 1})
    assert _run_on(runner) == 2
    client = runner.client
    client.cluster.scale(0)
    deadline = time.monotonic() + 30
    while client.nthreads() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not client.nthreads()

    with caplog.at_level(logging.WARNING, logger="kernelflow"):
        started = time.monotonic()
        assert _run_on(runner) == 2
    assert time.monotonic() - started < 60
    assert "lost all its workers" in caplog.text
    assert runner.client is not client


def test_a_scheduler_of_yours_without_workers_fails_the_flow_with_a_message(monkeypatch):
    monkeypatch.setattr(dask_cluster, "WORKER_WAIT", 1.0)
    cluster = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None)
    try:
        runner = DaskTaskRunner(address=cluster.scheduler_address)
        with pytest.raises(CrashedRun, match="has no workers.*dask worker"):
            _run_on(runner)
    finally:
        close_warm_backends()
        cluster.close()


@pytest.mark.kernel
def test_the_stop_button_leaves_the_clusters_workers_running(tmp_path):
    setup = """
    import os
    from kernelflow import flow, task
    from kernelflow.task_runners import DaskTaskRunner

    @task
    def plus_one(x):
        return x + 1

    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1})

    @flow(task_runner=runner)
    def one():
        return plus_one.submit(1).result()

    def workers():
        return sorted(runner.client.run(os.getpid).values())

    print(one(), *workers())
    """
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        result, *pids = kernel.execute(setup).stdout.split()
        assert result == "2" and len(pids) == 2
        # A cell that never touches kernelflow, stopped as JupyterLab stops it: SIGINT
        # to the kernel's whole process group.
        waiting = kernel.execute_async("import time; print('sleeping', flush=True); time.sleep(60)")
        kernel.wait_for_stream(waiting, "sleeping")
        kernel.interrupt()
        assert kernel.wait_reply(waiting, timeout=30).status == "error"

        time.sleep(2)  # workers that took the signal would be gone (or replaced) by now
        after = kernel.execute(
            "t = time.monotonic(); r = one()\nprint(r, round(time.monotonic() - t, 1), *workers())",
            timeout=60,
        )
        result, seconds, *pids_after = after.stdout.split()
        assert result == "2" and float(seconds) < 5
        assert pids_after == pids  # the same processes: none was stopped and restarted


@pytest.mark.parametrize(
    "address", ["tcp://localhost:87a6", "tcp://localhost", "localhost:99999", "http://x:1", ""]
)
def test_a_malformed_scheduler_address_is_refused_at_once(address):
    started = time.monotonic()
    with pytest.raises(InvalidOptionError, match="is not a scheduler address.*tcp://host:port"):
        DaskTaskRunner(address=address)
    assert time.monotonic() - started < 1


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "scheduler:8786", "tls://[::1]:1"])
def test_well_formed_addresses_are_accepted(address):
    assert DaskTaskRunner(address=address).address == address

"""DaskTaskRunner against a real cluster: a `dask scheduler` and two `dask worker`
processes on 127.0.0.1 (free ports, bounded waits, all stopped at the end)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

from kernelflow import flow, task  # noqa: E402
from kernelflow._runners import background  # noqa: E402
from kernelflow._runners.remote import close_warm_backends  # noqa: E402
from kernelflow.futures import as_completed  # noqa: E402
from kernelflow.task_runners import DaskTaskRunner  # noqa: E402

STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C in the test terminal must not reach them
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two single-threaded workers (no nanny: a killed worker stays dead)."""
    address = f"tcp://127.0.0.1:{_free_port()}"
    port = address.rsplit(":", 1)[1]
    processes = [
        _start(
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            port,
            "--no-dashboard",
        )
    ]
    try:
        for _ in range(2):
            processes.append(
                _start(
                    "distributed.cli.dask_worker",
                    address,
                    "--host",
                    "127.0.0.1",
                    "--nthreads",
                    "1",
                    "--no-nanny",
                    "--no-dashboard",
                )
            )
        with distributed.Client(address, timeout=STARTUP_SECONDS) as client:
            client.wait_for_workers(2, timeout=STARTUP_SECONDS)
        yield address, processes[1:]
    finally:
        close_warm_backends()
        for process in reversed(processes):
            _stop(process)


@task
def slow_square(x: int) -> tuple[int, str]:
    time.sleep(0.3)
    return x * x, distributed.get_worker().address


def test_a_worker_killed_mid_flow_does_not_lose_the_flow(cluster):
    address, worker_processes = cluster
    victim = worker_processes[0]
    killed_while_running = []

    @flow(task_runner=DaskTaskRunner(address=address))
    def squares(n: int) -> list[int]:
        futures = slow_square.map(range(n))
        for done, _ in enumerate(as_completed(futures, timeout=120)):
            if done == 2:
                killed_while_running.append(sum(not f.done() for f in futures))
                os.kill(victim.pid, signal.SIGKILL)
        return [value for value, _ in futures.result()]

    start = time.monotonic()
    assert squares(12) == [x * x for x in range(12)]
    assert killed_while_running and killed_while_running[0] > 0  # truly mid-flow
    assert victim.wait(10) == -signal.SIGKILL
    assert time.monotonic() - start < 120

    # The warm client still works with the surviving worker.
    @flow(task_runner=DaskTaskRunner(address=address))
    def again() -> list[int]:
        return [value for value, _ in slow_square.map(range(3)).result()]

    assert again() == [0, 1, 4]


def test_runs_record_the_dask_worker_and_states(cluster):
    address, _ = cluster

    @flow(task_runner=DaskTaskRunner(address=address))
    def one():
        return slow_square.submit(3)

    state = one(return_state=True)
    value, worker = state.result().result()  # a returned future gives its State (Prefect)
    from kernelflow import last_run

    run = last_run().task_runs[0]
    assert value == 9 and run.worker == worker and worker.startswith("tcp://127.0.0.1:")
    assert [s.name for s in run.history] == ["Pending", "Running", "Completed"]


def test_delay_outside_a_flow_runs_on_the_configured_dask_scheduler(cluster, monkeypatch):
    address, _ = cluster
    monkeypatch.setenv(background.DASK_ADDRESS_VARIABLE, address)
    monkeypatch.setattr(background, "_runner", None)
    try:
        runner = background.background_runner()
        assert isinstance(runner, DaskTaskRunner) and runner.address == address
        future = slow_square.delay(4)
        assert future.result(timeout=60)[0] == 16
        assert future.task_run.worker.startswith("tcp://127.0.0.1:")
        assert slow_square.apply_async((5,)).result(timeout=60)[0] == 25
    finally:
        runner.__exit__(None, None, None)
        monkeypatch.setattr(background, "_runner", None)


def test_missing_distributed_gives_a_fix_it_message(monkeypatch):
    from kernelflow._runners import dask as dask_module

    monkeypatch.setitem(sys.modules, "distributed", None)  # import now fails
    with pytest.raises(ImportError, match=r"kernelflow\[dask\]"):
        dask_module.distributed_module()


def test_cluster_class_by_import_path_with_adaptive_scaling():
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 1, "processes": False, "dashboard_address": ":0"},
        adapt_kwargs={"minimum": 1, "maximum": 1},
    )

    @flow(task_runner=runner)
    def adaptive():
        return [value for value, _ in slow_square.map(range(3)).result()]

    try:
        assert runner.dashboard_link is None  # reading it starts no cluster
        assert adaptive() == [0, 1, 4]
        assert runner.dashboard_link.startswith("http")
        # The finished flow run's display says where the dashboard was (a link while it ran).
        from kernelflow import last_run
        from kernelflow.notebook._snapshot import flow_header_html

        header = flow_header_html(last_run())
        assert f"Dask dashboard was at <code>{runner.dashboard_link}</code>" in header
        # While its cluster started, the run said so (its display shows it meanwhile);
        # the next run, on the warm cluster, waits for nothing.
        first = [(s.name, s.message) for s in last_run().history[:3]]
        assert first == [
            ("Pending", None),
            ("Pending", "Starting a Dask LocalCluster with 1 worker..."),
            ("Running", None),
        ]
        assert adaptive() == [0, 1, 4]
        assert [s.name for s in last_run().history] == ["Pending", "Running", "Completed"]
    finally:
        close_warm_backends()

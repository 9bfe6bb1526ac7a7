"""The process runner in a real IPython kernel: cell-defined tasks, closures and classes
travel to worker processes, their prints land in the cell, and an interrupt stops a
flow at once, leaving the runner usable."""

from __future__ import annotations

import json
import time

import pytest

from tests.kernel import RealKernel
from tests.processes import gone

pytestmark = pytest.mark.kernel

DEFINE = """
import os, time
from kernelflow import flow, task
from kernelflow.task_runners import ProcessPoolTaskRunner

class Point:                      # a class defined in a cell
    def __init__(self, x):
        self.x = x

scale = 10                        # a notebook global the task reads

@task
def scaled(x):
    print(f"scaling {x} in {os.getpid()}")
    return Point(x * scale)

@task
def sleepy(_):
    time.sleep(60)

runner = ProcessPoolTaskRunner(max_workers=2)

@flow(task_runner=runner)
def points(n):
    return [p.x for p in scaled.map(range(n)).result()]

@flow(task_runner=runner)
def stuck():
    return sleepy.map(range(2)).result()
"""

PIDS = """
import json
from kernelflow._runners.remote import _warm
print(json.dumps([pid for backend in _warm.values() for pid in backend.pool.pids]))
"""


def test_cell_defined_tasks_run_in_processes_and_interrupts_stop_at_once(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(DEFINE)
        reply = kernel.execute("print(points(4)); print('kernel', os.getpid())")
        assert "[0, 10, 20, 30]" in reply.stdout
        kernel_pid = reply.stdout.split("kernel ")[1].split()[0]
        assert reply.stdout.count("scaling") == 4
        assert f"in {kernel_pid}" not in reply.stdout  # ran in worker processes

        msg_id = kernel.execute_async("stuck()")
        time.sleep(3)
        start = time.monotonic()
        kernel.interrupt()
        interrupted = kernel.wait_reply(msg_id, timeout=30)
        assert interrupted.status == "error"
        assert interrupted.error["ename"] == "KeyboardInterrupt"
        assert time.monotonic() - start < 10

        again = kernel.execute("print(points(3))")  # same runner, next cell: works
        assert "[0, 10, 20]" in again.stdout
        pids = json.loads(kernel.execute(PIDS).stdout)
        assert len(pids) == 2
    # The kernel was killed outright: its workers see their pipes close and exit.
    assert gone(pids, timeout=20)


DASK_CELLS = """
import time
from kernelflow import flow, task
from kernelflow.task_runners import DaskTaskRunner

@task
def cube(x):
    print(f"cubing {x}")
    return x ** 3

@flow(task_runner=DaskTaskRunner(cluster_kwargs={
    "n_workers": 1, "threads_per_worker": 2, "dashboard_address": ":0"}))
def cubes(n):
    return cube.map(range(n)).result()
"""


def test_dask_runner_in_a_notebook_stays_warm_across_cells(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(DASK_CELLS)
        first = kernel.execute(
            "t = time.perf_counter(); print(cubes(4)); print('took', time.perf_counter() - t)"
        )
        assert "[0, 1, 8, 27]" in first.stdout and first.stdout.count("cubing") == 4
        second = kernel.execute(
            "t = time.perf_counter(); print(cubes(3)); print('took', time.perf_counter() - t)"
        )
        assert "[0, 1, 8]" in second.stdout
        took = [float(out.stdout.split("took ")[1]) for out in (first, second)]
        assert took[1] < took[0]  # no new cluster for the second cell

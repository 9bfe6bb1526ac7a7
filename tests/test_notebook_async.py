"""Async flows, event loops and interrupts in a real IPython kernel (jupyter_client)."""

import time

import pytest

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel

DEFINITIONS = """
import asyncio, time
import kernelflow
from kernelflow import flow, task

@task
async def nap(seconds, value):
    await asyncio.sleep(seconds)
    return value

@task
def slow(seconds):
    time.sleep(seconds)
    return seconds
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    home = tmp_path_factory.mktemp("kernelflow-home")
    with RealKernel(env={"KERNELFLOW_HOME": str(home)}) as k:
        k.execute(DEFINITIONS)
        yield k


def test_sync_flow_with_async_tasks_in_a_cell(kernel):
    reply = kernel.execute(
        """
@flow
def sync_flow():
    return [nap(0.01, 1), nap.submit(0.01, 2).result()]

sync_flow()
"""
    )
    assert reply.data("text/plain") == ["[1, 2]"]


def test_await_an_async_flow_in_a_cell_runs_on_the_kernel_loop(kernel):
    reply = kernel.execute(
        """
@task
async def loop_of_task():
    await asyncio.sleep(0.2)
    return asyncio.get_running_loop()

@flow
async def async_flow():
    futures = [loop_of_task.submit() for _ in range(10)]
    return [await f for f in futures]

started = time.perf_counter()
loops = await async_flow()
elapsed = time.perf_counter() - started
(all(l is asyncio.get_running_loop() for l in loops), elapsed < 1.0)
"""
    )
    assert reply.data("text/plain") == ["(True, True)"]


def test_loop_bound_objects_from_earlier_cells_work_inside_async_tasks(kernel):
    kernel.execute(
        """
kernel_loop = asyncio.get_running_loop()
gate = asyncio.Event()            # bound to the kernel's loop when used
queue = asyncio.Queue()
signal = kernel_loop.create_future()
"""
    )
    reply = kernel.execute(
        """
@task
async def uses_loop_objects():
    kernel_loop.call_later(0.05, signal.set_result, "from the kernel loop")
    await queue.put("item")
    gate.set()
    await gate.wait()
    return await signal, await queue.get()

@flow
def sync_flow_in_cell():
    return uses_loop_objects()

sync_flow_in_cell()
"""
    )
    assert reply.data("text/plain") == ["('from the kernel loop', 'item')"]
    assert kernel.execute("import sys; 'nest_asyncio2' in sys.modules").data("text/plain") == [
        "True"
    ]


def test_rerunning_the_same_cell(kernel):
    cell = """
@flow
def again(n: int):
    return sum(slow.map([0.01] * n).result()) + nap(0, 1)

again(3)
"""
    outputs = [kernel.execute(cell).data("text/plain") for _ in range(4)]
    assert outputs == [["1.03"]] * 4
    reply = kernel.execute("[r.state.name for r in kernelflow.runs()[-4:]]")
    assert reply.data("text/plain") == ["['Completed', 'Completed', 'Completed', 'Completed']"]


def test_interrupt_stops_a_flow_at_once_and_leaves_the_kernel_usable(kernel):
    msg_id = kernel.execute_async(
        """
@flow
def four_long_tasks():
    futures = slow.map([30, 30, 30, 30])
    print("submitted", flush=True)
    return futures.result()

four_long_tasks()
"""
    )
    kernel.wait_for_stream(msg_id, "submitted")
    time.sleep(0.5)  # let the four runs start
    started = time.monotonic()
    kernel.interrupt()
    reply = kernel.wait_reply(msg_id, timeout=30)
    assert time.monotonic() - started < 5
    assert reply.status == "error" and reply.error["ename"] == "KeyboardInterrupt"
    states = kernel.execute(
        "run = kernelflow.last_run()\n"
        "(run.state.name, sorted({r.state.name for r in run.task_runs}))"
    ).data("text/plain")
    assert states == ["('Cancelled', ['Cancelled'])"]
    # The next cell runs a flow again, at once.
    reply = kernel.execute("again(2)")
    assert reply.data("text/plain") == ["1.02"] and reply.elapsed < 5

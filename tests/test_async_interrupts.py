"""The Stop button during an async flow's own waits (issue 17, item 7): awaiting a
future, a retry's delay, a pause. Each must end within about a second of the interrupt,
in a real kernel, where a plain ``await asyncio.sleep(30)`` would hold on for 30 s."""

from __future__ import annotations

import time

import pytest

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel

DEFINE = """
import asyncio, time
from kernelflow import flow, pause_flow_run, task

@task(retries=1, retry_delay_seconds=60)
async def fails_then_waits():
    raise ConnectionError("down")

@task
def long_sync():
    time.sleep(60)

@flow
async def in_retry_delay():
    return await fails_then_waits()

@flow
async def awaiting_future():
    return await long_sync.submit()

@flow
async def paused():
    await pause_flow_run(timeout=60)
"""


@pytest.mark.parametrize("call", ["in_retry_delay()", "awaiting_future()", "paused()"])
def test_stop_ends_an_async_flows_wait_within_a_second(tmp_path, call):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(DEFINE)
        msg_id = kernel.execute_async(f"await {call}")
        time.sleep(2.0)  # well into the wait
        pressed = time.monotonic()
        kernel.interrupt()
        reply = kernel.wait_reply(msg_id, timeout=30)
        took = time.monotonic() - pressed
        assert reply.status == "error"
        assert reply.error["ename"] in ("KeyboardInterrupt", "CancelledError")
        assert took < 1.5, f"{call} took {took:.1f} s to stop"
        state = kernel.execute("import kernelflow; print(kernelflow.last_run().state.name)")
        assert state.stdout.strip() == "Cancelled"

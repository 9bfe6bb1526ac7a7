"""In a real kernel (issue 13): blocking waits in an async flow return, and stop at once
on an interrupt; a re-run after Stop does not wait for the abandoned cached run."""

from __future__ import annotations

import time

import pytest

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel

DEFINE = """
import asyncio, time
import kernelflow
from kernelflow import flow, task
from kernelflow.futures import as_completed, wait

@task
async def nap(i):
    await asyncio.sleep(0.2)
    return i

@task
async def forever(i):
    await asyncio.sleep(3600)

WAYS = {
    "result": lambda fs: [f.result() for f in fs],
    "wait": lambda fs: sorted(f.result() for f in wait(fs).done),
    "list_result": lambda fs: kernelflow.futures.TaskFutureList(fs).result(),
    "as_completed": lambda fs: sorted(f.result() for f in as_completed(fs)),
}

@flow
async def blocking(t, way):
    futures = [t.submit(i) for i in range(10)]
    return WAYS[way](futures)

@flow
async def iterating(t):
    futures = [t.submit(i) for i in range(10)]
    return sorted([f.result() async for f in as_completed(futures)])
"""

CALLS = [
    f"blocking({{task}}, {way!r})" for way in ("result", "wait", "list_result", "as_completed")
]
CALLS.append("iterating({task})")


def test_blocking_waits_in_an_async_flow_return_and_an_interrupt_stops_them(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(DEFINE)
        for call in CALLS:
            awaited = call.format(task="nap")
            code = f"t = time.perf_counter(); print(await {awaited}, time.perf_counter() - t)"
            out = kernel.execute(code).stdout
            values, took = out.rsplit(" ", 1)
            assert values == str(list(range(10))), call
            assert float(took) < 1.5, call  # the ten 0.2 s naps still ran side by side

            msg_id = kernel.execute_async(f"await {call.format(task='forever')}")
            time.sleep(1.5)
            pressed = time.time()
            kernel.interrupt()
            reply = kernel.wait_reply(msg_id, timeout=30)
            # ipykernel turns an interrupt during an async cell into a cancel of the cell.
            assert reply.status == "error", call
            assert reply.error["ename"] in ("KeyboardInterrupt", "CancelledError"), call
            runs = "kernelflow.last_run().task_runs"
            out = kernel.execute(
                f"print(sorted({{r.state.name for r in {runs}}}), max(r.end_time for r in {runs}))"
            ).stdout
            states, stopped = out.rsplit(" ", 1)
            assert float(stopped) - pressed < 1.0, call  # every run ended within 1 s
            assert states == "['Cancelled']", call


CACHED = """
import time
import kernelflow
from kernelflow import flow, task

SECONDS = 60

@task(cache_key_fn=lambda context, parameters: "one-key")
def slow_cached():
    time.sleep(SECONDS)
    return SECONDS

@flow
def uses_cache():
    return slow_cached.submit().result()
"""


def test_a_rerun_after_stop_while_a_cached_task_runs_returns_and_says_why(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CACHED)
        msg_id = kernel.execute_async("uses_cache()")
        time.sleep(1.5)
        kernel.interrupt()
        assert kernel.wait_reply(msg_id, timeout=30).error["ename"] == "KeyboardInterrupt"
        # The abandoned run sleeps on for a minute and holds no claim any more.
        out = kernel.execute(
            "SECONDS = 0.1; t = time.perf_counter(); print(uses_cache()); "
            "print(time.perf_counter() - t); "
            "print(kernelflow.last_run().task_runs[0].state.message)",
            timeout=30,
        ).stdout.splitlines()
        assert out[0] == "0.1"
        assert float(out[1]) < 5
        assert "cancelled" in out[2]

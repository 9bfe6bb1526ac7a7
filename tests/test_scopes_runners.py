"""A cancel or timeout ends the work it names, on every runner (issue 24), for real.

Each task body sleeps, then leaves a mark on disk. The run is cancelled or timed out at
one moment (queued before it started, in its body, in a retry's sleep), on threads,
processes, Dask and asyncio; long after, no mark may exist: nothing of a body ran on
past the moment its record was set Cancelled or TimedOut.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow._runners.remote import close_warm_backends
from kernelflow.task_runners import DaskTaskRunner, ProcessPoolTaskRunner, ThreadPoolTaskRunner
from tests.test_lifecycle_runners import DASK_KWARGS, warm_up

BODY_SECONDS = 1.0  # how long a body sleeps before its mark
STOP_AT = 0.3  # when the cancel or the timeout comes, after the body (or the wait) began
WORKERS = 2  # as in test_lifecycle_runners' DASK_KWARGS and warm_up

RUNNERS = {
    "threads": lambda: ThreadPoolTaskRunner(max_workers=WORKERS),
    "processes": lambda: ProcessPoolTaskRunner(max_workers=WORKERS),
    "dask": lambda: DaskTaskRunner(cluster_kwargs=DASK_KWARGS),
}


@pytest.fixture(scope="module", autouse=True)
def _close_backends():
    yield
    close_warm_backends()


@task
def sleep_then_mark(directory: str, name: str, seconds: float, fail_first: bool) -> str:
    if fail_first and not Path(directory, f"{name}.failed").exists():
        Path(directory, f"{name}.failed").write_text("")
        raise ValueError("the first attempt fails, so the run sleeps before its retry")
    time.sleep(seconds)
    Path(directory, name).write_text("the body ran on to its end")
    return name


@task
async def async_sleep_then_mark(directory: str, name: str, seconds: float, fail_first: bool):
    if fail_first and not Path(directory, f"{name}.failed").exists():
        Path(directory, f"{name}.failed").write_text("")
        raise ValueError("the first attempt fails, so the run sleeps before its retry")
    await asyncio.sleep(seconds)
    Path(directory, name).write_text("the body ran on to its end")
    return name


def target_run():
    runs = kernelflow.last_run().task_runs
    return next(run for run in runs if run.parameters.get("name") == "target")


def wait_until(condition, timeout: float = 30) -> None:
    ends = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < ends, "the run never got there"
        time.sleep(0.005)


def options(action: str, moment: str) -> dict:
    """The task's options for a moment: a timeout of its own stops a body; a retry's
    sleep needs a failing first attempt and a long delay."""
    chosen: dict = {}
    if action == "timeout" and moment == "body":
        chosen["timeout_seconds"] = STOP_AT
    if moment == "retry_sleep":
        chosen.update(retries=1, retry_delay_seconds=BODY_SECONDS)
    return chosen


def flow_timeout(action: str, moment: str) -> float | None:
    # Queued or sleeping before a retry, a run has no attempt clock running: the flow
    # run's timeout is what ends it there.
    return STOP_AT if action == "timeout" and moment != "body" else None


def reached(moment: str):
    def check(future) -> bool:
        state = future.state
        if moment == "retry_sleep":
            return state.name == "Retrying"
        return moment == "queued" or state.is_running()

    return check


@pytest.mark.parametrize("moment", ["queued", "body", "retry_sleep"])
@pytest.mark.parametrize("action", ["cancel", "timeout"])
@pytest.mark.parametrize("runner", list(RUNNERS))
def test_no_body_runs_on_after_its_run_is_cancelled_or_timed_out(runner, action, moment, tmp_path):
    make = RUNNERS[runner]
    body = sleep_then_mark.with_options(**options(action, moment))
    directory = str(tmp_path)

    @flow(task_runner=make(), timeout_seconds=flow_timeout(action, moment))
    def pipeline():
        if moment == "queued":  # every worker busy: the run waits in the queue
            for i in range(WORKERS):
                sleep_then_mark.submit(directory, f"blocker{i}", BODY_SECONDS * 2, False)
        future = body.submit(directory, "target", BODY_SECONDS, moment == "retry_sleep")
        wait_until(lambda: reached(moment)(future))
        if action == "cancel":
            time.sleep(STOP_AT / 3)
            future.cancel()
        kernelflow.futures.wait([future])
        return future.state.name

    warm_up.with_options(task_runner=make())()  # workers started before the clock runs
    pipeline(return_state=True)
    check_stopped(target_run(), action, moment, tmp_path)


def check_stopped(run, action: str, moment: str, tmp_path: Path) -> None:
    expected = {"cancel": {"Cancelled"}, "timeout": {"TimedOut"}}[action]
    if moment != "body" and action == "timeout":
        # Out of a body, the flow run's timeout ends it: its runner cancels it, or its
        # own lifecycle sees the deadline first (at its start, or its retry) and ends it.
        expected = {"Cancelled", "TimedOut"}
    assert run.state.name in expected, run.history
    time.sleep(BODY_SECONDS * 1.5)  # long past the moment the body would have marked
    assert not Path(tmp_path, "target").exists(), (run.history, "the body ran on")
    if moment == "queued":
        assert not any(state.is_running() for state in run.history)  # it never started


@pytest.mark.parametrize("moment", ["queued", "body", "retry_sleep"])
@pytest.mark.parametrize("action", ["cancel", "timeout"])
def test_no_async_body_runs_on_after_its_run_is_cancelled_or_timed_out(action, moment, tmp_path):
    body = async_sleep_then_mark.with_options(**options(action, moment))
    directory = str(tmp_path)

    @flow(timeout_seconds=flow_timeout(action, moment))
    async def pipeline():
        future = body.submit(directory, "target", BODY_SECONDS, moment == "retry_sleep")
        if moment == "queued":  # before the loop ever ran it
            if action == "cancel":
                future.cancel()
            else:
                time.sleep(STOP_AT * 2)  # holds the loop past the flow's deadline
        else:
            while not reached(moment)(future):
                await asyncio.sleep(0.005)
            if action == "cancel":
                await asyncio.sleep(STOP_AT / 3)
                future.cancel()
        while not future.done():
            await asyncio.sleep(0.01)
        return future.state.name

    asyncio.run(pipeline(return_state=True))
    check_stopped(target_run(), action, moment, tmp_path)

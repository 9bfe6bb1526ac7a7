"""pause_flow_run / resume_flow_run / cancel_flow_run without a notebook."""

import contextvars
import threading
import time

import pydantic
import pytest

import kernelflow
from kernelflow import flow, pause_flow_run, resume_flow_run, task
from kernelflow.exceptions import CancelledRun, FlowPauseTimeout, ParameterTypeError


def resume_when_paused(run_input=None, action=None):
    """Resume (or act on) the first paused run from another thread, as a person would
    (looking for it for up to 5 s: a loaded machine may take a while to pause)."""

    def worker():
        for _ in range(500):
            paused = kernelflow.paused_runs()
            if paused:
                run = paused[0]
                assert run.state.name == "Paused"
                (action or (lambda r: resume_flow_run(r.id, run_input=run_input)))(run)
                return
            time.sleep(0.01)

    thread = threading.Thread(target=worker)
    thread.start()
    return thread


def test_pause_then_resume_from_another_thread():
    order = []

    @task
    def step(name):
        order.append(name)

    @flow
    def reviewed():
        step("before")
        pause_flow_run(timeout=10)
        step("after")
        return "done"

    thread = resume_when_paused()
    assert reviewed() == "done"
    thread.join()
    assert order == ["before", "after"]
    names = [s.name for s in kernelflow.last_run().history]
    assert names == ["Pending", "Running", "Paused", "Running", "Completed"]


def test_queued_task_runs_wait_while_paused_and_running_ones_go_on():
    started = []

    @task
    def record(name, seconds=0):
        started.append((name, time.monotonic()))
        time.sleep(seconds)

    @flow
    def f():
        record.submit("running", 0.3)
        time.sleep(0.05)
        pause_flow_run(timeout=10)
        record.submit("after resume").wait()

    resumed_at = []

    def resume(run):
        time.sleep(0.2)
        resumed_at.append(time.monotonic())
        resume_flow_run(run.id)

    thread = resume_when_paused(action=resume)
    f()
    thread.join()
    assert [name for name, _ in started] == ["running", "after resume"]
    assert started[1][1] >= resumed_at[0]


def test_pause_timeout_fails_the_flow_with_a_clear_message():
    @flow
    def never_resumed():
        pause_flow_run(timeout=0.2)

    with pytest.raises(FlowPauseTimeout, match="not resumed within 0.2 s, so it can no longer"):
        never_resumed()
    assert kernelflow.last_run().state.is_failed()


def test_key_pauses_once_per_key():
    pauses = []

    @flow
    def keyed():
        for _ in range(3):
            started = time.monotonic()
            pause_flow_run(timeout=5, key="approval")
            pauses.append(time.monotonic() - started)
        return "through"

    thread = resume_when_paused()
    assert keyed() == "through"
    thread.join()
    assert len(pauses) == 3 and max(pauses[1:]) < 0.05  # only the first one waited


class Approval(pydantic.BaseModel):
    approved: bool
    reviewer: str = "anonymous"
    threshold: int = 3


def test_wait_for_input_returns_the_validated_model_and_rejects_bad_input():
    outcomes = []

    def answer(run):
        with pytest.raises(ParameterTypeError, match="threshold"):
            resume_flow_run(run.id, run_input={"approved": True, "threshold": "many"})
        outcomes.append(run.state.name)  # still paused after the bad input
        resume_flow_run(run.id, run_input={"approved": "yes", "reviewer": "ada"})

    @flow
    def needs_approval():
        return pause_flow_run(timeout=10, wait_for_input=Approval)

    thread = resume_when_paused(action=answer)
    result = needs_approval()
    thread.join()
    assert outcomes == ["Paused"]
    assert result == Approval(approved=True, reviewer="ada", threshold=3)


def test_cancel_while_paused_ends_the_run_cancelled():
    @flow
    def cancelled():
        pause_flow_run(timeout=10)

    thread = resume_when_paused(action=lambda run: kernelflow.cancel_flow_run(run))
    state = cancelled(return_state=True)
    thread.join()
    assert state.is_cancelled()
    with pytest.raises(CancelledRun):
        state.result()


def test_pause_outside_a_flow_and_unknown_ids_are_clear_errors():
    with pytest.raises(RuntimeError, match="inside a flow run"):
        pause_flow_run()
    with pytest.raises(LookupError, match="No paused flow run"):
        resume_flow_run("00000000-0000-4000-8000-000000000000")


def test_a_pause_outside_the_flow_bodys_time_is_refused_at_once():
    # Paused is the flow run's to set while its body runs (its handle's): a hook, which
    # runs once the run has ended, cannot pause it (it used to wait its whole timeout
    # on a run that could no longer pause, then fail with FlowPauseTimeout).
    errors = []

    def pausing_hook(flow, run, state):
        began = time.monotonic()
        try:
            pause_flow_run(timeout=2)
        except Exception as error:
            errors.append((error, time.monotonic() - began))

    @flow(on_completion=[pausing_hook])
    def done():
        return 1

    state = done(return_state=True)
    assert state.is_completed()
    assert [s.name for s in kernelflow.last_run().history] == ["Pending", "Running", "Completed"]
    ((error, took),) = errors
    assert isinstance(error, RuntimeError) and "from its body" in str(error)
    assert took < 0.5
    assert kernelflow.paused_runs() == []


def test_a_pause_that_outlives_the_body_does_not_leave_its_run_paused():
    # A thread of the flow's (its context copied) pauses the run, and the body returns
    # while that pause still waits: the lifecycle moves the run out of Paused and ends
    # it. It used to try Paused -> Completed, fail, and leave the run Paused for good.
    answers = []

    def pause_elsewhere():
        answers.append(pause_flow_run(timeout=10))

    @flow
    def hands_off():
        thread = threading.Thread(target=contextvars.copy_context().run, args=(pause_elsewhere,))
        thread.start()
        while not kernelflow.paused_runs():
            time.sleep(0.01)
        return thread

    thread = hands_off()
    run = kernelflow.last_run()
    assert [s.name for s in run.history] == ["Pending", "Running", "Paused", "Running", "Completed"]
    assert run.history[3].message == "The body ended while the flow run was paused."
    resume_flow_run(run.id)  # the pause itself still waits, and ends as asked
    thread.join(5)
    assert answers == [None]
    assert run.state.is_completed() and len(run.history) == 5
    assert kernelflow.paused_runs() == []


def test_the_executed_graph_shows_where_a_paused_flow_stopped():
    from kernelflow import task

    graphs = []

    @task
    def before():
        return 1

    def look(run):
        graphs.append(run.graph().source)
        resume_flow_run(run.id)

    @flow
    def paused_flow():
        before()
        pause_flow_run(timeout=10)

    thread = resume_when_paused(action=look)
    paused_flow()
    thread.join()
    source = graphs[0]
    assert "Paused" in source and "paused here" in source
    assert "-> paused" in source  # linked from the last run before the pause


# --- async flows: ``await pause_flow_run()`` keeps the event loop running ---------------


def test_an_async_flow_awaits_its_pause_while_its_loop_goes_on():
    import asyncio

    ticks = []

    @flow
    async def reviewed():
        return await pause_flow_run(timeout=10, wait_for_input=Approval)

    async def main():
        async def tick():
            while True:
                ticks.append(kernelflow.paused_runs() != [])
                await asyncio.sleep(0.01)

        def resume_later(run):
            time.sleep(0.2)
            resume_flow_run(run.id, {"approved": True})

        ticker = asyncio.ensure_future(tick())
        thread = resume_when_paused(action=resume_later)
        try:
            return await reviewed()
        finally:
            ticker.cancel()
            thread.join()

    assert asyncio.run(main()) == Approval(approved=True)
    assert sum(ticks) >= 3  # the loop ran other work while the flow was paused
    names = [s.name for s in kernelflow.last_run().history]
    assert names == ["Pending", "Running", "Paused", "Running", "Completed"]


def test_an_async_pause_times_out_and_is_cancelled_like_a_sync_one():
    import asyncio

    @flow
    async def forgotten():
        await pause_flow_run(timeout=0.2)

    @flow
    async def cancelled():
        await pause_flow_run(timeout=10)

    with pytest.raises(FlowPauseTimeout, match="not resumed within 0.2 s"):
        asyncio.run(forgotten())
    thread = resume_when_paused(action=lambda run: kernelflow.cancel_flow_run(run))
    state = asyncio.run(cancelled(return_state=True))
    thread.join()
    assert state.is_cancelled()


def test_an_async_pause_starts_only_when_awaited():
    import asyncio
    import inspect

    @flow
    async def careless():
        pending = pause_flow_run(timeout=10)
        assert inspect.iscoroutine(pending) and kernelflow.paused_runs() == []
        pending.close()  # a forgotten await: nothing paused, the flow goes on
        return "went on"

    assert asyncio.run(careless()) == "went on"


def test_an_answered_pause_refuses_a_second_answer():
    seen = []

    def answer_twice(run):
        resume_flow_run(run.id)
        try:
            kernelflow.cancel_flow_run(run.id)
        except LookupError as error:
            seen.append(str(error))

    @flow
    def once():
        pause_flow_run(timeout=10)
        return "resumed"

    thread = resume_when_paused(action=answer_twice)
    assert once() == "resumed"
    thread.join()
    assert len(seen) == 1 and ("no longer paused" in seen[0] or "No paused" in seen[0])


def test_pauses_wait_on_the_registered_waiter():
    from kernelflow import _pause

    asked = []

    class Approver:
        def wait(self, pause, timeout):
            asked.append((pause.flow_run.name, pause.key, timeout))
            resume_flow_run(pause.flow_run, {"approved": True})

        async def wait_async(self, pause, timeout):  # pragma: no cover - sync flow here
            raise AssertionError("not an async flow")

    @flow
    def auto():
        return pause_flow_run(timeout=7, key="sign-off", wait_for_input=Approval)

    _pause.register_waiter(Approver())
    try:
        assert auto().approved
    finally:
        _pause.register_waiter(None)
    assert asked == [(kernelflow.last_run().name, "sign-off", 7)]
    assert isinstance(_pause._waiter, _pause.TerminalWaiter)


def test_the_engine_never_imports_the_notebook_layer():
    import subprocess
    import sys

    code = (
        "import sys, threading, kernelflow\n"
        "from kernelflow import flow, pause_flow_run\n"
        "@flow\n"
        "def f():\n"
        "    pause_flow_run(timeout=10)\n"
        "def go():\n"
        "    while not kernelflow.paused_runs(): pass\n"
        "    kernelflow.resume_flow_run(kernelflow.paused_runs()[0])\n"
        "threading.Thread(target=go).start()\n"
        "f()\n"
        "print(sorted(m for m in sys.modules if m.startswith('kernelflow.notebook')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_timeout_that_is_not_positive_is_refused():
    @flow
    def f():
        pause_flow_run(timeout=0)

    with pytest.raises(ValueError, match="positive number"):
        f()


def test_a_pause_in_a_copy_of_a_flow_context_elsewhere_is_a_clear_error():
    # with_context carries a flow run's context into work handed to another process:
    # no flow body runs there, so nothing could pause (or resume) it.
    from kernelflow._context import FlowRunContext, flow_run_context

    token = flow_run_context.set(FlowRunContext(None, None, None))
    try:
        with pytest.raises(RuntimeError, match="in the flow run's own process"):
            pause_flow_run(timeout=1)
    finally:
        flow_run_context.reset(token)

"""The flow lifecycle sets every state of its run, Paused and its way out included (issue 24).

While a flow's body runs, its lifecycle is suspended at ``CallBody``; a pause in the
body reports to the run's handle, which sends the report in as a body event, and the
lifecycle sets the state. The scripted tests drive the lifecycle by hand, as a driver
does, on a fake clock; an observer checks that each state change of the flow run
happens inside ``flow_lifecycle`` (its frame on the stack), never in the handle or the
pause. The others run real flows (threads, an event loop, a subflow) the same way.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import sys
import threading
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import _events, flow, pause_flow_run
from kernelflow._context import flow_run_context
from kernelflow._engine import flow_engine
from kernelflow._engine.effects import CallBody, CallHook, Outcome
from kernelflow._runs import FlowRun
from kernelflow._scopes.scope import FakeClock, use_clock
from kernelflow.exceptions import CancelledRun, FlowPauseTimeout
from kernelflow.task_runners import ThreadPoolTaskRunner
from tests.test_pause import resume_when_paused

SRC = Path(kernelflow.__file__).parent
FLOW_SECONDS = 10
_LIFECYCLE = flow_engine.flow_lifecycle.__code__


def _in_the_lifecycle() -> bool:
    """Whether a ``flow_lifecycle`` frame is on the stack (it runs while it is stepped)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is _LIFECYCLE:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def flow_run_changes():
    """Every flow run state change meanwhile: (state name, message, set by the lifecycle)."""
    changes: list[tuple[str, str, bool]] = []

    def observe(run, old, new):
        if isinstance(run, FlowRun):
            changes.append((new.name, new.message, _in_the_lifecycle()))

    unsubscribe = _events.subscribe(observe)
    try:
        yield changes
    finally:
        unsubscribe()


def completed(flow, run, state):
    pass


def failed(flow, run, state):
    pass


def cancelled(flow, run, state):
    pass


def crashed(flow, run, state):
    pass


@flow(
    timeout_seconds=FLOW_SECONDS,
    on_completion=[completed],
    on_failure=[failed],
    on_cancellation=[cancelled],
    on_crashed=[crashed],
)
def reviewed():
    pass  # never called: the script answers for its body


class Stop(BaseException):
    pass


class Script:
    """One run of ``reviewed``, its lifecycle stepped by hand as a driver steps it."""

    def __init__(self, clock: FakeClock):
        self.clock = clock
        self.run, parameters, _ = flow_engine._create_flow_run(reviewed, (), {}, None)
        self.runner = ThreadPoolTaskRunner().__enter__()
        self.ctx = flow_engine._enter(reviewed, self.run, self.runner)
        lifecycle = flow_engine.flow_lifecycle(reviewed, self.run, parameters, self.ctx)
        self.handle = flow_engine._FlowHandle(self.run, lifecycle, self.ctx)
        self.hooks: list[str] = []

    def start_body(self) -> None:
        assert type(self.handle.step()) is CallBody
        assert self.handle.body_started("scripted")

    def finish(self, outcome: Outcome) -> None:
        """Give the body's outcome, then answer each effect until the end: only hooks
        come (nothing a body event answered ever reaches the driver)."""
        try:
            while (effect := self.handle.step(outcome)) is not None:
                assert type(effect) is CallHook, effect
                self.hooks.append(effect.fn.__name__)
                outcome = Outcome()
        finally:
            self.runner.__exit__(None, None, None)


CRASHED = ["crashed"]
PAUSED_AND_BACK = ["Pending", "Running", "Paused", "Running"]
#: how the pause ends (None: it has not) -> the body's outcome, the final state, its hooks
PAUSE_ENDINGS = {
    "resumed": ("Resumed.", lambda s: Outcome("approved"), "Completed", ["completed"]),
    "timed out, not caught": (
        "Not resumed within 1 s.",
        lambda s: Outcome(error=FlowPauseTimeout("not resumed")),
        "Failed",
        ["failed"],
    ),
    "timed out, caught": (
        "Not resumed within 1 s.",
        lambda s: Outcome(1),
        "Completed",
        ["completed"],
    ),
    "cancelled": (
        "Cancelled while paused.",
        lambda s: Outcome(error=CancelledRun("cancelled while paused")),
        "Cancelled",
        ["cancelled"],
    ),
    "cancelled, caught": (
        "Cancelled while paused.",
        lambda s: Outcome(2),
        "Completed",
        ["completed"],
    ),
    "a BaseException": (
        "Pause ended by Stop.",
        lambda s: Outcome(error=Stop()),
        "Crashed",
        CRASHED,
    ),
    "the flow's deadline": (
        "The flow run's time ran out while paused.",
        lambda s: (s.clock.advance(FLOW_SECONDS), Outcome(error=s.ctx.deadline.error()))[1],
        "TimedOut",
        ["failed"],
    ),
    "Stop in the notebook": (
        "Pause ended by KeyboardInterrupt.",
        lambda s: Outcome(error=KeyboardInterrupt()),
        "Cancelled",
        ["cancelled"],
    ),
    # the pause that paused it has not ended (a task run's, or one cut short)
    "the body ended while paused": (None, lambda s: Outcome(3), "Completed", ["completed"]),
}


@pytest.mark.parametrize("ending", list(PAUSE_ENDINGS))
def test_the_lifecycle_sets_paused_and_every_way_out_of_it(ending):
    how, body, final, hooks = PAUSE_ENDINGS[ending]
    with use_clock(FakeClock()) as clock, flow_run_changes() as changes:
        script = Script(clock)
        token = flow_run_context.set(script.ctx)
        try:
            script.start_body()
            script.handle.pause_began("approval")
            assert script.run.state.name == "Paused"  # at once, while the body waits
            if how is not None:
                script.handle.pause_ended(how)
            interrupted = ending == "Stop in the notebook"
            with pytest.raises(KeyboardInterrupt) if interrupted else contextlib.nullcontext():
                script.finish(body(script))
        finally:
            flow_run_context.reset(token)

    left_with = how or "The body ended while the flow run was paused."
    assert changes == [
        ("Running", None, True),
        ("Paused", "Waiting to be resumed (key 'approval').", True),
        ("Running", left_with, True),
        (final, changes[-1][1], True),
    ]
    assert [s.name for s in script.run.history] == [*PAUSED_AND_BACK, final]
    assert script.hooks == hooks
    assert not script.handle.open


def test_the_handle_forwards_a_pause_only_while_the_body_runs():
    with use_clock(FakeClock()) as clock:
        script = Script(clock)
        with pytest.raises(RuntimeError, match="from its body"):
            script.handle.pause_began("too early")  # the lifecycle has not started
        script.start_body()
        script.handle.pause_began("first")
        # A second pause (another thread of the run) while the first waits: refused,
        # with why; the run stays in the first one.
        with pytest.raises(RuntimeError, match="paused already"):
            script.handle.pause_began("second")
        script.handle.pause_ended("Resumed.")
        script.finish(Outcome(1))
        history = list(script.run.history)
        with pytest.raises(RuntimeError, match="from its body"):
            script.handle.pause_began("too late")
        script.handle.pause_ended("Resumed.")  # a late end changes nothing
    assert script.run.history == history
    assert [s.name for s in history] == [*PAUSED_AND_BACK, "Completed"]


@pytest.mark.parametrize(
    ("error", "final", "hooks"),
    [(KeyboardInterrupt, "Cancelled", ["cancelled"]), (Stop, "Crashed", CRASHED)],
)
def test_an_interrupt_landing_in_the_lifecycle_as_it_takes_a_pause_goes_to_the_driver(
    error, final, hooks
):
    # The lifecycle takes a body event in the thread that reported it, so an interrupt
    # aimed at that thread may land in the lifecycle's own code (here: an observer of
    # Paused). The lifecycle then ends the run there, out of Paused first; what it asks
    # next (its hooks) and the error it raises at its end go to the driver at its next
    # step, never back to the pause, which is told the run ended.
    def interrupt(run, old, new):
        if new.name == "Paused":
            raise error

    with use_clock(FakeClock()) as clock:
        script = Script(clock)
        script.start_body()
        script.run.subscribe(interrupt)
        try:
            script.handle.pause_began("approval")
        except BaseException as told:  # caught here, so a failure stops this test only
            assert isinstance(told, RuntimeError), told
            assert f"ended {final} as the pause began" in str(told)
        with pytest.raises(error):
            script.finish(Outcome("moot: the run has ended"))
    assert [s.name for s in script.run.history] == [*PAUSED_AND_BACK, final]
    assert script.run.history[3].message == f"Pause ended by {error.__name__}."
    assert script.hooks == hooks
    assert script.ctx.scope.cancelled == script.run.state.message
    assert not script.handle.open


def test_a_body_that_returns_while_its_pause_is_being_taken_waits_for_it():
    # A pause from another thread is being taken (the lifecycle runs, in that thread)
    # when the body returns: the driver's step waits for it, and so gets what the
    # lifecycle asked meanwhile (here: it was stopped, and asks for its hook), not a
    # turn at the lifecycle that would hand the body's outcome to that hook's yield.
    taking = threading.Event()

    def slow_stop(run, old, new):
        if new.name == "Paused":
            taking.set()
            time.sleep(0.5)  # the driver's step comes meanwhile
            raise Stop

    with use_clock(FakeClock()) as clock:
        script = Script(clock)
        script.start_body()
        script.run.subscribe(slow_stop)
        refused = []
        reporter = threading.Thread(target=_refusal, args=(script.handle, refused))
        reporter.start()
        assert taking.wait(5)
        with pytest.raises(Stop):
            script.finish(Outcome("the body returned"))
        reporter.join()
    assert script.hooks == CRASHED
    assert refused == ["ended Crashed"]


def _refusal(handle, refused):
    try:
        handle.pause_began("approval")
    except RuntimeError as error:
        refused.append("ended Crashed" if "ended Crashed" in str(error) else str(error))


def test_only_the_flow_lifecycle_makes_a_run_paused():
    # The grep-style check of the property above: one place in the source builds a
    # Paused state, a function of the lifecycle's, and the flow run's handle sets none.
    places = []
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                called = isinstance(node, ast.Call) and node.func
                if (
                    getattr(called, "id", None) == "Paused"
                    or getattr(called, "attr", "") == "Paused"
                ):
                    places.append(f"{path.relative_to(SRC).as_posix()}:{function.name}")
    assert places == ["_engine/flow_engine.py:_take"]
    handle_source = (SRC / "_engine" / "flow_handle.py").read_text()
    assert "set_state" not in handle_source


def _resumed_sync():
    @flow
    def approved():
        pause_flow_run(timeout=10)
        return "approved"

    thread = resume_when_paused()
    assert approved() == "approved"
    thread.join()


def _caught_timeout_async():
    @flow
    async def patient():
        try:
            await pause_flow_run(timeout=0.1)
        except FlowPauseTimeout:
            return "gave up"

    assert asyncio.run(patient()) == "gave up"


def _caught_timeout_in_a_subflow():
    @flow
    def child():
        try:
            pause_flow_run(timeout=0.1)
        except FlowPauseTimeout:
            return "gave up"

    @flow
    def parent():
        return child()

    assert parent() == "gave up"


def _the_flow_deadline():
    @flow(timeout_seconds=0.3)
    def limited():
        pause_flow_run(timeout=30)

    assert limited(return_state=True).name == "TimedOut"


@pytest.mark.parametrize(
    "scenario",
    [_resumed_sync, _caught_timeout_async, _caught_timeout_in_a_subflow, _the_flow_deadline],
    ids=lambda f: f.__name__.strip("_"),
)
def test_real_flows_change_state_only_in_their_lifecycle(scenario):
    with flow_run_changes() as changes:
        scenario()
    assert any(name == "Paused" for name, _, _ in changes)
    assert [(name, message) for name, message, by_lifecycle in changes if not by_lifecycle] == []

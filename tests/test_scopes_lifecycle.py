"""Cancel and timeout at every moment of a task run's lifecycle, as data (issue 24).

No threads and no sleeping: a scripted driver answers each effect the way every real
driver does (``semantics.meaning``: a value now, a wait cut by the run's scope), on a
fake clock. For each moment (before start, in the body, in a retry's sleep, waiting on
another run's cache claim) and each of cancel and timeout, the table gives the final
state; every case also checks that no body was called after it, that the run's own
claim was released and that another run's claim was left alone.
"""

from __future__ import annotations

import pytest

from kernelflow import flow, task
from kernelflow._context import FlowRunContext
from kernelflow._engine.claims import Claim
from kernelflow._engine.drivers import attempt_deadline, too_late
from kernelflow._engine.effects import AwaitClaim, CallBody, Outcome, Sleep, TakeClaim
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.semantics import Call, Now, Wait, meaning
from kernelflow._engine.task_engine import create_task_run, task_lifecycle
from kernelflow._runs import FlowRun
from kernelflow._scopes.scope import FakeClock, Scope, use_clock
from kernelflow.cache_policies import INPUTS
from kernelflow.task_runners import ThreadPoolTaskRunner

FLOW_SECONDS = 10  # the flow run's timeout in the timeout cases


@flow
def owner():
    pass


def on_failure(task, run, state):
    pass


@task(
    cache_policy=INPUTS,
    retries=1,
    retry_delay_seconds=30,
    timeout_seconds=5,
    on_failure=[on_failure],
)
def work(x):
    return x


class Driver:
    """Steps one run's lifecycle on a fake clock, the way the real drivers do: a body is
    started (or found too late), waits end at their scope, sleeps move the clock."""

    def __init__(self, clock: FakeClock, scope: Scope | None, x: int = 1):
        flow_run = FlowRun(owner, "owner-run", {}, None, {}, frozenset())
        ctx = FlowRunContext(owner, flow_run, ThreadPoolTaskRunner(), deadline=scope)
        self.run, upstream = create_task_run(work, {"x": x}, None, ctx)
        lifecycle = task_lifecycle(work, self.run, {"x": x}, None, upstream, ctx)
        self.handle = RunHandle(self.run, lifecycle)
        self.clock = clock
        self.bodies = 0  # bodies called (started and answered)
        self.hooks: list[str] = []  # hooks called, by name
        self.claim: Claim | None = None

    def until(self, kind, outcome=None, body=None):
        """Answer effects until one of ``kind`` comes (returned unanswered), or the end.

        ``body`` answers a started body (default: it returns 1)."""
        while (effect := self.handle.step(outcome)) is not None:
            if isinstance(effect, kind):
                return effect
            outcome = self.answer(effect, body)
        return None

    def answer(self, effect, body=None):
        if isinstance(effect, CallBody):
            if too_late(self.handle, effect):
                return None  # cancelled: the handle is closed, the next step ends it
            assert self.handle.body_started("scripted")
            self.bodies += 1
            scope = attempt_deadline(effect)
            outcome = body() if body else Outcome(1)
            if scope is not None and scope.expired():
                return Outcome(error=scope.error())
            return outcome
        what = meaning(effect, ("scripted", self))
        if isinstance(what, Call):
            self.hooks.append(what.fn.__name__)
            return Outcome()
        if isinstance(what, Now):
            if isinstance(effect, TakeClaim):
                self.claim = what.value if what.value.owned else self.claim
            return what.value
        assert isinstance(what, Wait)
        if what.futures and all(f.done() for f in what.futures):
            return what.done
        self.clock.advance(what.timeout)  # nothing else happens meanwhile: to its end
        return what.late if what.futures else what.done

    def finish(self, outcome=None):
        return self.until(type(None), outcome)


def failing_body():
    return Outcome(error=ValueError("the first attempt fails"))


def reach(driver: Driver, moment: str, holder: Claim | None):
    """Step ``driver`` to ``moment``; the effect it is at (unanswered)."""
    if moment == "before start":
        return driver.until(CallBody)
    if moment.startswith("in body"):
        body = driver.until(CallBody)
        assert driver.handle.body_started("scripted")
        return body
    if moment == "in retry sleep":
        body = driver.until(CallBody)
        return driver.until(Sleep, driver.answer(body, failing_body))
    if moment == "waiting on a claim":
        return driver.until(AwaitClaim)
    raise AssertionError(moment)


def stop(driver: Driver, action: str, moment: str, effect) -> None:
    """Cancel the run at ``effect``, or let its time run out there."""
    if action == "cancel":
        assert driver.handle.cancel()
        assert driver.handle.step(Outcome(1)) is None  # a late answer changes nothing
        return
    if moment.startswith("in body"):  # its own timeout (5 s), or the flow's, in the body
        attempt = attempt_deadline(effect)
        driver.clock.advance(5 if moment == "in body" else FLOW_SECONDS)
        driver.finish(Outcome(error=attempt.error()))
        return
    driver.clock.advance(FLOW_SECONDS)  # the flow run's timeout passes here
    driver.finish(driver.answer(effect))


#: (moment, action) -> the run's final state, and the hooks called
TABLE = {
    ("before start", "cancel"): ("Cancelled", []),
    ("in body", "cancel"): ("Cancelled", []),
    ("in retry sleep", "cancel"): ("Cancelled", []),
    ("waiting on a claim", "cancel"): ("Cancelled", []),
    # The flow run's time runs out before the body starts: the run never ran, and is
    # Cancelled, as the flow's timeout cancels the runs it has not started (whichever of
    # the two sees the deadline first, the state is the same).
    ("before start", "timeout"): ("Cancelled", []),
    # its own timeout passes in the body; its retry's sleep ends with the flow run's time,
    # and the retry is cancelled before it starts
    ("in body", "timeout"): ("Cancelled", []),
    ("in retry sleep", "timeout"): ("Cancelled", []),
    ("waiting on a claim", "timeout"): ("Cancelled", []),
    # the flow run's time runs out while the body runs: TimedOut, never retried
    ("in body, past the flow's deadline", "timeout"): ("TimedOut", ["on_failure"]),
}


@pytest.mark.parametrize(("moment", "action"), list(TABLE))
def test_cancel_and_timeout_at_every_moment(moment, action, request):
    with use_clock(FakeClock()) as clock:
        scope = Scope.after(FLOW_SECONDS, "Flow run") if action == "timeout" else None
        holder = None
        x = len(request.node.name)  # a key of its own per case
        if moment == "waiting on a claim":  # another run holds the key
            other = Driver(clock, scope, x)
            other.until(CallBody)
            holder = other.claim
        driver = Driver(clock, scope, x)
        effect = reach(driver, moment, holder)
        bodies_before = driver.bodies
        stop(driver, action, moment, effect)

    state = driver.run.state
    expected_state, expected_hooks = TABLE[moment, action]
    assert state.name == expected_state, driver.run.history
    assert driver.hooks == expected_hooks
    assert driver.bodies == bodies_before  # no body was called after the moment
    if moment == "before start":
        assert not any(s.is_running() for s in driver.run.history)
    if driver.claim is not None:  # its own claim: released, whatever ended the run
        assert driver.claim.released.done()
    if holder is not None:  # another run's claim: untouched by this waiter's end
        assert not holder.released.done()
        holder.release()


def test_a_flow_driver_stopped_between_two_effects_still_ends_the_run_through_its_lifecycle():
    # An interrupt that strikes the driver's own code (not an effect it carries out)
    # reaches the flow lifecycle all the same: the run ends Cancelled, its task runs'
    # scope is cancelled and its hooks run, with no fallback of the caller's.
    from kernelflow._context import flow_run_context
    from kernelflow._engine import flow_engine

    heard = []

    @flow(on_cancellation=[lambda flow, run, state: heard.append(state.name)])
    def stopped():
        pass

    run, parameters, _ = flow_engine._create_flow_run(stopped, (), {}, None)
    with ThreadPoolTaskRunner() as runner:
        ctx = flow_engine._enter(stopped, run, runner)
        token = flow_run_context.set(ctx)
        try:
            lifecycle = flow_engine.flow_lifecycle(stopped, run, parameters, ctx)
            handle = flow_engine._FlowHandle(run, lifecycle, ctx)
            assert isinstance(handle.step(), CallBody)  # the driver is about to call the body
            handle.abort(KeyboardInterrupt())  # ... and is interrupted first
        finally:
            flow_run_context.reset(token)
    assert run.state.name == "Cancelled"
    assert heard == ["Cancelled"]
    assert ctx.scope.cancelled == "Interrupted by the user."
    assert not handle.open

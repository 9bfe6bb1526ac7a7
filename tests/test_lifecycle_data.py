"""The task lifecycle as data: a scripted driver answers its effects, a fake clock serves
``Sleep``. Retries, timeouts, cache claims and cancellation, with no threads and no
sleeping; every effect the lifecycle asks for is checked in order."""

from __future__ import annotations

import pytest

from kernelflow import task
from kernelflow._engine.claims import Claim
from kernelflow._engine.drivers import drive_sync
from kernelflow._engine.effects import (
    AwaitClaim,
    CallBody,
    CallHook,
    Outcome,
    Sleep,
    TakeClaim,
)
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.task_engine import create_task_run, task_lifecycle
from kernelflow.cache_policies import INPUTS
from kernelflow.exceptions import DeadlineExceeded


class ScriptedDriver:
    """Steps a run's lifecycle, answering each effect from a script.

    The script is a list of answers, one per effect: an ``Outcome`` for a body or hook
    call (a body is reported started first), a claim for ``TakeClaim``, a bool for a
    wait. ``Sleep`` is never scripted: the fake clock moves on by its seconds.
    """

    def __init__(self, task_, parameters, script):
        self.run, upstream = create_task_run(task_, parameters, None, None)
        self.handle = RunHandle(
            self.run, task_lifecycle(task_, self.run, parameters, None, upstream, None)
        )
        self.script = list(script)
        self.effects: list = []
        self.clock = 0.0

    def step(self, outcome=None, until=None):
        """Answer effects until the lifecycle ends (or one of type ``until`` comes)."""
        while (effect := self.handle.step(outcome)) is not None:
            self.effects.append(effect)
            if until is not None and isinstance(effect, until):
                return effect
            if isinstance(effect, Sleep):
                self.clock += effect.seconds
                outcome = None
                continue
            if isinstance(effect, CallBody) and not self.handle.body_started("scripted"):
                outcome = None
                continue
            outcome = self.script.pop(0)
        return None

    def kinds(self):
        return [type(effect).__name__ for effect in self.effects]


def fails(message="no"):
    return Outcome(error=ValueError(message))


@task(retries=2, retry_delay_seconds=[1, 5])
def flaky(x):
    return x


def test_retries_sleep_their_delays_then_complete():
    driver = ScriptedDriver(flaky, {"x": 1}, [fails(), fails(), Outcome(7)])
    driver.step()
    assert driver.kinds() == ["CallBody", "Sleep", "CallBody", "Sleep", "CallBody"]
    assert driver.clock == 6
    assert driver.run.state.name == "Completed" and driver.run.state.data == 7
    assert driver.run.run_count == 3
    assert [s.name for s in driver.run.history] == [
        "Pending",
        "Running",
        "Retrying",
        "Retrying",
        "Completed",
    ]


def test_retries_run_out_and_the_last_failure_stands():
    driver = ScriptedDriver(flaky, {"x": 1}, [fails("a"), fails("b"), fails("c")])
    driver.step()
    assert driver.run.state.is_failed() and str(driver.run.state.data) == "c"
    assert driver.clock == 6


def test_a_timeout_is_timed_out_and_a_timeout_error_of_the_task_is_its_own_failure():
    limited = flaky.with_options(retries=0, timeout_seconds=3)
    driver = ScriptedDriver(limited, {"x": 1}, [Outcome(error=DeadlineExceeded("3 s"))])
    driver.step()
    assert driver.effects[0].timeout == 3  # counted by the driver from the body's start
    assert driver.run.state.name == "TimedOut"

    own = ScriptedDriver(limited, {"x": 1}, [Outcome(error=TimeoutError("the API"))])
    own.step()
    assert own.run.state.name == "Failed"


def test_a_timed_out_attempt_is_retried_like_any_failure():
    limited = flaky.with_options(retries=1, retry_delay_seconds=2, timeout_seconds=1)
    driver = ScriptedDriver(limited, {"x": 1}, [Outcome(error=DeadlineExceeded("1 s")), Outcome(3)])
    driver.step()
    assert driver.kinds() == ["CallBody", "Sleep", "CallBody"] and driver.clock == 2
    assert driver.run.state.is_completed()


cached = task(cache_policy=INPUTS)(lambda x: x)


def test_a_cached_run_claims_its_key_and_releases_it_when_it_ends():
    driver = ScriptedDriver(cached, {"x": 1}, [])
    take = driver.step(until=TakeClaim)
    claim = Claim.take(take.key, ("scripted", None))
    driver.script = [Outcome(1)]
    driver.step(claim)
    assert driver.kinds() == ["TakeClaim", "CallBody"]
    assert driver.run.state.is_completed()
    assert claim.released.done() and take.key not in Claim._held


def test_an_identical_run_waits_for_the_claim_then_finds_the_result():
    first = ScriptedDriver(cached, {"x": 2}, [])
    take = first.step(until=TakeClaim)
    held = Claim.take(take.key, ("first", None))
    second = ScriptedDriver(cached, {"x": 2}, [])
    second_take = second.step(until=TakeClaim)
    assert second_take.key == take.key
    wait = second.handle.step(Claim.take(take.key, ("second", None)))
    assert isinstance(wait, AwaitClaim) and wait.claim.released is held.released
    first.script = [Outcome(2)]
    first.step(held)  # completes, stores, releases
    second.step(True)  # the wait ended: it looks again and finds the stored result
    assert second.run.state.name == "Cached" and second.run.state.data == 2
    assert second.kinds() == ["TakeClaim"]  # no body call


def test_cancel_while_the_body_runs_releases_the_claim_and_ends_the_run():
    driver = ScriptedDriver(cached, {"x": 3}, [])
    take = driver.step(until=TakeClaim)
    claim = Claim.take(take.key, ("scripted", None))
    body = driver.handle.step(claim)
    assert isinstance(body, CallBody) and driver.handle.body_started("w")
    assert driver.handle.cancel()
    assert driver.run.state.is_cancelled()
    assert "while running" in driver.run.state.message
    assert claim.released.done()
    assert "cancelled" in Claim.why_missing(take.key)
    assert driver.handle.step(Outcome(3)) is None  # the late outcome changes nothing
    assert driver.run.state.is_cancelled()
    assert not driver.handle.cancel()


def test_a_run_cancelled_before_its_body_starts_never_starts():
    driver = ScriptedDriver(flaky, {"x": 1}, [])
    body = driver.step(until=CallBody)
    assert isinstance(body, CallBody)
    assert driver.handle.cancel()
    assert not driver.handle.body_started("w")  # the runner must not run it
    assert [s.name for s in driver.run.history] == ["Pending", "Cancelled"]
    assert driver.run.state.message == "Cancelled before it started."


def test_hooks_are_hook_calls_after_the_final_state():
    calls = []
    hooked = flaky.with_options(retries=0, on_completion=[lambda *a: calls.append(a)])
    driver = ScriptedDriver(hooked, {"x": 1}, [Outcome(1), Outcome(None)])
    driver.step()
    assert driver.kinds() == ["CallBody", "CallHook"]
    assert isinstance(driver.effects[1], CallHook) and not driver.effects[1].is_async
    assert calls == []  # the driver calls hooks; the script answered for it


def test_an_unknown_effect_is_an_error_and_the_run_crashes():
    def lifecycle():
        yield object()

    run, _ = create_task_run(flaky, {"x": 1}, None, None)
    with pytest.raises(TypeError, match="not one of kernelflow's effects"):
        drive_sync(RunHandle(run, lifecycle()))
    assert run.state.is_crashed()

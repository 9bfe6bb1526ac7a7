"""A sync flow's deadline is raised in its own thread, but never inside kernelflow's waits.

An exception injected during a wait can land in a garbage-collection finalizer the wait
triggers and be lost ("Exception ignored in: <Finalize object>"); waits already end at
the deadline, so they raise it themselves.
"""

from __future__ import annotations

import threading
import time

import pytest

from kernelflow import flow, task
from kernelflow._scopes.in_thread_deadline import WaitEndingBy, raise_in_this_thread_at
from kernelflow._scopes.scope import Scope
from kernelflow.exceptions import DeadlineExceeded


def busy_for(seconds: float) -> int:
    """Python bytecode for ``seconds``: an injected exception would land in here."""
    ends, spins = time.monotonic() + seconds, 0
    while time.monotonic() < ends:
        spins += 1
    return spins


def test_plain_code_past_the_deadline_gets_the_exception_where_it_runs():
    with pytest.raises(DeadlineExceeded, match="exceeded timeout of 0.1"):
        with raise_in_this_thread_at(Scope.after(0.1, "Flow run")):
            busy_for(2)


def test_a_wait_that_ends_by_the_deadline_raises_it_when_it_returns_not_inside():
    reached_end_of_wait = False
    with pytest.raises(DeadlineExceeded):
        with raise_in_this_thread_at(Scope.after(0.1, "Flow run")):
            with WaitEndingBy(0.12):
                busy_for(0.4)  # the wait overruns its bound: still not interrupted
                reached_end_of_wait = True
    assert reached_end_of_wait


def test_a_wait_with_no_bound_is_interrupted_like_plain_code():
    with pytest.raises(DeadlineExceeded):
        with raise_in_this_thread_at(Scope.after(0.1, "Flow run")):
            with WaitEndingBy(None):
                busy_for(2)
            pytest.fail("the wait should have been interrupted")


def test_a_wait_that_raises_its_own_timeout_is_not_followed_by_a_second_one():
    with pytest.raises(TimeoutError, match="waiting") as raised:
        with raise_in_this_thread_at(Scope.after(0.1, "Flow run")):
            with WaitEndingBy(0.1):
                busy_for(0.2)
                raise TimeoutError("timed out while waiting")
    assert not isinstance(raised.value, DeadlineExceeded)
    busy_for(0.2)  # nothing pending lands afterwards


def test_outside_a_guard_a_wait_marker_does_nothing():
    with WaitEndingBy(0.0):
        busy_for(0.05)


def test_a_flow_waiting_at_its_deadline_gets_the_waits_own_timeout_error():
    # In CI the injected deadline landed in a multiprocessing finalizer that ran during
    # such a wait, and was lost. Now the wait itself raises, in the flow body.
    release = threading.Event()
    caught = []

    @task
    def held():
        release.wait(10)

    elsewhere = held.submit()  # a background run: the flow's deadline does not end it

    @flow(timeout_seconds=0.3)
    def too_slow():
        try:
            return elsewhere.result()
        except BaseException as error:
            caught.append(error)
            raise

    try:
        for _ in range(3):  # the timer and the wait end at the same instant: race them
            state = too_slow(return_state=True)
            assert state.name == "TimedOut"
    finally:
        release.set()
    assert len(caught) == 3
    for error in caught:  # an injected one would be a subclass made to carry its message
        assert type(error) is DeadlineExceeded
        assert "Flow run exceeded timeout of 0.3" in str(error)


def test_an_alarm_during_a_finalizer_is_delivered_after_it_not_lost():
    # Garbage collection runs weakref callbacks (WeakKeyDictionary's ``remove``) and
    # __del__ methods wherever it happens to: an error raised in one is printed as
    # "Exception ignored" and lost, and the body runs on. The alarm that lands in one
    # comes again a moment later.
    import signal
    import sys

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("the alarm signal is for the main thread")
    finalizer: dict = {"__name__": "weakref", "sys": sys}  # a function of module weakref
    exec("def remove():\n    return sys._getframe()", finalizer)
    guard = raise_in_this_thread_at(Scope.after(30, "Flow run"))
    lost = []
    with pytest.raises(DeadlineExceeded):
        with guard:
            try:
                guard._on_alarm(signal.SIGALRM, finalizer["remove"]())
            except DeadlineExceeded:
                lost.append("raised in the finalizer")
            assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.001
            busy_for(2)  # ...but here, a moment later
    assert not lost

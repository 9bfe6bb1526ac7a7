"""What runs on a Dask worker per call (``_runners/dask_worker.py``): start reports only
for calls that need them, kept body threads, and start reports handed on in order.

The runner tests use a real LocalCluster of 2 single-threaded worker processes."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest

distributed = pytest.importorskip("distributed")

import kernelflow  # noqa: E402
from kernelflow import flow, task  # noqa: E402
from kernelflow._runners.dask_worker import (  # noqa: E402
    STARTED_TOPIC,
    StartReports,
    _BodyThreads,
)
from kernelflow._runners.remote import close_warm_backends  # noqa: E402
from kernelflow.task_runners import DaskTaskRunner  # noqa: E402
from tests.test_lifecycle_runners import DASK_KWARGS  # noqa: E402


@pytest.fixture(scope="module")
def runner():
    yield DaskTaskRunner(cluster_kwargs=DASK_KWARGS)
    close_warm_backends()


@task
def inc(x: int) -> int:
    return x + 1


@task
def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _reported_keys(runner) -> set[str]:
    return {message["key"] for _, message in runner.client.get_events(STARTED_TOPIC)}


def test_quick_mapped_runs_take_their_start_from_their_replies(runner):
    @flow(task_runner=runner)
    def mapped(n: int) -> list[int]:
        return inc.map(range(n)).result()

    assert mapped(40) == list(range(1, 41))
    runs = kernelflow.last_run().task_runs
    assert len(runs) == 40
    workers = set()
    for run in runs:
        assert [s.name for s in run.history] == ["Pending", "Running", "Completed"]
        pending, running, completed = run.history
        # Each run's own start and end, by its worker's clock: run time, not reply time.
        assert pending.timestamp <= running.timestamp <= completed.timestamp
        assert completed.timestamp - running.timestamp < 0.5
        assert run.worker.startswith(("tls://127.0.0.1:", "tcp://127.0.0.1:"))
        workers.add(run.worker)
    assert len({run.map_index for run in runs}) == 40
    # No start event for a call that ended within REPORT_AFTER: its reply said it all.
    ids = {run.id.hex for run in runs}
    assert not {key for key in _reported_keys(runner) if key.rsplit("-", 2)[1] in ids}


def test_a_long_run_without_a_deadline_shows_running_while_it_runs(runner):
    seen = []

    @flow(task_runner=runner)
    def long() -> float:
        future = nap.submit(1.5)
        deadline = time.monotonic() + 1.2
        while time.monotonic() < deadline and not future.state.is_running():
            time.sleep(0.01)
        seen.append(future.state.name)
        return future.result()

    assert long() == 1.5
    assert seen == ["Running"]  # reported by the worker, long before the reply


def test_a_run_with_a_timeout_reports_its_start_at_once(runner):
    @flow(task_runner=runner)
    def timed() -> int:
        return inc.with_options(timeout_seconds=30).submit(1).result()

    assert timed() == 2
    run = kernelflow.last_run().task_runs[0]
    assert [s.name for s in run.history] == ["Pending", "Running", "Completed"]
    reported = {key for key in _reported_keys(runner) if key.rsplit("-", 2)[1] == run.id.hex}
    assert len(reported) == 1  # its clock started when the worker said it began


class _FakeFuture:
    def __init__(self) -> None:
        self.status = "pending"


class _FakeCall:
    def __init__(self, key: str) -> None:
        self.key = key
        self.future = _FakeFuture()
        self.done = False
        self.started = False
        self.address = None
        self.ended_quietly = False
        self.shown: list[tuple[str, float]] = []
        self.on_started = lambda worker, at: self.shown.append((worker, at))


def test_a_start_report_waits_for_the_quiet_calls_it_names():
    quiet, later = _FakeCall("quiet"), _FakeCall("later")
    away = {"quiet": quiet}
    reports = StartReports(away.get)
    # The worker ended "quiet" without a report (its reply is not handed on yet), then
    # started "later": shown Running now, the worker would seem to run both.
    reports.started(later, "w1", 5.0, ["quiet", "gone"])
    assert later.shown == [] and quiet.address == "w1"
    quiet.done = True  # its reply was handed on: it showed Running and ended
    reports.ended(quiet)
    assert later.shown == [("w1", 5.0)] and later.started


def test_a_start_report_naming_settled_calls_is_handed_on_at_once():
    settled, later = _FakeCall("settled"), _FakeCall("later")
    settled.done = True
    reports = StartReports({"settled": settled}.get)
    reports.started(later, "w1", 5.0, ["settled"])
    assert later.shown == [("w1", 5.0)]


def test_body_threads_are_kept_for_the_next_body():
    threads = _BodyThreads()
    seen = []
    for _ in range(5):
        done = threading.Event()

        def job(done=done):
            seen.append(threading.get_ident())
            done.set()

        threads.run(contextvars.copy_context(), job)
        assert done.wait(5)
        time.sleep(0.01)  # its thread goes back to waiting
    assert len(set(seen)) == 1


def test_a_body_still_running_does_not_hold_up_the_next():
    threads = _BodyThreads()
    release, second_ran = threading.Event(), threading.Event()

    threads.run(contextvars.copy_context(), release.wait)  # a given-up body, still running
    threads.run(contextvars.copy_context(), second_ran.set)
    assert second_ran.wait(5)
    release.set()


def test_a_run_cancelled_before_its_start_report_claims_no_more_than_is_known(runner):
    # A call with no deadline reports its start only after 10 ms (or with its reply), so
    # a run cancelled before then may have started on its worker: its record says what
    # is known. (A run on a thread says "Cancelled before it started": there it is known.)
    @flow(task_runner=runner)
    def cancelled_soon() -> tuple[str, str]:
        future = nap.submit(5.0)
        time.sleep(0.005)
        assert future.cancel()
        return future.state.name, future.state.message

    started = time.monotonic()
    assert cancelled_soon() == ("Cancelled", "Cancelled before its worker reported starting it.")
    assert time.monotonic() - started < 4  # its call was stopped, not waited for

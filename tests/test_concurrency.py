"""Global concurrency and rate limits (kernelflow.concurrency): threads, real processes,
a real Dask cluster, rate-limit spacing, unknown and impossible limits."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from kernelflow import flow, task
from kernelflow.concurrency import asyncio as aconcurrency
from kernelflow.concurrency import (
    delete_limit,
    read_limit,
    read_limits,
    set_limit,
)
from kernelflow.concurrency.sync import concurrency, rate_limit
from kernelflow.exceptions import (
    AcquireConcurrencySlotTimeoutError,
    ConcurrencySlotAcquisitionError,
    InvalidOptionError,
    ObjectNotFound,
)


def most_at_once(spans: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) spans open at one instant."""
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    open_now = peak = 0
    for _, step in events:  # at equal times the end (-1) sorts first: touching is not overlap
        open_now += step
        peak = max(peak, open_now)
    return peak


def test_threads_never_hold_more_than_the_limit():
    set_limit("db", limit=2)
    spans: list[tuple[float, float]] = []

    def work() -> None:
        with concurrency("db"):
            start = time.time()
            time.sleep(0.05)
            spans.append((start, time.time()))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(spans) == 8
    assert most_at_once(spans) == 2
    assert read_limit("db").active_slots == 0  # every slot given back


def test_slots_are_given_back_when_the_block_raises():
    set_limit("one", limit=1)
    with pytest.raises(ZeroDivisionError), concurrency("one"):
        raise ZeroDivisionError
    with concurrency("one", timeout_seconds=1):
        assert read_limit("one").active_slots == 1


_HOLDER = textwrap.dedent(
    """
    import json, sys, time
    from kernelflow.concurrency.sync import concurrency
    spans = []
    for _ in range(4):
        with concurrency("shared", occupy=int(sys.argv[1])):
            start = time.time()
            time.sleep(0.05)
            spans.append((start, time.time()))
    print(json.dumps(spans))
    """
)


def _spans_of_three_holder_processes(occupy: int) -> list[tuple[float, float]]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(occupy)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(3)
    ]
    spans = []
    for process in processes:
        out, _ = process.communicate(timeout=120)
        assert process.returncode == 0
        spans += [tuple(span) for span in json.loads(out)]
    assert len(spans) == 12
    return spans


def test_three_processes_never_hold_more_than_the_limit():
    set_limit("shared", limit=2)
    assert most_at_once(_spans_of_three_holder_processes(occupy=1)) <= 2


def test_occupy_counts_slots_across_processes():
    set_limit("shared", limit=2)
    # each holder takes both slots: one at a time
    assert most_at_once(_spans_of_three_holder_processes(occupy=2)) == 1


def test_a_killed_holder_does_not_keep_its_slots():
    set_limit("held", limit=1)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time\nfrom kernelflow.concurrency.sync import concurrency\n"
            "with concurrency('held'):\n    print('in', flush=True)\n    time.sleep(600)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "in"
        with pytest.raises(AcquireConcurrencySlotTimeoutError):
            with concurrency("held", timeout_seconds=0.2):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
    with concurrency("held", timeout_seconds=5):
        assert read_limit("held").active_slots == 1


def test_timeout_raises_a_timeout_error():
    set_limit("busy", limit=1)
    with concurrency("busy"):
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="timed out after 0.2 second"):
            with concurrency("busy", timeout_seconds=0.2):
                pass
        assert 0.15 < time.monotonic() - start < 2


def test_rate_limit_spaces_calls_by_the_slot_decay():
    set_limit("api", limit=1, slot_decay_per_second=10)
    times = []
    for _ in range(5):
        rate_limit("api")
        times.append(time.monotonic())
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.09 for gap in gaps), gaps  # one slot back every 0.1 s
    assert times[-1] - times[0] < 1.5


def test_rate_limit_lets_a_burst_of_limit_through_at_once():
    set_limit("burst", limit=3, slot_decay_per_second=5)
    start = time.monotonic()
    for _ in range(3):
        rate_limit("burst")
    assert time.monotonic() - start < 0.15
    rate_limit("burst")  # the fourth waits for a slot to decay (0.2 s)
    assert time.monotonic() - start >= 0.18


def test_rate_limit_needs_a_slot_decay():
    set_limit("plain", limit=2)
    with pytest.raises(ConcurrencySlotAcquisitionError, match="slot_decay_per_second"):
        rate_limit("plain")


def test_an_unknown_limit_warns_once_and_goes_on(kf_logs):
    with concurrency("never-made-1"):
        pass
    with concurrency("never-made-1"):
        pass
    rate_limit("never-made-1")
    warnings = [r.getMessage() for r in kf_logs if "never-made-1" in r.getMessage()]
    assert len(warnings) == 1
    assert "do not exist - skipping acquisition" in warnings[0]
    assert "set_limit" in warnings[0]


def test_an_unknown_limit_warns_in_the_run_log(kf_logs):
    @task
    def guarded() -> int:
        with concurrency("never-made-2"):
            return 1

    @flow
    def guarded_flow() -> int:
        return guarded()

    assert guarded_flow() == 1
    [record] = [r for r in kf_logs if "never-made-2" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert record.task_run_name.startswith("guarded")


def test_strict_refuses_an_unknown_limit():
    with pytest.raises(ConcurrencySlotAcquisitionError, match="must be created"):
        with concurrency("never-made-3", strict=True):
            pass


def test_more_slots_than_the_limit_has_is_refused_at_once():
    set_limit("small", limit=2)
    with pytest.raises(ConcurrencySlotAcquisitionError, match="has only 2"):
        with concurrency("small", occupy=3):
            pass


def test_several_limits_are_taken_all_or_none():
    set_limit("a", limit=1)
    set_limit("b", limit=1)
    with concurrency("b"):
        with pytest.raises(TimeoutError):
            with concurrency(["a", "b"], timeout_seconds=0.1):
                pass
        assert read_limit("a").active_slots == 0  # "a" was not taken while waiting
    with concurrency(["a", "b"], timeout_seconds=1):
        assert [limit.active_slots for limit in read_limits()] == [1, 1]


def test_an_inactive_limit_does_not_limit():
    set_limit("off", limit=1, active=False)
    with concurrency("off"), concurrency("off", timeout_seconds=0.1):
        pass


def test_limits_are_created_changed_and_deleted():
    created = set_limit("x", limit=2, slot_decay_per_second=0.5)
    assert (created.limit, created.slot_decay_per_second, created.active) == (2, 0.5, True)
    assert set_limit("x", limit=4).limit == 4
    delete_limit("x")
    with pytest.raises(ObjectNotFound, match="set_limit"):
        read_limit("x")
    with pytest.raises(ObjectNotFound):
        delete_limit("x")


@pytest.mark.parametrize(
    "call",
    [
        lambda: set_limit("", limit=1),
        lambda: set_limit("x", limit=0),
        lambda: set_limit("x", limit=1, slot_decay_per_second=-1),
        lambda: rate_limit("x", occupy=0),
    ],
)
def test_bad_settings_are_refused(call):
    with pytest.raises(InvalidOptionError):
        call()


def test_asyncio_concurrency_bounds_coroutines():
    set_limit("async-db", limit=2)
    spans = []

    async def work() -> None:
        async with aconcurrency.concurrency("async-db"):
            start = time.time()
            await asyncio.sleep(0.05)
            spans.append((start, time.time()))

    async def main() -> None:
        await asyncio.gather(*(work() for _ in range(6)))

    asyncio.run(main())
    assert len(spans) == 6
    assert most_at_once(spans) == 2


def test_asyncio_rate_limit_spaces_calls():
    set_limit("async-api", limit=1, slot_decay_per_second=10)

    async def main() -> list[float]:
        times = []
        for _ in range(3):
            await aconcurrency.rate_limit("async-api")
            times.append(time.monotonic())
        return times

    times = asyncio.run(main())
    assert times[2] - times[0] >= 0.18


def test_tasks_of_a_flow_share_a_limit():
    set_limit("flow-db", limit=2)
    spans = []

    @task
    def query(i: int) -> int:
        with concurrency("flow-db"):
            start = time.time()
            time.sleep(0.05)
            spans.append((start, time.time()))
        return i

    @flow
    def queries() -> list[int]:
        return query.map(range(6)).result()

    assert queries() == list(range(6))
    assert most_at_once(spans) == 2


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow.concurrency", *args], capture_output=True, text=True
    )


def test_the_command_line_manages_limits_as_prefect_gcl_does():
    assert _cli("create", "api", "--limit", "5", "--slot-decay-per-second", "1").returncode == 0
    assert read_limit("api").limit == 5  # the same KERNELFLOW_HOME as this process
    assert _cli("update", "api", "--limit", "10").stdout.strip() == (
        "api: 0/10 slots in use, 1 slots/s decay (active)"
    )
    assert _cli("disable", "api").returncode == 0 and not read_limit("api").active
    assert "(inactive)" in _cli("ls").stdout
    assert _cli("delete", "api").stdout.strip() == "Deleted concurrency limit 'api'."
    missing = _cli("inspect", "api")
    assert missing.returncode == 1 and "No concurrency limit named 'api'" in missing.stderr

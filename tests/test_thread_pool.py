"""The thread runner's pool: threads made on demand, reused when idle, never past the bound."""

from __future__ import annotations

import threading
import time

from kernelflow._runners.thread_pool import DaemonThreadPool


def run_and_wait(pool: DaemonThreadPool, fn, *args) -> None:
    done = threading.Event()

    def job() -> None:
        try:
            fn(*args)
        finally:
            done.set()

    pool.submit(job)
    assert done.wait(10)


def wait_until_idle(pool: DaemonThreadPool) -> None:
    """Until a thread that finished its job says it is free (just after the job ends)."""
    deadline = time.monotonic() + 10
    while not pool._idle:
        assert time.monotonic() < deadline
        time.sleep(0.001)


def test_a_thread_that_finished_its_job_takes_the_next_one():
    pool = DaemonThreadPool(8, "test-pool")
    seen: set[str] = set()
    for _ in range(20):
        run_and_wait(pool, lambda: seen.add(threading.current_thread().name))
        wait_until_idle(pool)
    pool.shutdown(wait=True)
    assert len(pool._threads) == 1
    assert seen == {"test-pool_0"}


def test_busy_threads_make_new_ones_up_to_the_bound_and_no_further():
    pool = DaemonThreadPool(3, "test-pool")
    release = threading.Event()
    started = threading.Semaphore(0)
    names: list[str] = []

    def blocked() -> None:
        names.append(threading.current_thread().name)
        started.release()
        release.wait(10)

    for _ in range(5):
        pool.submit(blocked)
    for _ in range(3):
        assert started.acquire(timeout=10)
    assert not started.acquire(timeout=0.2)  # the other two wait for a free thread
    assert len(pool._threads) == 3
    release.set()
    for _ in range(2):
        assert started.acquire(timeout=10)
    pool.shutdown(wait=True)
    assert sorted(set(names)) == ["test-pool_0", "test-pool_1", "test-pool_2"]


def test_a_failing_job_leaves_its_thread_working_and_daemon():
    pool = DaemonThreadPool(1, "test-pool")
    run_and_wait(pool, lambda: 1 / 0)
    ran = []
    run_and_wait(pool, lambda: ran.append(threading.current_thread()))
    assert ran[0].daemon and ran[0] is pool._threads[0]
    pool.shutdown(wait=True)


def test_shutdown_can_drop_queued_jobs_and_refuses_new_ones():
    pool = DaemonThreadPool(1, "test-pool")
    release = threading.Event()
    ran = []
    pool.submit(release.wait, 10)
    for i in range(5):
        pool.submit(ran.append, i)
    pool.shutdown(wait=False, cancel_futures=True)
    release.set()
    for thread in pool._threads:
        thread.join(10)
    assert ran == []
    try:
        pool.submit(ran.append, 0)
    except RuntimeError as error:
        assert "shutdown" in str(error)
    else:
        raise AssertionError("submit after shutdown was accepted")

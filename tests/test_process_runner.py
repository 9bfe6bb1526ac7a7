"""ProcessPoolTaskRunner's failure modes, each against real worker processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from kernelflow import flow, task
from kernelflow._runners.remote import close_warm_backends
from kernelflow.exceptions import CrashedRun, SerializationError
from kernelflow.task_runners import ProcessPoolTaskRunner


@pytest.fixture(autouse=True)
def _fresh_pools():
    yield
    close_warm_backends()  # every test leaves no worker process behind


def runner() -> ProcessPoolTaskRunner:
    return ProcessPoolTaskRunner(max_workers=2)


@task
def square(x: int) -> int:
    time.sleep(0.05)
    return x * x


@task
def die(how: str) -> None:
    time.sleep(0.2)  # let the other runs get going first
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_a_dead_worker_crashes_only_its_own_run(how):
    @flow(task_runner=runner())
    def with_a_crash():
        doomed = die.submit(how)
        others = square.map(range(8))
        return doomed.wait(60) and doomed.state, others.result()

    start = time.monotonic()
    doomed, others = with_a_crash()
    assert doomed.is_crashed()
    assert isinstance(doomed.data, CrashedRun)
    assert "worker process running this task" in doomed.message and "died" in doomed.message
    assert ("SIGKILL" if how == "sigkill" else "exit code 3") in doomed.message
    assert others == [x * x for x in range(8)]
    with pytest.raises(CrashedRun):
        doomed.result()
    assert time.monotonic() - start < 30

    # The same runner's next flow works, on a replaced worker.
    @flow(task_runner=runner())
    def afterwards():
        return square.map(range(4)).result()

    assert afterwards() == [0, 1, 4, 9]


def test_the_pool_stays_warm_across_flow_calls():
    @task
    def pid(_):
        return os.getpid()

    @flow(task_runner=runner())
    def pids():
        return set(pid.map(range(6)).result())

    first, second = pids(), pids()
    assert first & second  # the same worker processes served both calls
    assert os.getpid() not in first


def test_an_unpicklable_argument_names_the_parameter_and_the_task():
    @task
    def uses_lock(data, lock):
        return data

    @flow(task_runner=runner())
    def send_a_lock():
        return uses_lock.submit([1, 2], threading.Lock(), return_state=True)

    state = send_a_lock(return_state=True).result(raise_on_failure=False)  # the task's state
    assert state.is_failed()
    error = state.data
    assert isinstance(error, SerializationError)
    assert "'lock'" in str(error) and "'uses_lock'" in str(error)
    assert "lock" in str(error).lower() and "cannot be pickled" in str(error)


def test_an_unpicklable_result_fails_the_run_without_hanging():
    @task(retries=2)
    def returns_a_lock():
        return threading.Lock()

    @flow(task_runner=runner())
    def get_a_lock():
        return returns_a_lock.submit(return_state=True)

    start = time.monotonic()
    state = get_a_lock(return_state=True).result(raise_on_failure=False)  # the task's state
    assert time.monotonic() - start < 30
    assert state.is_failed() and isinstance(state.data, SerializationError)
    assert "returns_a_lock" in state.message and "cannot be sent back" in state.message
    assert "lock" in state.message


def test_an_exception_that_cannot_be_unpickled_still_arrives_as_text():
    @task
    def odd_failure():
        class Odd(Exception):
            def __init__(self, a, b):  # unpickling calls Odd(message): it fails
                super().__init__(f"{a}-{b}")

        raise Odd(1, 2)

    @flow(task_runner=runner())
    def odd():
        return odd_failure.submit(return_state=True)

    state = odd(return_state=True).result(raise_on_failure=False)  # the task's state
    assert state.is_failed()
    assert "raise Odd(1, 2)" in str(state.data)


def test_prints_and_logs_of_a_task_come_back_to_the_notebook(capsys):
    @task(log_prints=True)
    def chatty():
        print("hello from a worker")
        return os.getpid()

    @task
    def plain():
        print("plain print")

    @flow(task_runner=runner())
    def talk():
        return chatty.submit().result(), plain.submit().result()

    pid, _ = talk()
    captured = capsys.readouterr()
    assert pid != os.getpid()
    assert "hello from a worker" in captured.err  # through the run logger
    assert "plain print" in captured.out


def test_a_timed_out_run_is_stopped_and_its_worker_replaced():
    @task(timeout_seconds=0.5)
    def forever():
        while True:
            time.sleep(0.1)

    @flow(task_runner=runner())
    def stuck():
        return forever.submit(return_state=True), square.map(range(4)).result()

    start = time.monotonic()
    state, squares = stuck()
    assert state.name == "TimedOut" and squares == [0, 1, 4, 9]
    assert time.monotonic() - start < 20


def test_cancel_all_stops_running_calls():
    @task
    def slow():
        time.sleep(30)

    with runner() as active:
        futures = [active.submit(slow, {}) for _ in range(5)]
        time.sleep(1.0)
        start = time.monotonic()
        active.cancel_all()
        assert all(f.wait(5) for f in futures)
        assert time.monotonic() - start < 5
        assert all(f.state.is_cancelled() for f in futures)
    assert ProcessPoolTaskRunner(2).duplicate() == ProcessPoolTaskRunner(2)


def test_import_kernelflow_does_not_import_distributed_or_the_pool():
    code = (
        "import sys, kernelflow, kernelflow.task_runners; "
        "assert 'distributed' not in sys.modules; "
        "assert 'kernelflow._runners.pool' not in sys.modules; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_workers_that_cannot_start_give_a_clear_error_not_a_spawn_loop(tmp_path, monkeypatch):
    from kernelflow._runners.pool import ProcessPool

    # The children get this process's sys.path: a broken cloudpickle first on it makes
    # every worker die while it starts (this process imported the real one long ago).
    (tmp_path / "cloudpickle.py").write_text("raise ImportError('broken on purpose')\n")
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    pool = ProcessPool(1)
    try:
        job = pool.submit(b"", b"")
        deadline = time.monotonic() + 60
        while not job.done and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(CrashedRun, match="die before they start"):
            job.result()
        with pytest.raises(RuntimeError, match="die before they start"):
            pool.submit(b"", b"")
        assert pool.pids == [] and not pool.usable  # no worker left, none being respawned
    finally:
        pool.close()


def test_many_runs_with_timeouts_do_not_start_a_thread_each():
    @task(timeout_seconds=30)
    def quick(x):
        return x

    @flow(task_runner=runner())
    def many():
        futures = quick.map(range(200))
        peak = threading.active_count()
        return futures.result(), peak

    results, peak = many()
    assert results == list(range(200))
    assert peak < 30


def test_a_flow_timeout_stops_its_running_calls():
    @task
    def slow(_):
        time.sleep(30)

    @flow(task_runner=runner(), timeout_seconds=1)
    def too_slow():
        return slow.map(range(2)).result()

    start = time.monotonic()
    state = too_slow(return_state=True)
    assert state.name == "TimedOut"
    assert time.monotonic() - start < 10

    @flow(task_runner=runner())
    def afterwards():
        return square.map(range(3)).result()

    assert afterwards() == [0, 1, 4]  # the killed workers were replaced


def test_editing_a_module_replaces_the_warm_workers(tmp_path, monkeypatch):
    module = tmp_path / "kf_edited_module.py"
    module.write_text("def version():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import kf_edited_module

    version = task(kf_edited_module.version)  # travels by reference: workers import it

    @flow(task_runner=runner())
    def which():
        return version.submit().result()

    assert which() == 1
    module.write_text("def version():\n    return 2\n")
    os.utime(module, (time.time() + 5, time.time() + 5))  # a clearly newer mtime
    assert which() == 2
    monkeypatch.delitem(sys.modules, "kf_edited_module")

"""The notebook's Stop button: SIGINT to the main thread, which is waiting on the flow.

A real signal sent to the main thread, as the kernel does on interrupt, so that blocking
waits are interrupted the way they are in a notebook.
"""

import pathlib
import signal
import threading
import time

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.futures import wait
from kernelflow.task_runners import ThreadPoolTaskRunner


@task
def long_sleep(seconds):
    time.sleep(seconds)
    return seconds


def press_stop_after(seconds):
    main = threading.main_thread().ident
    timer = threading.Timer(seconds, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    return timer


def test_interrupt_while_a_flow_waits_cancels_every_run_and_returns_at_once():
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def four_long_tasks():
        return long_sleep.map([30, 30, 30, 30]).result()

    press_stop_after(0.3)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt) as stopped:
        four_long_tasks()
    assert time.perf_counter() - started < 2
    # One line saying what stopped, not the engine's frames (nor the waits it was in).
    assert str(stopped.value).startswith("Flow run 'four-long-tasks-")
    assert "cancelled 4 task run(s): long_sleep-0, long_sleep-1" in str(stopped.value)
    assert stopped.value.__suppress_context__ and stopped.value.__cause__ is None
    run = kernelflow.last_run()
    assert run.state.is_cancelled()
    assert {r.state.name for r in run.task_runs} == {"Cancelled"}
    messages = sorted(r.state.message for r in run.task_runs)
    assert messages[0].startswith("Cancelled before it started")  # two were queued
    assert "stopped" in messages[-1]  # two were running

    # The next cell can run a flow at once.
    @flow
    def next_cell():
        return long_sleep(0)

    assert next_cell() == 0


def test_interrupt_while_waiting_on_a_future_at_top_level_cancels_it():
    future = long_sleep.submit(30)
    queued = long_sleep.submit(30)
    press_stop_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        future.result()
    assert future.state.is_cancelled() and future.done()
    assert not queued.state.is_cancelled()  # only what was waited for is stopped
    queued.cancel()


def test_interrupt_while_in_wait_at_top_level_cancels_what_was_waited_for():
    futures = [long_sleep.submit(30) for _ in range(3)]
    press_stop_after(0.2)
    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        wait(futures)
    assert time.perf_counter() - started < 2
    assert all(f.state.is_cancelled() for f in futures)


def test_interrupt_inside_a_task_running_in_the_flow_thread():
    @flow
    def direct():
        long_sleep(30)

    press_stop_after(0.2)
    with pytest.raises(KeyboardInterrupt):
        direct()
    run = kernelflow.last_run()
    assert run.state.is_cancelled() and run.task_runs[0].state.is_cancelled()


def test_the_unmaintained_nest_asyncio_is_not_used_anywhere():
    root = pathlib.Path(__file__).parents[1]
    for path in [*root.glob("src/**/*.py"), root / "pyproject.toml"]:
        text = path.read_text()
        assert "nest_asyncio\n" not in text and "import nest_asyncio " not in text
        assert '"nest-asyncio>' not in text and '"nest_asyncio' not in text

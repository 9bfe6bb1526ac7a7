"""kernelflow.runs(): bounded by count and by the task-run records the kept runs hold."""

from __future__ import annotations

import pytest

import kernelflow
from kernelflow import _run_history, flow, task


@task
def step(x):
    return x


@flow
def four_steps():
    return [step(i) for i in range(4)]


@flow
def with_a_subflow():
    four_steps()
    return step(0)


@pytest.fixture(autouse=True)
def empty_history(monkeypatch):
    # These tests are about this session's runs in memory: the history on disk, which
    # keeps every run, is off (tests/test_history*.py test it).
    monkeypatch.setenv("KERNELFLOW_HISTORY", "off")
    kernelflow.runs.clear()
    yield
    kernelflow.runs.clear()


def test_old_runs_go_once_the_kept_ones_hold_too_many_task_runs(monkeypatch):
    monkeypatch.setattr(_run_history, "RUN_HISTORY_TASK_RUNS", 10)
    for _ in range(5):
        four_steps()
    kept = kernelflow.runs()
    # Checked as each run starts: those before the latest hold at most 10 task runs.
    assert [len(run.task_runs) for run in kept] == [4, 4, 4]
    assert kept[0] is kernelflow.last_run()  # newest first


def test_subflows_task_runs_count_too(monkeypatch):
    monkeypatch.setattr(_run_history, "RUN_HISTORY_TASK_RUNS", 10)
    for _ in range(4):
        with_a_subflow()  # 1 task run of its own, 4 in its subflow
    assert len(kernelflow.runs()) == 3  # 2 x 5 before the latest


def test_the_latest_run_is_kept_whatever_its_size(monkeypatch):
    monkeypatch.setattr(_run_history, "RUN_HISTORY_TASK_RUNS", 2)
    four_steps()
    four_steps()
    assert len(kernelflow.runs()) == 1
    assert kernelflow.last_run().retry() == [0, 1, 2, 3]  # and it can still be retried

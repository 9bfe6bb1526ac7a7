"""kernelflow.logging: flow_run_logger/task_run_logger for records, disable_run_logger."""

from __future__ import annotations

import logging

import pytest

from kernelflow import flow, task
from kernelflow.client.schemas.objects import FlowRun, TaskRun
from kernelflow.logging import disable_run_logger, get_run_logger
from kernelflow.logging.loggers import flow_run_logger, task_run_logger
from kernelflow.states import State


def test_hook_loggers_from_the_run_records(kf_logs):
    def on_completion(flow_obj, flow_run: FlowRun, state: State) -> None:
        flow_run_logger(flow_run, flow_obj, source="hook").warning("flow done")

    def task_done(task_obj, task_run: TaskRun, state: State) -> None:
        task_run_logger(task_run, task_obj).warning("task done")

    @task(on_completion=[task_done])
    def work() -> int:
        return 1

    @flow(on_completion=[on_completion])
    def pipeline() -> int:
        return work()

    pipeline()
    [flow_line] = [r for r in kf_logs if r.getMessage() == "flow done"]
    assert flow_line.name == "kernelflow.flow_runs"
    assert flow_line.flow_run_name.startswith("pipeline-") and flow_line.source == "hook"
    [task_line] = [r for r in kf_logs if r.getMessage() == "task done"]
    assert task_line.name == "kernelflow.task_runs" and task_line.task_run_name == "work-0"
    assert task_line.flow_run_name == flow_line.flow_run_name


def test_flow_run_logger_needs_a_run_or_an_id():
    with pytest.raises(ValueError, match="flow_run"):
        flow_run_logger()
    assert flow_run_logger(flow_run_id="1234").extra["flow_run_name"] == "<unknown>"


def test_disable_run_logger_silences_task_fn_and_restores(kf_logs):
    @task
    def greet(name: str) -> str:
        get_run_logger().warning("hello %s", name)
        return f"hi {name}"

    with disable_run_logger():
        assert greet.fn("ada") == "hi ada"
        assert logging.getLogger("kernelflow.task_runs").disabled
    assert not [r for r in kf_logs if "hello" in r.getMessage()]
    assert not logging.getLogger("kernelflow.task_runs").disabled
    greet.fn("alan")  # outside the block it logs again
    assert [r.getMessage() for r in kf_logs if "hello" in r.getMessage()] == ["hello alan"]

"""kernelflow.logging: flow_run_logger/task_run_logger for records, disable_run_logger."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

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


def _cached_twice():
    @task(cache_key_fn=lambda *_: "same")
    def lookup(x: int) -> int:
        return x

    @flow
    def pipeline() -> None:
        lookup(1)
        lookup(1)

    return pipeline


def test_each_task_run_logs_its_end_at_prefects_levels(kf_logs, caplog):
    caplog.set_level(logging.INFO, logger="kernelflow")  # kernelflow's level in a script
    _cached_twice()()
    ends = [
        (r.levelname, r.task_run_name, r.getMessage())
        for r in kf_logs
        if r.name.endswith("task_runs")
    ]
    assert ends == [
        ("INFO", "lookup-0", "Finished in state Completed('cache miss: no cached result yet')"),
        ("INFO", "lookup-1", "Finished in state Cached('cache hit')"),
    ]


_NOTEBOOK = """
import json
from kernelflow import FlowRun, _events, _logging, flow, task

@task(cache_key_fn=lambda *_: "same")
def lookup(x):
    return x

@flow
def pipeline():
    lookup(1)
    lookup(1)

logs = []

def display_opens(run, old, new):  # what the notebook display does for a flow run
    if type(run) is FlowRun and new.is_running() and not logs:
        log = _logging.run_log(run)
        log.shown = True
        logs.append(log)

_logging.keep_run_logs(True)
_events.subscribe(display_opens)
pipeline()
print(json.dumps([text for _, text in logs[0].lines]))
"""


def test_in_a_notebook_task_run_ends_are_left_to_the_display():
    # A fresh process: kernelflow's own log handler, as in a kernel (pytest's are others).
    # The display shows each run's state; a line per run there cost ~50 us a run.
    out = subprocess.run([sys.executable, "-c", _NOTEBOOK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    folded = json.loads(out.stdout)
    assert any("Beginning flow run" in line for line in folded)  # the flow's own lines
    assert not any("Task run 'lookup" in line for line in folded)
    assert "Finished in state" not in out.stderr  # not on the page

"""Prefect names that ported code reaches for: run contexts, runtime, opaque, initializer."""

from __future__ import annotations

import sys

from kernelflow import flow, task
from kernelflow.context import FlowRunContext, TaskRunContext
from kernelflow.runtime import flow_run, task_run
from kernelflow.states import Completed, State
from kernelflow.task_runners import ProcessPoolTaskRunner
from kernelflow.utilities.annotations import opaque


def test_run_contexts_get_and_runtime_names():
    @task(name="inner-task")
    def inner():
        ctx = TaskRunContext.get()
        return ctx.task.name, ctx.task_run.name, task_run.task_name, FlowRunContext.get().flow

    @flow(name="outer-flow")
    def outer():
        ctx = FlowRunContext.get()
        return ctx.flow_run.name == flow_run.name, flow_run.flow_name, inner(), ctx.flow

    same, flow_name, (task_name, run_name, runtime_name, seen_flow), own = outer()
    assert same and flow_name == "outer-flow" and own.name == "outer-flow"
    assert (task_name, run_name, runtime_name) == ("inner-task", "inner-task-0", "inner-task")
    assert seen_flow is own
    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    assert task_run.task_name is None and flow_run.flow_name is None


def test_opaque_resolves_a_future_and_leaves_its_value_alone():
    @task
    def nested():
        return {"data": "value", "inner": Completed(data="inner")}

    @task
    def consume(data):
        return data

    @flow
    def passes_it_on():
        return consume.submit(opaque(nested.submit())).result()

    result = passes_it_on()
    assert result["data"] == "value" and isinstance(result["inner"], State)


def _add_to_path(entry):  # module level: the worker imports this module to find it
    sys.path.append(entry)


@task
def path_has(entry):
    return entry in sys.path


def test_process_pool_initializer_runs_in_each_worker_before_tasks(tmp_path):
    entry = str(tmp_path / "marker")
    runner = ProcessPoolTaskRunner(max_workers=1, initializer=_add_to_path, initargs=(entry,))
    twin = runner.duplicate()
    assert (twin._initializer, twin._initargs) == (_add_to_path, (entry,)) and twin == runner

    @flow(task_runner=runner)
    def checks():
        return path_has.submit(entry).result()

    assert checks() is True

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def without():
        return path_has.submit(entry).result()

    assert without() is False  # a runner without it gets a pool of its own

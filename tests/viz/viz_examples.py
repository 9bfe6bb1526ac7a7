"""Example flows used by the visualize tests, the executed-run graph tests and the
display tests."""

from __future__ import annotations

import pytest

import kernelflow
from kernelflow import flow, task


def subflow_example(calls: list):
    """``outer`` calls a subflow that uses a task, and one whose result comes from no task."""

    @task(viz_return_value=[1000, 2000])
    def produce():
        calls.append("produce")
        return [1000, 2000]

    @task
    def consume(x):
        calls.append("consume")
        return x

    @flow
    def inner(values):
        return consume(values)

    @flow
    def inner_without_tasks(values):
        return len(values)

    @flow
    def outer():
        values = produce()
        result = inner(values)
        consume(result)
        consume(inner_without_tasks(values))

    return outer


def failed_then_retried(loads):
    """``etl`` fails in its last step, ``check``, after the runs ``loads(load)`` makes;
    then, the step fixed, the failed run is retried (reusing those runs).

    Returns:
        The failed flow run, and what the retry returned (the loaded values' sum).
    """
    fixed = {"value": False}

    @task
    def load(i):
        return i

    @task
    def check(values):
        if not fixed["value"]:
            raise ValueError("not yet")
        return sum(values)

    @flow
    def etl():
        return check(loads(load))

    with pytest.raises(ValueError):
        etl()
    failed = kernelflow.last_run()
    fixed["value"] = True
    return failed, failed.retry()

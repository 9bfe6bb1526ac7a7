"""Example flows used by both the visualize tests and the executed-run graph tests."""

from __future__ import annotations

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

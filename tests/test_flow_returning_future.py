"""A flow that returns a failed future still waits for its other task runs first."""

from __future__ import annotations

import pytest

import kernelflow
from kernelflow import allow_failure, flow, task


@pytest.mark.parametrize("attempt", range(5))  # it was a race: repeat to catch it
def test_returning_a_failed_future_does_not_cancel_the_other_runs(attempt):
    @task
    def explode():
        raise ValueError("bad row")

    @task
    def report(value):
        return value

    @task
    def cleanup():
        return "done"

    @flow
    def failing():
        broken = explode.submit()
        skipped = report.submit(broken)
        cleanup.submit(wait_for=[allow_failure(skipped)])
        return broken

    with pytest.raises(ValueError, match="bad row"):
        failing()
    states = {run.name: run.state.name for run in kernelflow.last_run().task_runs}
    assert states == {"explode-0": "Failed", "report-0": "Failed", "cleanup-0": "Completed"}

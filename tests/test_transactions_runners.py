"""Transactions on every runner: the process and Dask runners send only the task body
away, so the transaction a run belongs to, and the values its body sets, must come back
to the notebook process where the hooks run."""

from __future__ import annotations

import pytest

from kernelflow import flow, transaction
from tests.test_task_runners import RUNNERS, _close_backends, make_runner  # noqa: F401
from tests.test_transactions import make_tasks


@pytest.mark.parametrize("fail", [False, True])
def test_submitted_runs_commit_or_roll_back_with_their_values_on_every_runner(
    make_runner,  # noqa: F811
    fail,
):
    log = []
    write, explode = make_tasks(log)  # write sets txn values in its body (in the worker)

    @flow(task_runner=make_runner())
    def pipeline():
        with transaction() as txn:
            a = write.submit("a")
            b = write.submit("b", wait_for=[a])
            if fail:
                explode.submit(wait_for=[b])  # nobody waits for it: the transaction does
        return txn.state

    assert pipeline() == ("ROLLED_BACK" if fail else "COMMITTED")
    hooks = [entry for entry in log if entry[0] != "ran"]  # "ran" is logged in the worker
    if fail:
        assert hooks == [("undo", "/tmp/b"), ("undo", "/tmp/a")]
    else:
        assert hooks == [("commit", "/tmp/a"), ("commit", "/tmp/b")]

"""kernelflow.testing.utilities.prefect_test_harness isolates KERNELFLOW_HOME and runs."""

from __future__ import annotations

import os

import kernelflow
from kernelflow import flow
from kernelflow.concurrency import read_limits, set_limit
from kernelflow.testing.utilities import prefect_test_harness


@flow
def answer() -> int:
    return 42


def test_harness_gives_an_empty_home_and_history_and_restores_them():
    answer()
    outside_run = kernelflow.last_run()
    outside_home = os.environ["KERNELFLOW_HOME"]
    set_limit("outside", limit=1)
    with prefect_test_harness():
        inside_home = os.environ["KERNELFLOW_HOME"]
        assert inside_home != outside_home and os.path.isdir(inside_home)
        assert kernelflow.runs() == [] and kernelflow.last_run() is None
        assert read_limits() == []  # the limits of the real home are not seen
        assert answer() == 42
        assert kernelflow.last_run() is not outside_run
    assert os.environ["KERNELFLOW_HOME"] == outside_home
    assert not os.path.exists(inside_home)
    assert kernelflow.last_run() is outside_run
    assert [limit.name for limit in read_limits()] == ["outside"]


def test_harness_restores_an_unset_home(monkeypatch):
    monkeypatch.delenv("KERNELFLOW_HOME")
    with prefect_test_harness(server_startup_timeout=60):
        assert "KERNELFLOW_HOME" in os.environ
    assert "KERNELFLOW_HOME" not in os.environ

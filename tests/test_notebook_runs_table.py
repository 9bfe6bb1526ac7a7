"""The run history in a real kernel: a run from before a restart, listed as a table,
drawn as a graph, compared and retried in the next session."""

from __future__ import annotations

import pytest

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel

DEFINE = """
import os, kernelflow
from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS

@task(cache_policy=INPUTS)
def load(n):
    return list(range(n))

@task
def total(xs):
    if os.environ.get("KF_BROKEN") == "1":
        raise ValueError("total is broken")
    return sum(xs)

@flow
def nightly(n: int):
    return total(load(n))
"""


def test_a_run_from_before_a_restart_shows_as_a_table_and_a_graph_and_retries(tmp_path):
    env = {"KERNELFLOW_HOME": str(tmp_path / "home")}
    with RealKernel(env=env).start() as kernel:
        kernel.execute(DEFINE)
        kernel.execute("os.environ['KF_BROKEN'] = '1'")
        failed = kernel.execute("nightly(5)", allow_error=True)
        assert not failed.ok
        name = kernel.execute("kernelflow.last_run().name").data("text/plain")[0].strip("'")
        kernel.execute("kernelflow.runs()")  # written before the kernel goes

    # A new kernel, as after a restart (a new process: the first one is gone).
    with RealKernel(env=env).start() as kernel:
        kernel.execute(DEFINE)  # the cells that define the flow, run again
        table = kernel.execute("kernelflow.runs()")
        (html,) = table.data("text/html")
        (text,) = table.data("text/plain")
        assert 'class="kf-runs"' in html and "kf-badge" in html
        assert name in html and "Failed" in html and "1 Completed, 1 Failed" in html
        assert "this one" not in html, text  # an earlier session's run
        assert text.splitlines()[0].split()[:3] == ["STATE", "FLOW", "RUN"]

        graph = kernel.execute(f"kernelflow.runs.get({name!r}).graph()")
        assert graph.ok, graph.error
        drawn = graph.data("image/svg+xml") or graph.data("text/html")
        assert drawn and "load" in str(drawn) and "total" in str(drawn)

        timeline = kernel.execute(f"kernelflow.runs.get({name!r}).timeline()")
        assert "<svg" in timeline.data("text/html")[0]

        retried = kernel.execute(f"kernelflow.runs.get({name!r}).retry()")
        assert retried.data("text/plain") == ["10"]
        states = kernel.execute("[t.state.name for t in kernelflow.last_run().task_runs]")
        assert states.data("text/plain") == ["['Cached', 'Completed']"]

        compared = kernel.execute(f"kernelflow.runs.compare({name!r}, kernelflow.last_run())")
        (html,) = compared.data("text/html")
        assert "load-0" in html and "yes" in html  # reused in the retry

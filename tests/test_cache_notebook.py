"""Caching in a real Jupyter kernel: cells re-run, tasks redefined, the kernel restarted."""

from __future__ import annotations

import os

import pytest

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel  # starts a real kernel: `make test-fast` leaves it out

DEFINE = """
from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS, TASK_SOURCE

calls = []

def clean(x):
    return x * {factor}

@task(cache_policy=INPUTS + TASK_SOURCE)
def work(x):
    calls.append(x)
    return clean(x) + {offset}

@flow
def pipeline(n):
    return [work(i, return_state=True) for i in range(n)]
"""

RUN = """
calls.clear()
states = pipeline(4)
print(len(calls), sorted({s.name for s in states}), [s.result() for s in states])
"""


def test_cells_rerun_edits_and_restarts_in_a_real_kernel(tmp_path):
    home = os.environ["KERNELFLOW_HOME"]
    with RealKernel(env={"KERNELFLOW_HOME": home}, cwd=str(tmp_path)) as kernel:
        kernel.execute(DEFINE.format(factor=2, offset=0))
        assert kernel.execute(RUN).stdout.strip() == "4 ['Completed'] [0, 2, 4, 6]"
        assert kernel.execute(RUN).stdout.strip() == "0 ['Cached'] [0, 2, 4, 6]"

        # Re-running the defining cell unchanged keeps the cache.
        kernel.execute(DEFINE.format(factor=2, offset=0))
        assert kernel.execute(RUN).stdout.strip() == "0 ['Cached'] [0, 2, 4, 6]"

        # A changed task body misses, and says why.
        kernel.execute(DEFINE.format(factor=2, offset=1))
        assert kernel.execute(RUN).stdout.strip() == "4 ['Completed'] [1, 3, 5, 7]"
        reason = kernel.execute("print(states[0].message)").stdout.strip()
        assert reason == "cache miss: source of task `work` changed"

        # A changed helper in another cell misses too.
        kernel.execute("def clean(x):\n    return x * 3\n")
        assert kernel.execute(RUN).stdout.strip() == "4 ['Completed'] [1, 4, 7, 10]"
        reason = kernel.execute("print(states[0].message)").stdout.strip()
        assert reason == "cache miss: source of helper `clean` changed"

        # After a restart, the same cells hit the results stored before it.
        kernel.restart()
        kernel.execute(DEFINE.format(factor=2, offset=1))
        assert kernel.execute(RUN).stdout.strip() == "0 ['Cached'] [1, 3, 5, 7]"

"""A script that used the process or Dask runner exits promptly and leaves no process."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from tests.processes import gone

SCRIPT = """
import json, os
from kernelflow import flow, task
from kernelflow.task_runners import {runner}

@task
def pid(_):
    return os.getpid()

@flow(task_runner={runner}({arguments}))
def pids():
    return sorted(set(pid.map(range(8)).result()))

if __name__ == "__main__":
    print(json.dumps(pids()), flush=True)
"""

CASES = {
    "processpool": ("ProcessPoolTaskRunner", "max_workers=2"),
    "dask": (
        "DaskTaskRunner",
        "cluster_kwargs={'n_workers': 2, 'threads_per_worker': 1, 'dashboard_address': ':0'}",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_exit_closes_warm_pools_and_clusters(case, tmp_path):
    runner, arguments = CASES[case]
    script = tmp_path / "uses_runner.py"
    script.write_text(SCRIPT.format(runner=runner, arguments=arguments))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    worker_pids = [int(pid) for pid in done.stdout.strip()[1:-1].split(",")]
    assert worker_pids and os.getpid() not in worker_pids
    assert time.monotonic() - start < 60
    assert gone(worker_pids, timeout=10)

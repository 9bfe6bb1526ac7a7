"""``python -m kernelflow runs``: the run history from a terminal, in a new process."""

from __future__ import annotations

import os
import subprocess
import sys

import kernelflow
from kernelflow import flow, task


@task
def half(x):
    if x % 2:
        raise ValueError(f"{x} is odd")
    return x // 2


@flow
def halves(x: int):
    return half(x)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kernelflow", *args],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_runs_lists_and_shows_runs_of_another_process():
    halves(4)
    try:
        halves(3)
    except ValueError:
        pass
    failed = kernelflow.last_run()
    kernelflow.runs()  # written before the other process reads

    listed = cli("runs")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["STATE", "FLOW", "RUN", "START", "DURATION", "TASKS", "SESSION"]
    assert [line.split()[0] for line in lines[1:]] == ["Failed", "Completed"]
    assert "1 Failed" in lines[1] and failed.name in lines[1]

    only_failed = cli("runs", "--state", "failed")
    assert [line.split()[0] for line in only_failed.stdout.splitlines()[1:]] == ["Failed"]

    shown = cli("runs", "show", failed.name)
    assert shown.returncode == 0, shown.stderr
    assert f"{failed.name}  (halves)  Failed: ValueError: 3 is odd" in shown.stdout
    assert "Failed     half-0" in shown.stdout
    assert "parameters: {'x': 3}" in shown.stdout
    assert "Finished in state Failed('ValueError: 3 is odd')" in shown.stdout  # its logs


def test_show_of_an_unknown_run_says_so():
    shown = cli("runs", "show", "no-such-run")
    assert shown.returncode == 1
    assert "No flow run named 'no-such-run'" in shown.stderr


def test_clear_empties_the_history():
    halves(2)
    kernelflow.runs()
    assert cli("runs", "clear").stdout.strip() == "Cleared 1 flow run(s)."
    assert cli("runs").stdout.strip() == "No flow runs."

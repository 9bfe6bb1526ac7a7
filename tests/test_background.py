"""Runs submitted outside a flow (the session's background runner), at interpreter exit.

Real interpreters: a script submits work and ends; the work still gets done.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from tests.cache_support import SRC

SCRIPT = """
import pathlib, sys, time
from kernelflow import task

@task
def write(path, seconds):
    time.sleep(seconds)
    pathlib.Path(path).write_text("done")

write.submit(sys.argv[1], float(sys.argv[2]))
print("submitted", flush=True)
"""


def _start(tmp_path, seconds: float) -> tuple[subprocess.Popen, str]:
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    target = tmp_path / "out.txt"
    env = {**os.environ, "PYTHONPATH": SRC, "KERNELFLOW_HOME": str(tmp_path / "home")}
    process = subprocess.Popen(
        [sys.executable, str(script), str(target), str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, str(target)


def test_a_script_that_submits_and_ends_waits_for_the_run_and_says_so(tmp_path):
    process, target = _start(tmp_path, 0.5)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    assert open(target).read() == "done"
    assert "waiting for 1 task run(s) submitted outside a flow" in stderr
    assert "Ctrl+C" in stderr


def test_ctrl_c_at_exit_stops_waiting_and_says_what_was_dropped(tmp_path):
    process, target = _start(tmp_path, 60)
    assert process.stdout.readline().strip() == "submitted"
    assert "waiting for 1 task run(s)" in process.stderr.readline()  # the exit hook waits
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert "not waiting; 1 task run(s) dropped" in stderr
    assert not os.path.exists(target)


def test_an_instant_run_is_simply_done(tmp_path):
    process, target = _start(tmp_path, 0)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 0
    assert open(target).read() == "done"

"""What a failure looks like in a notebook: the user's frames, not kernelflow's.

IPython (like pytest) leaves out frames marked ``__tracebackhide__``; a real kernel
shows the traceback of a failing flow called in a cell.
"""

from __future__ import annotations

import re

import pytest

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel

CELL = """
from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

def only_network_errors(task, task_run, state):
    try:
        state.result()
    except ConnectionError:
        return True
    except Exception:
        return False

@task(retries=2, retry_condition_fn=only_network_errors)
def parse(text):
    return int(text)

@flow(task_runner=ThreadPoolTaskRunner(2))
def load(rows):
    direct = parse(rows[0])
    return [direct, *parse.map(rows[1:]).result()]
"""

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _traceback(kernel: RealKernel, code: str) -> str:
    reply = kernel.execute(code, allow_error=True)
    assert reply.status == "error"
    return ANSI.sub("", "\n".join(reply.error["traceback"]))


@pytest.mark.parametrize("call", ["load(['x', '2'])", "load(['1', 'y'])"])
def test_a_failed_flow_shows_the_users_frames_only(tmp_path, call):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        text = _traceback(kernel, call)
    assert "ValueError: invalid literal for int() with base 10" in text
    assert "return int(text)" in text  # the task's own line
    assert "/kernelflow/" not in text, text  # no frame of kernelflow's machinery
    assert "in only_network_errors" not in text  # no frame of the retry condition


FAN_IN = """
from kernelflow import flow, task

def check_record(x):
    if x == 3:
        raise ValueError(f"bad record {x}")
    return x

@task
def load(i):
    return i

@task
def parse(x):
    return check_record(x)

@task
def combine(xs):
    return sum(xs)

@flow
def pipeline():
    return combine(parse.map(load.map(range(6))))
"""


def test_a_fan_in_failure_shows_the_line_that_raised_and_no_kernelflow_frame(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(FAN_IN)
        text = _traceback(kernel, "pipeline()")
    # From the flow's line that called the skipped task down to the helper's raise.
    calls = text.index("combine(parse.map(load.map(range(6))))")
    raises = text.index('raise ValueError(f"bad record {x}")')
    assert calls < text.index("in check_record") < raises
    assert text.rstrip().endswith(
        "ended Failed (ValueError: bad record 3). Wrap it in allow_failure(...) to run anyway."
    )
    assert "/kernelflow/" not in text, text

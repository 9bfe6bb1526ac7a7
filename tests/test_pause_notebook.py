"""Pausing in a notebook: the form's logic, and the prompt in a real kernel's cell."""

import threading
import time

import pydantic
import pytest

import kernelflow
from kernelflow import flow, pause_flow_run
from kernelflow.notebook._pause_ui import PauseForm
from tests.kernel import RealKernel


class Approval(pydantic.BaseModel):
    approved: bool = False
    reviewer: str = pydantic.Field("nobody", description="Who looked at the numbers")
    threshold: int = pydantic.Field(3, ge=1)
    level: str = "low"


def paused_in_background():
    """A flow paused for input on another thread, and where its result will land."""
    result = {}

    @flow
    def reviewed():
        return pause_flow_run(timeout=20, wait_for_input=Approval)

    thread = threading.Thread(
        target=lambda: result.setdefault("state", reviewed(return_state=True))
    )
    thread.start()
    for _ in range(500):
        if kernelflow.paused_runs():
            return kernelflow.paused_runs()[0], thread, result
        time.sleep(0.01)
    raise AssertionError("the flow did not pause")


def form_for(run):
    return PauseForm(
        run,
        Approval,
        lambda data: kernelflow.resume_flow_run(run.id, run_input=data),
        lambda: kernelflow.cancel_flow_run(run.id),
    )


def test_the_form_has_a_widget_per_field_with_defaults_and_help():
    run, thread, _ = paused_in_background()
    form = form_for(run)
    assert list(form.fields) == ["approved", "reviewer", "threshold", "level"]
    assert form.values() == {
        "approved": False,
        "reviewer": "nobody",
        "threshold": 3,
        "level": "low",
    }
    assert "Who looked at the numbers" in form.fields["reviewer"].children[1].value
    form.cancel_button.click()
    thread.join(5)


def test_invalid_input_is_shown_in_the_form_and_the_pause_keeps_waiting():
    run, thread, result = paused_in_background()
    form = form_for(run)
    form.fields["threshold"].value = 0
    form.resume_button.click()
    assert "greater than or equal to 1" in form.errors["threshold"].value
    assert run.state.name == "Paused" and not form.resume_button.disabled
    form.fields["threshold"].value = 5
    form.fields["approved"].value = True
    form.resume_button.click()
    thread.join(5)
    assert result["state"].result() == Approval(approved=True, threshold=5)
    assert form.resume_button.disabled  # the answered form is closed


def test_cancel_button_ends_the_run_cancelled():
    run, thread, result = paused_in_background()
    form_for(run).cancel_button.click()
    thread.join(5)
    assert result["state"].is_cancelled() and run.state.is_cancelled()


CELL = """
import pydantic, kernelflow
from kernelflow import flow, pause_flow_run, task

class Approval(pydantic.BaseModel):
    approved: bool
    threshold: int = pydantic.Field(3, ge=1)

@task
def numbers():
    return [1, 2, 3]

@flow
def reviewed():
    data = numbers()
    return pause_flow_run(timeout=60, wait_for_input=Approval), sum(data)

reviewed()
"""


@pytest.mark.kernel
def test_a_paused_flow_asks_in_its_cell_and_goes_on_with_the_answer(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        msg_id = kernel.execute_async(CELL, allow_stdin=True)
        prompt = kernel.answer_input('{"approved": true, "threshold": 0}')
        assert "paused" in prompt and "approved, threshold" in prompt
        kernel.answer_input("not json")  # asked again after the invalid input...
        kernel.answer_input('{"approved": true, "threshold": 7}')  # ...and again
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.ok, reply.error
        assert "greater than or equal to 1" in reply.stdout and "Not JSON" in reply.stdout
        assert reply.data("text/plain") == ["(Approval(approved=True, threshold=7), 6)"]
        history = kernel.execute("[s.name for s in kernelflow.last_run().history]")
        assert history.data("text/plain") == [
            "['Pending', 'Running', 'Paused', 'Running', 'Completed']"
        ]


@pytest.mark.kernel
def test_cancel_typed_in_the_cell_ends_the_run_cancelled(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        msg_id = kernel.execute_async(CELL, allow_stdin=True)
        kernel.answer_input("cancel")
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.status == "error" and reply.error["ename"] == "CancelledRun"
        state = kernel.execute("kernelflow.last_run().state.name").data("text/plain")
        assert state == ["'Cancelled'"]


@pytest.mark.kernel
def test_a_frontend_without_input_waits_for_resume_from_another_thread(tmp_path):
    # nbclient / nbmake / papermill run cells without stdin: the pause must wait for
    # resume_flow_run (here from a timer thread), not fail on input().
    code = CELL.replace("reviewed()\n", "") + (
        "import threading, time\n"
        "def answer():\n"
        "    while not kernelflow.paused_runs():\n"
        "        time.sleep(0.05)\n"
        "    kernelflow.resume_flow_run(kernelflow.paused_runs()[0], {'approved': True})\n"
        "threading.Timer(0.5, answer).start()\n"
        "reviewed()\n"
    )
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        reply = kernel.wait_reply(kernel.execute_async(code, allow_stdin=False), timeout=60)
        assert reply.ok, reply.error
        assert "takes no input" in reply.stdout
        assert reply.data("text/plain") == ["(Approval(approved=True, threshold=3), 6)"]

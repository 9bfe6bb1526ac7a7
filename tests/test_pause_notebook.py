"""Pausing in a notebook: the form of an awaited async flow, clicked through the comm
messages a browser sends to a real kernel, and a sync flow's input line, which its
timeout and answers from other threads end."""

import threading
import time

import pydantic
import pytest

import kernelflow
from kernelflow import _pause, flow, pause_flow_run
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
            return _pause.find_pause(kernelflow.paused_runs()[0]), thread, result
        time.sleep(0.01)
    raise AssertionError("the flow did not pause")


def form_for(pause):
    return PauseForm(
        pause,
        lambda data: kernelflow.resume_flow_run(pause.flow_run.id, run_input=data),
        lambda: kernelflow.cancel_flow_run(pause.flow_run.id),
    )


def test_the_form_has_a_widget_per_field_with_defaults_and_help():
    pause, thread, _ = paused_in_background()
    form = form_for(pause)
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
    pause, thread, result = paused_in_background()
    form = form_for(pause)
    form.fields["threshold"].value = 0
    form.resume_button.click()
    assert "greater than or equal to 1" in form.errors["threshold"].value
    assert pause.flow_run.state.name == "Paused" and not form.resume_button.disabled
    form.fields["threshold"].value = 5
    form.fields["approved"].value = True
    form.resume_button.click()
    thread.join(5)
    assert result["state"].result() == Approval(approved=True, threshold=5)
    assert form.resume_button.disabled and form.submitted
    assert form.outcome() == (
        "resumed with approved=True, reviewer='nobody', threshold=5, level='low'."
    )


def test_a_field_message_clears_once_the_field_is_valid_and_the_form_says_how_long_it_waits():
    pause, thread, _ = paused_in_background()
    form = form_for(pause)
    assert "Waits up to 20 s for an answer" in form.view.children[1].value
    form.fields["threshold"].value = 0
    form.resume_button.click()
    assert "greater than or equal to 1" in form.errors["threshold"].value
    form.fields["threshold"].value = -1  # still invalid: the message stays
    assert "greater than or equal to 1" in form.errors["threshold"].value
    form.fields["threshold"].value = 4  # valid now: its message goes, before any Resume
    assert form.errors["threshold"].value == "" and form.message.value == ""
    form.cancel_button.click()
    thread.join(5)


def test_pause_timeouts_read_as_a_person_says_them():
    from kernelflow.notebook._pause_ui import _duration

    assert [_duration(s) for s in (20, 90, 300, 3600, 9000)] == [
        "20 s", "90 s", "5 min", "60 min", "2 h 30 min"
    ]  # fmt: skip


class Batch(pydantic.BaseModel):
    rows: list[int] = [1, 2]
    labels: dict[str, str] | None = None


def test_collection_fields_are_typed_as_json():
    result = {}

    @flow
    def batched():
        return pause_flow_run(timeout=20, wait_for_input=Batch)

    thread = threading.Thread(target=lambda: result.setdefault("state", batched(return_state=True)))
    thread.start()
    for _ in range(500):
        if kernelflow.paused_runs():
            break
        time.sleep(0.01)
    form = form_for(_pause.find_pause(kernelflow.paused_runs()[0]))
    assert form.fields["rows"].value == "[1, 2]" and "JSON" in form.fields["rows"].placeholder
    form.fields["rows"].value = "1, 2"  # not JSON: the form says what is wrong, and waits
    form.resume_button.click()
    assert "valid list" in form.errors["rows"].value and not form.submitted
    assert form.values() == {"rows": "1, 2"}  # labels left empty: its default applies
    form.fields["rows"].value = "[3, 4, 5]"
    form.fields["labels"].value = '{"a": "b"}'
    form.resume_button.click()
    thread.join(5)
    assert result["state"].result() == Batch(rows=[3, 4, 5], labels={"a": "b"})


def test_cancel_button_ends_the_run_cancelled():
    pause, thread, result = paused_in_background()
    form_for(pause).cancel_button.click()
    thread.join(5)
    assert result["state"].is_cancelled() and pause.flow_run.state.is_cancelled()


def test_a_click_after_an_answer_from_elsewhere_says_so_in_the_form():
    pause, thread, result = paused_in_background()
    form = form_for(pause)
    kernelflow.resume_flow_run(pause.flow_run, {"approved": True})
    form.resume_button.click()
    thread.join(5)
    assert "no longer paused" in form.message.value and not form.submitted
    assert form.outcome() == (
        "resumed elsewhere with approved=True, reviewer='nobody', threshold=3, level='low'."
    )
    assert result["state"].result().approved


# --- an awaited async flow in a real kernel: the form, clicked as a browser does --------

ASYNC_CELL = """
import pydantic, kernelflow
from kernelflow import flow, pause_flow_run, task

class Approval(pydantic.BaseModel):
    approved: bool = False
    threshold: int = pydantic.Field(3, ge=1)

@task
def numbers():
    return [1, 2, 3]

@flow
async def reviewed():
    data = numbers()
    answer = await pause_flow_run(timeout=60, wait_for_input=Approval)
    return answer, sum(data)
"""


def widget(opened, description):
    """The comm id of the widget labelled ``description``."""
    return next(cid for cid, state in opened.items() if state.get("description") == description)


def form_of(kernel, msg_id):
    """Wait for the pause form of the cell ``msg_id``; its widgets by comm id."""
    return kernel.widgets_until(lambda state: state.get("description") == "Cancel")


def wait_for_widget_text(kernel, text, timeout=30):
    for msg in kernel.iopub(None, timeout):
        if msg["msg_type"] == "comm_msg" and text in str(msg["content"]["data"]):
            return
    raise AssertionError(f"no widget showed {text!r} within {timeout} s")


def history(kernel):
    return kernel.execute("[s.name for s in kernelflow.last_run().history]").data("text/plain")


@pytest.mark.kernel
def test_the_form_of_an_awaited_flow_resumes_it_with_the_values_typed_in(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(ASYNC_CELL)
        msg_id = kernel.execute_async("await reviewed()")
        opened = form_of(kernel, msg_id)
        # Each edit is reported idle: a browser sends a widget's next edit only then.
        kernel.wait_for_idle(kernel.set_widget(widget(opened, "threshold"), value=0))
        kernel.click(widget(opened, "Resume"))
        # Refused in the form, next to the field; the pause keeps waiting.
        wait_for_widget_text(kernel, "greater than or equal to 1")
        kernel.wait_for_idle(kernel.set_widget(widget(opened, "threshold"), value=7))
        kernel.wait_for_idle(kernel.set_widget(widget(opened, "approved"), value=True))
        kernel.click(widget(opened, "Resume"))
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.ok, reply.error
        assert reply.data("text/plain")[-1] == "(Approval(approved=True, threshold=7), 6)"
        # The form was replaced by what was submitted, in its live and static outputs.
        assert any("resumed with approved=True, threshold=7" in t for t in reply.data("text/html"))
        assert history(kernel) == ["['Pending', 'Running', 'Paused', 'Running', 'Completed']"]


@pytest.mark.kernel
def test_cancel_in_the_form_cancels_the_awaited_flow(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(ASYNC_CELL)
        msg_id = kernel.execute_async("await reviewed()")
        kernel.click(widget(form_of(kernel, msg_id), "Cancel"))
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.status == "error" and reply.error["ename"] == "CancelledRun"
        assert any("was paused: cancelled." in t for t in reply.data("text/plain"))
        state = kernel.execute("kernelflow.last_run().state.name").data("text/plain")
        assert state == ["'Cancelled'"]


@pytest.mark.kernel
def test_a_click_that_arrives_on_a_subshell_thread_resumes_the_flow(tmp_path):
    # JupyterLab >= 4.4 may send widget messages on a subshell, handled on its thread:
    # the pause's event loop is woken thread-safely.
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(ASYNC_CELL)
        subshell = kernel.create_subshell()
        msg_id = kernel.execute_async("await reviewed()")
        opened = form_of(kernel, msg_id)
        kernel.set_widget(widget(opened, "threshold"), subshell_id=subshell, value=4)
        kernel.click(widget(opened, "Resume"), subshell_id=subshell)
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.ok, reply.error
        assert reply.data("text/plain")[-1] == "(Approval(approved=False, threshold=4), 6)"


@pytest.mark.kernel
def test_the_form_sits_inside_the_flow_runs_live_display(tmp_path):
    env = {"KERNELFLOW_HOME": str(tmp_path), "KERNELFLOW_DISPLAY": "1"}
    with RealKernel(env=env) as kernel:
        kernel.execute(ASYNC_CELL)
        msg_id = kernel.execute_async("await reviewed()")
        opened = {}
        children_of_run_box = []
        for msg in kernel.iopub(None, 30):
            content = msg["content"]
            if msg["msg_type"] == "comm_open":
                opened[content["comm_id"]] = content["data"]["state"]
            elif msg["msg_type"] == "comm_msg" and "children" in content["data"].get("state", {}):
                if "kf-flow-run" in opened.get(content["comm_id"], {}).get("_dom_classes", ()):
                    children_of_run_box = content["data"]["state"]["children"]
                    break
        form_box = next(
            c for c, s in opened.items() if "kf-pause-form" in s.get("_dom_classes", ())
        )
        assert f"IPY_MODEL_{form_box}" in children_of_run_box
        kernel.click(widget(opened, "Resume"))
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.ok, reply.error


@pytest.mark.kernel
def test_a_form_nobody_clicks_ends_on_resume_from_a_thread_and_says_so(tmp_path):
    # What nbmake and other headless runs do: a timer stands in for the person.
    code = (
        "import threading, time\n"
        "def answer():\n"
        "    while not kernelflow.paused_runs():\n"
        "        time.sleep(0.05)\n"
        "    kernelflow.resume_flow_run(kernelflow.paused_runs()[0], {'approved': True})\n"
        "threading.Timer(0.3, answer).start()\n"
        "await reviewed()\n"
    )
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(ASYNC_CELL)
        reply = kernel.execute(code, timeout=60)
        assert reply.data("text/plain")[-1] == "(Approval(approved=True, threshold=3), 6)"
        assert any("resumed elsewhere with approved=True" in t for t in reply.data("text/plain"))


# --- a sync flow in a real kernel: the input line ---------------------------------------

CELL = """
import pydantic, kernelflow, threading, time
from kernelflow import flow, pause_flow_run, task

class Approval(pydantic.BaseModel):
    approved: bool
    threshold: int = pydantic.Field(3, ge=1)

@task
def numbers():
    return [1, 2, 3]

@flow
def reviewed(timeout=60):
    data = numbers()
    return pause_flow_run(timeout=timeout, wait_for_input=Approval), sum(data)
"""


@pytest.mark.kernel
def test_a_paused_flow_asks_in_its_cell_and_goes_on_with_the_answer(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        msg_id = kernel.execute_async("reviewed()", allow_stdin=True)
        prompt = kernel.answer_input('{"approved": true, "threshold": 0}')
        assert "paused" in prompt and "approved, threshold" in prompt
        assert "`await` shows a form" in prompt
        kernel.answer_input("not json")  # asked again after the invalid input...
        kernel.answer_input('{"approved": true, "threshold": 7}')  # ...and again
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.ok, reply.error
        assert "greater than or equal to 1" in reply.stdout and "Not JSON" in reply.stdout
        assert reply.data("text/plain") == ["(Approval(approved=True, threshold=7), 6)"]
        assert history(kernel) == ["['Pending', 'Running', 'Paused', 'Running', 'Completed']"]


@pytest.mark.kernel
def test_cancel_typed_in_the_cell_ends_the_run_cancelled(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        msg_id = kernel.execute_async("reviewed()", allow_stdin=True)
        kernel.answer_input("cancel")
        reply = kernel.wait_reply(msg_id, timeout=60)
        assert reply.status == "error" and reply.error["ename"] == "CancelledRun"
        state = kernel.execute("kernelflow.last_run().state.name").data("text/plain")
        assert state == ["'Cancelled'"]


# The cell times how long the flow takes to notice an answer given from another thread
# (or its timeout) while the test keeps the input line open, unanswered.
TIMED = """
marks = {}
def act():
    while not kernelflow.paused_runs():
        time.sleep(0.01)
    time.sleep(0.5)
    marks["acted"] = time.monotonic()
    (ACTION)(kernelflow.paused_runs()[0])
threading.Thread(target=act).start()
try:
    print("result:", reviewed())
except BaseException as error:
    print("raised:", type(error).__name__)
print(f"noticed after {time.monotonic() - marks['acted']:.3f} s")
"""


def run_with_open_line(kernel, action):
    msg_id = kernel.execute_async(TIMED.replace("ACTION", action), allow_stdin=True)
    request = kernel.client.get_stdin_msg(timeout=30)  # the line is open; nobody types
    assert request["msg_type"] == "input_request"
    reply = kernel.wait_reply(msg_id, timeout=30)
    assert reply.ok, reply.error
    noticed = float(reply.stdout.split("noticed after ")[1].split(" s")[0])
    return reply.stdout, noticed


@pytest.mark.kernel
def test_resume_from_a_thread_ends_the_open_input_line_within_a_second(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        action = "lambda run: kernelflow.resume_flow_run(run, {'approved': True})"
        stdout, noticed = run_with_open_line(kernel, action)
        assert "result: (Approval(approved=True, threshold=3), 6)" in stdout
        assert "resumed elsewhere with approved=True, threshold=3" in stdout
        assert noticed < 1.0


@pytest.mark.kernel
def test_cancel_from_a_thread_ends_the_open_input_line_within_a_second(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        stdout, noticed = run_with_open_line(kernel, "kernelflow.cancel_flow_run")
        assert "raised: CancelledRun" in stdout and "cancelled elsewhere" in stdout
        assert noticed < 1.0
        # The kernel's next input line works as usual (the stale one is discarded).
        msg_id = kernel.execute_async("reviewed()", allow_stdin=True)
        kernel.answer_input('{"approved": true}')
        assert kernel.wait_reply(msg_id).ok


@pytest.mark.kernel
def test_the_timeout_ends_the_open_input_line(tmp_path):
    code = (
        "started = time.monotonic()\n"
        "try:\n"
        "    reviewed(timeout=1.5)\n"
        "except kernelflow.exceptions.FlowPauseTimeout:\n"
        "    print(f'timed out after {time.monotonic() - started:.3f} s')\n"
    )
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        msg_id = kernel.execute_async(code, allow_stdin=True)
        assert kernel.client.get_stdin_msg(timeout=30)["msg_type"] == "input_request"
        reply = kernel.wait_reply(msg_id, timeout=30)
        assert reply.ok, reply.error
        assert "not resumed within 1.5 s" in reply.stdout
        waited = float(reply.stdout.split("timed out after ")[1].split(" s")[0])
        assert 1.5 <= waited < 2.5  # the pause's timeout, plus the flow's start


@pytest.mark.kernel
def test_a_frontend_without_input_waits_for_resume_from_another_thread(tmp_path):
    # nbclient / nbmake / papermill run cells without stdin: the pause must wait for
    # resume_flow_run (here from a timer thread), not fail on input().
    code = (
        "def answer():\n"
        "    while not kernelflow.paused_runs():\n"
        "        time.sleep(0.05)\n"
        "    kernelflow.resume_flow_run(kernelflow.paused_runs()[0], {'approved': True})\n"
        "threading.Timer(0.5, answer).start()\n"
        "reviewed()\n"
    )
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        kernel.execute(CELL)
        reply = kernel.wait_reply(kernel.execute_async(code, allow_stdin=False), timeout=60)
        assert reply.ok, reply.error
        assert "takes no input" in reply.stdout
        assert reply.data("text/plain") == ["(Approval(approved=True, threshold=3), 6)"]

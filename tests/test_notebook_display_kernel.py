"""Live displays in a real kernel: notebooks executed by nbclient with widget state stored,
and where output printed on worker threads lands (jupyter_client)."""

import base64
import os
import queue
import re
import sys
import time

import nbformat
import pytest
from nbclient import NotebookClient

from tests.kernel import RealKernel

pytestmark = pytest.mark.kernel

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

CELLS = [
    """
import time, kernelflow
from kernelflow import flow, task

@task
def slow(seconds, value):
    time.sleep(seconds)
    return value

@flow
def pipeline(n):
    return slow.map(0.01, range(n)).result()
""",
    "future = slow.submit(0.3, 21)\nfuture",
    "future.result(); time.sleep(0.5)",
    "futures = slow.map(0.01, range(20))\nfutures",
    "futures.wait(); time.sleep(0.5)",
    "result = pipeline(10)\ntime.sleep(0.3)  # the charts follow the final frame\nresult",
    "kernelflow.last_run()",
    """
@flow
async def async_pipeline(n):
    return sum(slow.map(0.01, range(n)).result())

result = await async_pipeline(5)
time.sleep(0.3)
result
""",
    """
@flow
def part(n):
    return slow.map(0.01, range(n)).result()

@flow
def whole():
    return part(3) + part(3)

whole()
time.sleep(0.5)
""",
    """
from kernelflow import get_run_logger

@task
def careful(x):
    get_run_logger().warning("careful: %s", x)
    return x

@flow
def logged():
    return careful(3)

logged()
time.sleep(0.5)
""",
    """
@flow
def mismatched():
    return slow.map([0.01, 0.01], [1, 2, 3])

try:
    mismatched()
except Exception as error:
    print(type(error).__name__)
time.sleep(0.5)
""",
    "pipeline(3)  # the last cell, with no time to spare after the flow",
]


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    home = tmp_path_factory.mktemp("kernelflow-home")
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    client = NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        store_widget_state=True,
        resources={"metadata": {"path": str(home)}},
    )
    # Run this interpreter's kernel (this checkout's kernelflow), whatever specs exist.
    client.km = client.create_kernel_manager()
    client.km.kernel_spec.argv = [
        sys.executable,
        "-m",
        "ipykernel_launcher",
        "-f",
        "{connection_file}",
    ]
    # Its run history in this module's home, not the user's (~/.kernelflow, shared).
    client.execute(env={**os.environ, "KERNELFLOW_HOME": str(home)})
    return nb


def _state(nb):
    return nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]


def _tree(nb, model_id):
    """Every widget model under ``model_id`` (itself included), by walking IPY_MODEL refs."""
    state = _state(nb)
    found, todo = [], [model_id]
    while todo:
        model = state[todo.pop()]["state"]
        found.append(model)
        for value in model.values():
            refs = value if isinstance(value, list) else [value]
            todo += [
                r[len("IPY_MODEL_") :]
                for r in refs
                if isinstance(r, str) and r.startswith("IPY_MODEL_")
            ]
    return found


def _display_of(cell, output_type="display_data"):
    """The cell's one display (for a flow run: its first output, text and HTML; its
    pictures follow in outputs of their own, see ``_pictures``)."""
    outputs = [o for o in cell.outputs if o.output_type == output_type]
    pictures = outputs[1:]
    if len(pictures) == 2 and all(_is_picture_or_empty(o) for o in pictures):
        return outputs[0]
    [output] = outputs
    return output


def _is_picture_or_empty(output):
    return "image/svg+xml" in output.data or output.data == {"text/plain": ""}


def _assert_static(output):
    """What a notebook saved now shows anywhere: text and script-free HTML, no widget."""
    assert set(output.data) == {"text/html", "text/plain"}
    assert "<script" not in output.data["text/html"]
    assert "Running" not in output.data["text/plain"]


def _pictures(cell):
    """A flow display's pictures: the SVG of each output of its own after the first,
    checked to carry a PNG (at the SVG's size) and a line of text too."""
    found = []
    for output in [o for o in cell.outputs if o.output_type == "display_data"][1:]:
        if not output.data.get("text/plain"):
            continue  # a picture not drawn: its place stays empty
        assert set(output.data) == {"image/svg+xml", "image/png", "text/plain"}
        assert base64.b64decode(output.data["image/png"]).startswith(b"\x89PNG")
        assert output.metadata["image/png"]["width"] > 100
        found.append(output.data["image/svg+xml"])
    return found


def test_a_future_cell_ends_as_static_text_and_html_saying_completed(executed):
    output = _display_of(executed.cells[1])
    _assert_static(output)
    assert "Completed" in output.data["text/html"] and "-> 21" in output.data["text/plain"]
    assert not [o for o in executed.cells[1].outputs if o.output_type == "execute_result"]


def test_a_future_list_ends_with_every_run_counted(executed):
    output = _display_of(executed.cells[3])
    _assert_static(output)
    assert "20/20 completed" in output.data["text/html"]
    assert "20 task runs: 20/20 completed" in output.data["text/plain"]


def test_a_flow_call_ends_as_static_html_with_its_graph_and_timeline_as_pictures(executed):
    cell = executed.cells[5]
    output = _display_of(cell)
    _assert_static(output)
    assert "Completed" in output.data["text/plain"]
    assert "10/10 completed" in output.data["text/html"]
    graph, timeline = _pictures(cell)
    assert "slow × 10" in graph and 'class="kf-timeline"' in timeline
    assert "<svg" not in output.data["text/html"]  # no inline SVG: sanitizers strip it
    assert "<img" not in output.data["text/html"]  # the pictures are shown once, below
    assert _display_of(cell, "execute_result").data["text/plain"] == str(list(range(10)))


def test_last_run_shows_the_same_static_outputs(executed):
    output = _display_of(executed.cells[6])
    _assert_static(output)
    assert "Completed" in output.data["text/plain"]
    assert len(_pictures(executed.cells[6])) == 2


def test_an_awaited_async_flow_shows_its_run_too(executed):
    cell = executed.cells[7]
    output = _display_of(cell)
    _assert_static(output)
    assert "5/5 completed" in output.data["text/html"]
    assert _display_of(cell, "execute_result").data["text/plain"] == "10"


def test_a_flow_made_of_subflows_counts_and_draws_their_runs(executed):
    output = _display_of(executed.cells[8])
    _assert_static(output)
    assert "6/6 completed" in output.data["text/html"]
    [graph, _] = _pictures(executed.cells[8])
    assert graph.count("subflow part") == 2


def test_run_logs_go_into_the_display_not_to_stderr(executed):
    cell = executed.cells[9]
    assert not [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
    html = _display_of(cell).data["text/html"]
    visible, _, folded = html.partition("<details")
    assert "WARNING" in visible and "careful: 3" in visible
    assert "Beginning flow run" in folded and "Beginning flow run" not in visible
    assert "careful: 3" in _display_of(cell).data["text/plain"]


def test_a_flow_that_fails_before_any_task_shows_its_error(executed):
    output = _display_of(executed.cells[10])
    _assert_static(output)
    assert "Failed" in output.data["text/plain"]
    assert "MappingLengthMismatch" in output.data["text/html"]
    assert "no task runs" in output.data["text/html"]


def test_a_flow_in_the_last_cell_ends_static_before_the_cell_ends(executed):
    # nbclient drops updates sent after a cell ends: the static outputs must come first.
    _assert_static(_display_of(executed.cells[11]))
    assert "3/3 completed" in _display_of(executed.cells[11]).data["text/html"]


def test_the_executed_notebook_converts_to_html_with_pictures(executed):
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(executed)
    pictures = re.findall(r'src="data:image/svg\+xml;base64,([^"]+)"', body)
    timelines = [p for p in pictures if "kf-timeline" in base64.b64decode(p).decode()]
    assert len(pictures) >= 8 and len(timelines) == len(pictures) // 2  # each shown once
    assert "widget-view" not in body.split("<body", 1)[1].split("</body>")[0].replace(
        "application/vnd.jupyter.widget-state", ""
    )


def test_nbconvert_to_markdown_keeps_the_graph_and_timeline_as_image_files(executed):
    from nbconvert import MarkdownExporter

    markdown, resources = MarkdownExporter().from_notebook_node(executed)
    files = resources["outputs"]
    pictures = [name for name in files if name.endswith((".svg", ".png"))]
    assert len([n for n in pictures if n.endswith(".svg")]) >= 8  # 4 flows, 2 pictures each
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(shown) >= 8 and set(shown) <= set(files)
    assert any("kf-timeline" in files[name].decode() for name in shown if name.endswith(".svg"))


def test_an_interrupted_flow_stops_at_once_and_its_display_says_cancelled(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path), "KERNELFLOW_DISPLAY": "1"}) as kernel:
        kernel.execute(CELLS[0])
        msg_id = kernel.execute_async(
            "@flow\ndef stuck():\n    futures = slow.map(30, range(4))\n"
            "    print('submitted', flush=True)\n    return futures.result()\n\nstuck()"
        )
        kernel.wait_for_stream(msg_id, "submitted")
        time.sleep(0.5)
        started = time.monotonic()
        kernel.interrupt()
        reply = kernel.wait_reply(msg_id, timeout=30)
        assert time.monotonic() - started < 5
        assert reply.error["ename"] == "KeyboardInterrupt"
        # What stopped, ending at the user's line: no kernelflow frame (the last frame of a
        # traceback shows even when marked hidden).
        shown = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(reply.error["traceback"]))
        assert "return futures.result()" in shown and "/kernelflow/" not in shown, shown
        header = [
            o["content"]["data"]["state"]["value"]
            for o in reply.outputs
            if o["msg_type"] == "comm_msg"
            and "kf-flow-header" in str(o["content"]["data"].get("state", {}).get("value", ""))
        ]
        assert header and "Cancelled" in header[-1]
        after = kernel.execute("pipeline(3)")
        [result] = [o for o in after.outputs if o["msg_type"] == "execute_result"]
        assert result["content"]["data"]["text/plain"] == "[0, 1, 2]"


def _iopub_until_idle(kernel, msg_id, timeout=30):
    """All iopub messages up to the idle of ``msg_id``, whatever cell they belong to."""
    messages, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = kernel.client.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        messages.append(msg)
        if (
            msg["parent_header"].get("msg_id") == msg_id
            and msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            return messages
    raise AssertionError("the cell did not finish")


def _printed(messages, msg_id):
    return "".join(
        m["content"]["text"]
        for m in messages
        if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
    )


def test_prints_from_worker_threads_land_in_the_cell_that_started_the_flow(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path), "KERNELFLOW_DISPLAY": "0"}) as kernel:
        kernel.execute(
            CELLS[0]
            + """
import threading
@task
def shout(x):
    time.sleep(0.05)
    print(f"task {x} on {threading.current_thread().name}")

@flow
def loud(n, tag):
    shout.map([f"{tag}-{i}" for i in range(n)]).wait()
"""
        )
        first = kernel.execute("loud(4, 'first')")  # starts the worker threads
        assert first.stdout.count("task first-") == 4
        # The same worker threads, now serving a flow started by a later cell.
        second = kernel.execute("loud(4, 'second')")
        assert second.stdout.count("task second-") == 4
        assert "kernelflow-worker" in second.stdout or "Thread" in second.stdout
        # A background run started in one cell prints while another cell is running:
        # its output belongs to the cell that started it.
        started = kernel.client.execute("bg = shout.submit('background')")
        _iopub_until_idle(kernel, started)
        busy = kernel.client.execute("time.sleep(0.5)")
        messages = _iopub_until_idle(kernel, busy)
        assert "background" not in _printed(messages, busy)
        assert "task background" in _printed(messages, started)


SLOW_START = """
import time
from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

class SlowStart(ThreadPoolTaskRunner):  # stands in for a cluster that takes a while
    def startup_message(self):
        return "Starting a slow pool..."

    def __enter__(self):
        time.sleep(1.5)
        print("entered", flush=True)
        return super().__enter__()

@task
def one():
    return 1

@flow(task_runner=SlowStart())
def slow_start():
    return one()

slow_start()
"""


def test_a_runner_that_starts_slowly_is_shown_starting_before_it_is_up(tmp_path):
    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path), "KERNELFLOW_DISPLAY": "1"}) as kernel:
        reply = kernel.execute(SLOW_START)
        # The record keeps it: the flow run waited, saying on what, then ran.
        history = kernel.execute(
            "import kernelflow\nprint([(s.name, s.message) for s in kernelflow.last_run().history])"
        ).stdout
    assert "('Pending', 'Starting a slow pool...'), ('Running'" in history, history
    kinds = [
        "entered"
        if o["msg_type"] == "stream" and "entered" in o["content"]["text"]
        else "display"
        if o["msg_type"] == "display_data"
        else None
        for o in reply.outputs
    ]
    assert "display" in kinds and kinds.index("display") < kinds.index("entered"), kinds
    first = next(o for o in reply.outputs if o["msg_type"] == "display_data")
    assert "Starting a slow pool..." in first["content"]["data"]["text/html"]
    assert "Pending" in first["content"]["data"]["text/plain"]

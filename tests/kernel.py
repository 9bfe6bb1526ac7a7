"""A real IPython kernel for tests of notebook behaviour (jupyter_client, no mocks).

    with RealKernel() as kernel:
        reply = kernel.execute("1 + 1")
        assert reply.ok and reply.data("text/plain") == ["2"]

The kernel runs the test interpreter's own Python (so it imports this checkout's
kernelflow) with ``KERNELFLOW_HOME`` pointed wherever the test says.
"""

from __future__ import annotations

import os
import queue
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from jupyter_client import KernelManager


@dataclass
class Reply:
    """What one cell did: its status, its output messages, and its error if any."""

    status: str
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: dict[str, Any] | None = None
    elapsed: float = 0.0
    # What the reply asks of the frontend (e.g. %load's set_next_input: new cell text)
    payload: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def stdout(self) -> str:
        return "".join(
            o["content"]["text"]
            for o in self.outputs
            if o["msg_type"] == "stream" and o["content"]["name"] == "stdout"
        )

    @property
    def stderr(self) -> str:
        return "".join(
            o["content"]["text"]
            for o in self.outputs
            if o["msg_type"] == "stream" and o["content"]["name"] == "stderr"
        )

    def data(self, mime: str) -> list[Any]:
        """Every ``mime`` payload of the cell's display and execute_result outputs."""
        return [
            o["content"]["data"][mime]
            for o in self.outputs
            if o["msg_type"] in ("display_data", "execute_result", "update_display_data")
            and mime in o["content"].get("data", {})
        ]


class RealKernel:
    def __init__(self, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        # IPC transport: local sockets, nothing listening on the network. Their paths are
        # absolute, so a kernel started with another ``cwd`` finds the same sockets.
        self._ipc_dir = tempfile.mkdtemp(prefix="kernelflow-kernel-")
        ipc_path = os.path.join(self._ipc_dir, "kernel-ipc")
        self.manager = KernelManager(kernel_name="python3", transport="ipc", ip=ipc_path)
        # Live flow displays off unless a test asks for them: most tests read a cell's
        # result, and a display would add outputs beside it.
        self._env = {"KERNELFLOW_DISPLAY": "0", **os.environ, **(env or {})}
        self._cwd = cwd
        self.client: Any = None

    def start(self) -> RealKernel:
        # Run exactly this interpreter, whatever kernel specs the machine has.
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        self.manager.kernel_spec.argv = argv
        self.manager.start_kernel(env=self._env, cwd=self._cwd)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        return self

    def execute(self, code: str, timeout: float = 120, allow_error: bool = False) -> Reply:
        """Run one cell and collect everything it output until the kernel is idle."""
        result = self.wait_reply(self.execute_async(code), timeout)
        if result.status == "error" and not allow_error:
            raise AssertionError(
                f"cell failed: {result.error['ename']}: {result.error['evalue']}\n"
                + "\n".join(result.error.get("traceback", []))
            )
        return result

    def execute_async(self, code: str, allow_stdin: bool = False) -> str:
        """Start a cell without waiting (e.g. to interrupt it); returns its msg_id.

        With ``allow_stdin``, ``input()`` in the cell asks this client: answer with
        ``answer_input``."""
        return self.client.execute(code, allow_stdin=allow_stdin)

    def answer_input(self, text: str, timeout: float = 30) -> str:
        """Wait for the running cell's ``input()`` prompt, answer it, return the prompt."""
        request = self.client.get_stdin_msg(timeout=timeout)
        assert request["msg_type"] == "input_request", request
        self.client.input(text)
        return request["content"]["prompt"]

    def wait_for_stream(self, msg_id: str, text: str, timeout: float = 30) -> None:
        """Block until the running cell ``msg_id`` prints ``text`` (consumes that output)."""
        for msg in self.iopub(msg_id, timeout):
            if msg["msg_type"] == "stream" and text in msg["content"]["text"]:
                return
        raise AssertionError(f"the cell did not print {text!r} within {timeout} s")

    def wait_reply(self, msg_id: str, timeout: float = 60) -> Reply:
        """The reply to ``msg_id`` with every output of it, once the kernel is idle.

        Raises queue.Empty when that takes longer than ``timeout`` seconds."""
        start = time.monotonic()
        deadline = start + timeout
        result: Reply | None = None
        outputs: list[dict[str, Any]] = []
        idle = False
        while result is None or not idle:
            if time.monotonic() > deadline:
                raise queue.Empty(f"no reply and idle status for {msg_id} in {timeout} s")
            # iopub is read while the reply is awaited: a cell that prints a lot would
            # otherwise fill the socket's high-water mark, past which zmq drops messages,
            # the idle status among them.
            for msg in self._drain_iopub(0.05):
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                    idle = True
                elif msg["msg_type"] != "status":
                    outputs.append(msg)
            if result is None:
                result = self._shell_reply(msg_id, start)
        result.outputs = outputs
        return result

    def _drain_iopub(self, wait: float) -> Iterator[dict[str, Any]]:
        """Every iopub message waiting now (after up to ``wait`` seconds for the first)."""
        try:
            yield self.client.get_iopub_msg(timeout=wait)
            while True:
                yield self.client.get_iopub_msg(timeout=0)
        except queue.Empty:
            return

    def _shell_reply(self, msg_id: str, start: float) -> Reply | None:
        while True:
            try:
                reply = self.client.get_shell_msg(timeout=0)
            except queue.Empty:
                return None
            if reply["parent_header"].get("msg_id") == msg_id:
                result = Reply(reply["content"]["status"], elapsed=time.monotonic() - start)
                result.payload = reply["content"].get("payload", [])
                if result.status == "error":
                    result.error = reply["content"]
                return result

    def iopub(self, msg_id: str | None, timeout: float) -> Iterator[dict[str, Any]]:
        """The iopub messages of the message ``msg_id`` (of any, for None) as they come,
        until ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.client.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                return
            if msg_id is None or msg["parent_header"].get("msg_id") == msg_id:
                yield msg

    # --- what a browser sends to widgets (comm messages), for tests of widget clicks ---

    def widgets_until(
        self, found: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, dict[str, Any]]:
        """The widget models the kernel opens (comm id -> state), read from iopub until
        one whose state satisfies ``found`` opens."""
        opened: dict[str, dict[str, Any]] = {}
        for msg in self.iopub(None, timeout):
            if msg["msg_type"] == "comm_open":
                state = msg["content"]["data"].get("state", {})
                opened[msg["content"]["comm_id"]] = state
                if found(state):
                    return opened
        raise AssertionError(f"no matching widget opened within {timeout} s: {opened}")

    def send_comm(self, comm_id: str, data: dict[str, Any], subshell_id: str | None = None) -> str:
        """Send a ``comm_msg`` as a frontend does (on a subshell's channel if given);
        returns its msg_id."""
        msg = self.client.session.msg("comm_msg", {"comm_id": comm_id, "data": data})
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.client.shell_channel.send(msg)
        return msg["header"]["msg_id"]

    def set_widget(self, comm_id: str, subshell_id: str | None = None, **state: Any) -> str:
        """A field edited in the browser: the widget's new state."""
        data = {"method": "update", "state": state, "buffer_paths": []}
        return self.send_comm(comm_id, data, subshell_id)

    def click(self, comm_id: str, subshell_id: str | None = None) -> str:
        """A Button clicked in the browser."""
        data = {"method": "custom", "content": {"event": "click"}}
        return self.send_comm(comm_id, data, subshell_id)

    def wait_for_idle(self, msg_id: str, timeout: float = 30) -> None:
        """Block until the kernel reports idle for message ``msg_id``: what a browser's
        widget waits for before it sends that widget's next change."""
        for msg in self.iopub(msg_id, timeout):
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return
        raise AssertionError(f"no idle status for {msg_id} within {timeout} s")

    def create_subshell(self, timeout: float = 30) -> str:
        """A new subshell (kernel protocol 5.5, as JupyterLab >= 4.4 opens); its id."""
        msg = self.client.session.msg("create_subshell_request", {})
        self.client.control_channel.send(msg)
        reply = self.client.get_control_msg(timeout=timeout)
        while reply["parent_header"].get("msg_id") != msg["header"]["msg_id"]:
            reply = self.client.get_control_msg(timeout=timeout)
        assert reply["content"]["status"] == "ok", reply["content"]
        return reply["content"]["subshell_id"]

    def interrupt(self) -> None:
        self.manager.interrupt_kernel()

    def restart(self) -> None:
        self.manager.restart_kernel(now=True)
        self.client.wait_for_ready(timeout=60)

    def shutdown(self) -> None:
        if self.client is not None:
            self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)
        shutil.rmtree(self._ipc_dir, ignore_errors=True)

    def __enter__(self) -> RealKernel:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

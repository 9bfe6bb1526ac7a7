"""The live displays in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven
by Playwright's Python package (no browser download).

Run with ``make test-browser``, which installs chromium, playwright and jupyterlab where
missing and sets ``KERNELFLOW_BROWSER_TEST=1``; the default ``pytest tests`` skips it.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

CHROMIUM = "/usr/bin/chromium"
# Flags for a sandboxed root session on a machine with no outside network.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(
        os.environ.get("KERNELFLOW_BROWSER_TEST") != "1",
        reason="browser test: run `make test-browser`",
    ),
    pytest.mark.timeout(300),
]

CELLS = [
    """
import time
from kernelflow import task

@task
def slow(seconds, value):
    time.sleep(seconds)
    return value
""",
    "future = slow.submit(0.5, 42)\nfuture",
    "futures = slow.map(0.02, range(60))\nfutures",
    """
from kernelflow import flow

@flow
def pipeline(n):
    return sum(slow.map(0.05, range(n)).result())

pipeline(40)
""",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _kernelspec(data_dir) -> None:
    # This interpreter's kernel (this checkout's kernelflow), whatever else is installed.
    spec_dir = data_dir / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": "Python 3", "language": "python"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec))


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server on 127.0.0.1 with a token; yields its base URL and token."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, tmp_path / "display.ipynb")
    _kernelspec(tmp_path / "data")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(tmp_path / "data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
        "KERNELFLOW_HOME": str(tmp_path / "kernelflow-home"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={tmp_path}",
        f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no package index look-ups
    ]
    if os.geteuid() == 0:  # CI and these machines run as root
        command.append("--allow-root")
    log = open(tmp_path / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{base}/api/status?token={token}", server)
        yield base, token
    finally:
        _stop(server)
        log.close()


def _stop(server: subprocess.Popen) -> None:
    """Stop the server and the kernels it started (its process group), within seconds."""
    for sig, grace in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            pass
        try:
            server.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_until_up(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError("JupyterLab exited at start; see jupyterlab.log")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer within {timeout} s")


def _run_all_cells(page, base: str, token: str) -> None:
    page.locator(".jp-Notebook").first.wait_for(timeout=60_000)
    # JupyterLab may ask which kernel to start; take the one it offers (python3).
    accept = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        accept.first.click(timeout=15_000)
    except Exception:  # no dialog: the kernel started without asking
        pass
    _wait_for_idle_kernel(base, token)
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator(".lm-Menu-item", has_text="Run All Cells").first.click()


def _wait_for_idle_kernel(base: str, token: str, timeout: float = 60) -> None:
    """Poll the server until the notebook's kernel has started and is idle."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
            sessions = json.load(response)
        if any(s["kernel"]["execution_state"] == "idle" for s in sessions if s.get("kernel")):
            return
        time.sleep(0.5)
    raise AssertionError(f"the notebook's kernel was not idle within {timeout} s")


def test_widgets_show_completed_and_full_progress_in_jupyterlab(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{base}/lab/tree/display.ipynb?token={token}", timeout=60_000)
            _run_all_cells(page, base, token)
            badge = page.locator(".kf-future .kf-badge", has_text="Completed")
            badge.first.wait_for(timeout=60_000)
            counts = page.locator(".kf-future-list .kf-counts", has_text="60/60 completed")
            counts.first.wait_for(timeout=60_000)
            width = page.locator(".kf-future-list .progress-bar").first.evaluate(
                "bar => bar.style.width"
            )
            flow_run = page.locator(".kf-flow-run")
            flow_run.locator(".kf-badge", has_text="Completed").first.wait_for(timeout=60_000)
            flow_run.locator("svg.kf-timeline").first.wait_for(timeout=30_000)
            flow_run.locator(".kf-graph svg").first.wait_for(timeout=30_000)
        finally:
            # Also on failure: the picture is the first thing to look at.
            page.screenshot(path=str(tmp_path / "jupyterlab.png"), full_page=True)
            browser.close()
    assert width == "100%"
    assert (tmp_path / "jupyterlab.png").stat().st_size > 0

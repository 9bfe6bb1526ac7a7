"""The displays in a real browser: JupyterLab on 127.0.0.1, Debian's chromium driven by
Playwright's Python package (no browser download).

- the live widgets reach their final state, and a running flow's graph changes colour
  as its runs progress;
- tutorials 01-03 run in JupyterLab, are saved, and reopened untrusted in a fresh
  JupyterLab with no kernel: every kernelflow output shows a picture or final text.

Run with ``make test-browser``, which installs chromium, playwright and jupyterlab where
missing and sets ``KERNELFLOW_BROWSER_TEST=1``; the default ``pytest tests`` skips it.
Screenshots go to ``build/browser-screenshots/`` (the test prints where): look at them.
"""

import contextlib
import json
import os
import pathlib
import secrets
import shutil
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
    pytest.mark.timeout(900),
]

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "build" / "browser-screenshots"
TUTORIALS = ["01_quickstart", "02_concurrency", "03_mapping"]

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
    """
@task
def step(seconds, value):
    time.sleep(seconds)
    return value

@flow
def three_seconds():
    value = 0
    for _ in range(6):  # one after another, half a second each
        value = step(0.5, value + 1)
    return value

three_seconds()
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


def _settings(settings_dir: pathlib.Path) -> None:
    # Every cell attached to the page, not only those in view, so all outputs can be read.
    tracker = settings_dir / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True, exist_ok=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))
    news = settings_dir / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


@contextlib.contextmanager
def _server(root: pathlib.Path, state: pathlib.Path, kernels: bool = True):
    """A JupyterLab server on 127.0.0.1 serving ``root``; yields its base URL and token.

    ``state`` holds its Jupyter data (the notary that trusts saved notebooks), config and
    settings. Without ``kernels`` it has no kernel to start: a page that only reads.
    """
    if kernels:
        _kernelspec(state / "data")
    _settings(state / "settings")
    port, token = _free_port(), secrets.token_hex(16)
    env = {
        **os.environ,
        "JUPYTER_PATH": str(state / "data"),
        "JUPYTER_DATA_DIR": str(state / "data"),
        "JUPYTER_CONFIG_DIR": str(state / "config"),
        "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
        "KERNELFLOW_HOME": str(state / "kernelflow-home"),
    }
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={state / 'settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",  # no package index look-ups
    ]
    if not kernels:
        command.append("--KernelSpecManager.allowed_kernelspecs=no-such-kernel")
    if os.geteuid() == 0:  # CI and these machines run as root
        command.append("--allow-root")
    state.mkdir(parents=True, exist_ok=True)
    log = open(state / "jupyterlab.log", "w")  # noqa: SIM115 - closed below
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


def write_notebook(path, cells) -> None:
    """A notebook of code ``cells`` at ``path``, for the python3 kernel."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nbformat.write(nb, path)


@pytest.fixture
def jupyterlab(tmp_path):
    """A JupyterLab server with the display notebook in its root."""
    write_notebook(tmp_path / "display.ipynb", CELLS)
    with _server(tmp_path, tmp_path / "state") as server:
        yield server


@pytest.fixture(scope="module")
def screenshots():
    """The folder for this run's screenshots, emptied once per run."""
    shutil.rmtree(SCREENSHOTS, ignore_errors=True)
    SCREENSHOTS.mkdir(parents=True)
    return SCREENSHOTS


@pytest.fixture(autouse=True)
def _announce_screenshots(capsys):
    with capsys.disabled():
        print(f"\nscreenshots: {SCREENSHOTS}")


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


def _browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)


def _graph_fills(page) -> str:
    """The fill colours of the live flow graph's nodes, in order ('' while none shows)."""
    return page.evaluate(
        """() => {
            const views = document.querySelectorAll('.kf-flow-run');
            const view = views[views.length - 1];
            if (!view) return '';
            return [...view.querySelectorAll('.kf-graph g.node')]
                .map(node => node.querySelector('path,polygon')?.getAttribute('fill'))
                .join(' ');
        }"""
    )


def test_widgets_show_completed_and_the_live_graph_changes(jupyterlab, screenshots):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        try:
            page.goto(f"{base}/lab/tree/display.ipynb?token={token}", timeout=60_000)
            _run_all_cells(page, base, token)
            # The live graph of the 3 s flow, sampled while it runs.
            fills, deadline = [], time.monotonic() + 120
            while time.monotonic() < deadline:
                seen = _graph_fills(page)
                if seen and (not fills or fills[-1] != seen):
                    fills.append(seen)
                    live = page.locator(".jp-OutputArea-output:has(.kf-flow-run)").last
                    try:
                        live.screenshot(path=str(screenshots / f"live-graph-{len(fills)}.png"))
                    except PlaywrightError:  # the run ended meanwhile: its output turned static
                        pass
                if _static_flows(page) == 2:  # both flows ended: the display turned static
                    break
                time.sleep(0.1)
            badge = page.locator(".kf-future .kf-badge", has_text="Completed")
            badge.first.wait_for(timeout=60_000)
            counts = page.locator(".kf-list .kf-counts", has_text="60/60 completed")
            counts.first.wait_for(timeout=60_000)
            done = page.locator(".kf-flow .kf-flow-header .kf-badge", has_text="Completed")
            done.nth(1).wait_for(timeout=60_000)
            pictures = page.locator(PICTURES)
            pictures.nth(3).wait_for(timeout=30_000)  # graph and timeline of both flows
            loaded = pictures.evaluate_all("imgs => imgs.map(i => i.complete && i.naturalWidth)")
        finally:
            # Also on failure: the pictures are the first thing to look at.
            _screenshot_outputs(page, screenshots, "display")
            browser.close()
    assert all(loaded), loaded
    # Pending -> running -> completed, node by node: the graph changed at least twice.
    assert len(fills) >= 3, fills


# A finished flow's graph and timeline: outputs of their own, SVG where the notebook is
# trusted, PNG where it is not.
PICTURES = (
    ".jp-OutputArea-output[data-mime-type='image/svg+xml'] img, "
    ".jp-OutputArea-output[data-mime-type='image/png'] img"
)


def _static_flows(page) -> int:
    """How many flow displays have ended: two pictures each, outputs of their own."""
    return page.locator(PICTURES).count() // 2


def _open(page, base: str, token: str, name: str) -> None:
    # A workspace of its own: JupyterLab does not reopen the notebooks opened before.
    url = f"{base}/lab/workspaces/kf-{name}/tree/{name}.ipynb?token={token}"
    page.goto(url, timeout=60_000)


def _shut_down_kernels(base: str, token: str) -> None:
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as response:
        sessions = json.load(response)
    for session in sessions:
        url = f"{base}/api/sessions/{session['id']}?token={token}"
        urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=30).close()


def _run_notebook(page, base: str, token: str, name: str, timeout: float = 300) -> None:
    _open(page, base, token, name)
    _run_all_cells(page, base, token)
    # Every code cell has run: its prompt shows a number, not "[*]" (queued or running).
    # The kernel's idle status alone is no sign: under load it can come between two cells.
    page.wait_for_function(
        """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
            .every(prompt => /\\[\\d+\\]/.test(prompt.innerText))""",
        timeout=timeout * 1000,
    )
    _wait_for_idle_kernel(base, token, timeout)
    # Every kernelflow display has ended and turned static (no widget left).
    page.wait_for_function(
        "() => !document.querySelector('.kf-flow-run, .kf-future-list, .widget-hbox.kf-future')",
        timeout=60_000,
    )
    for _ in range(2):  # twice: JupyterLab may mark the notebook changed again just after
        page.keyboard.press("Control+s")
        time.sleep(2)


def _kernelflow_outputs(page) -> list[dict]:
    """Each output that kernelflow made (a kf-* class inside, or a flow's picture), read as
    the page shows it."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.jp-OutputArea-output')]
            .filter(out => out.querySelector('[class^="kf-"], [class*=" kf-"]')
                || ['image/svg+xml', 'image/png'].includes(out.dataset.mimeType))
            .map(out => ({
                text: out.innerText,
                html: out.innerHTML.length,
                images: [...out.querySelectorAll('img')].map(i => i.complete && i.naturalWidth),
            }))"""
    )


def _page_errors(page) -> str:
    return page.evaluate("() => document.querySelector('.jp-Notebook').innerText")


def test_tutorials_saved_in_jupyterlab_reopen_without_a_kernel_showing_pictures(
    tmp_path, screenshots
):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    for name in TUTORIALS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", root)
    with sync_playwright() as playwright:
        browser = _browser(playwright)
        try:
            with _server(root, tmp_path / "first") as (base, token):
                for name in TUTORIALS:
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    try:
                        _run_notebook(page, base, token, name)
                    finally:
                        page.screenshot(path=str(screenshots / f"{name}-ran.png"))
                    page.close()
                    _shut_down_kernels(base, token)
            for name in TUTORIALS:  # the files, as saved: no widget view left in any output
                saved = json.loads((root / f"{name}.ipynb").read_text())
                mimes = {
                    m
                    for c in saved["cells"]
                    for o in c.get("outputs", ())
                    for m in o.get("data", ())
                }
                assert "application/vnd.jupyter.widget-view+json" not in mimes, name
            # Another server, its own (empty) notary: the notebooks open untrusted, as
            # someone else's would, and there is no kernel to start.
            with _server(root, tmp_path / "second", kernels=False) as (base, token):
                for name in TUTORIALS:
                    page = browser.new_page(viewport={"width": 1280, "height": 1000})
                    _open(page, base, token, name)
                    try:
                        _dismiss_kernel_dialog(page)
                    finally:
                        page.screenshot(path=str(screenshots / f"{name}-reopened.png"))
                    page.locator(".jp-OutputArea-output").first.wait_for(timeout=60_000)
                    time.sleep(1)
                    outputs = _kernelflow_outputs(page)
                    text = _page_errors(page)
                    _screenshot_outputs(page, screenshots, name)
                    page.close()
                    assert outputs, f"{name}: no kernelflow output found"
                    for output in outputs:
                        assert "Running" not in output["text"], (name, output["text"])
                        assert all(output["images"]), (name, output)
                    assert "model not found" not in text and "Error displaying widget" not in text
                    assert " at 0x" not in text, name
                    pictures = sum(len(o["images"]) for o in outputs)
                    assert pictures >= 2, (name, outputs)
        finally:
            browser.close()


def _dismiss_kernel_dialog(page) -> None:
    """Answer 'No Kernel' when JupyterLab asks which kernel to start (and close what it
    says after that, e.g. that the notebook's kernel is not there)."""
    page.locator(".jp-Dialog").first.wait_for(timeout=60_000)
    for _ in range(5):
        dialog = page.locator(".jp-Dialog")
        if not dialog.count():
            return
        no_kernel = dialog.locator("button", has_text="No Kernel")
        if no_kernel.count():
            no_kernel.first.click()
        else:
            dialog.locator("button").last.click()
        time.sleep(1)
    raise AssertionError(f"JupyterLab keeps asking: {page.locator('.jp-Dialog').inner_text()}")


def _screenshot_outputs(page, folder: pathlib.Path, name: str) -> None:
    outputs = page.locator(
        ".jp-OutputArea-output:has([class*='kf-']), .jp-OutputArea-output:has(img)"
    )
    for i in range(outputs.count()):
        if outputs.nth(i).is_visible():
            outputs.nth(i).screenshot(path=str(folder / f"{name}-output-{i:02d}.png"))

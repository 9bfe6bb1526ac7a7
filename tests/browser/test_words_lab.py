"""The words a flow's display uses in JupyterLab, live and once saved and reopened: how
many runs were reused or cached, how many log lines, what a Dask flow waits for while its
cluster starts, and a pause form that says how long it waits and clears a field's
message once the field is valid.

Run with ``make test-browser`` (see ``test_jupyterlab.py`` for the server and browser
set-up this file reuses). Screenshots land in build/browser-screenshots/words-*.png.
"""

import re
import time

from tests.browser import test_jupyterlab as lab
from tests.browser.test_pauses_lab import _field

pytestmark = lab.pytestmark  # skipped unless KERNELFLOW_BROWSER_TEST=1

SETUP = """
import pydantic, kernelflow
from kernelflow import flow, get_run_logger, pause_flow_run, task
from kernelflow.cache_policies import INPUTS
from kernelflow.task_runners import DaskTaskRunner

@task(cache_policy=INPUTS)
def double(x):
    return 2 * x

@flow
def answer():
    get_run_logger().info("one line")
    return double(21)

broken = True

@task
def step(i):
    return i

@task
def last(xs):
    if broken:
        raise ValueError("broken")
    return sum(xs)

@flow
def etl():
    return last(step.map(range(3)))

@flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 1, "dashboard_address": ":0"}))
def on_dask():
    return step.submit(7).result()

class Approval(pydantic.BaseModel):
    threshold: int = pydantic.Field(3, ge=1)

@flow
async def reviewed():
    return await pause_flow_run(timeout=90, wait_for_input=Approval)
"""
CELLS = [
    SETUP,
    "answer()",
    "answer()",
    "try:\n    etl()\nexcept ValueError:\n    pass",
    "broken = False\nkernelflow.last_run().retry()",
    "on_dask()",
    "await reviewed()",
]


def _outputs(page) -> list[str]:
    """The text of each cell's outputs, in cell order."""
    return page.evaluate(
        """() => [...document.querySelectorAll('.jp-CodeCell')].map(
            c => c.querySelector('.jp-OutputArea')?.innerText || '')"""
    )


def test_reuse_log_lines_a_starting_cluster_and_the_pause_form_in_words(tmp_path):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    lab.write_notebook(root / "words.ipynb", CELLS)
    shots = lab.SCREENSHOTS
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = lab._browser(playwright)
        try:
            with lab._server(root, tmp_path / "first") as (base, token):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                lab._open(page, base, token, "words")
                lab._run_all_cells(page, base, token)
                # While the cluster starts, the Dask flow's display says so.
                starting = page.get_by_text("Starting a Dask LocalCluster with 1 worker...")
                starting.first.wait_for(timeout=120_000)
                page.locator(".jp-OutputArea-output:has(.kf-flow-run)").last.screenshot(
                    path=str(shots / "words-dask-starting.png")
                )
                # The pause form: how long it waits; a bad value's message, gone once valid.
                form = page.locator(".kf-pause-form").first
                form.wait_for(timeout=120_000)
                waits = form.locator(".kf-pause-timeout").inner_text()
                _field(form, "threshold").fill("0")
                _field(form, "threshold").press("Tab")
                form.locator("button", has_text="Resume").click()
                refused = form.get_by_text("greater than or equal to 1").first
                refused.wait_for(timeout=30_000)
                form.screenshot(path=str(shots / "words-pause-refused.png"))
                _field(form, "threshold").fill("5")
                _field(form, "threshold").press("Tab")
                refused.wait_for(state="hidden", timeout=30_000)
                form.screenshot(path=str(shots / "words-pause-valid.png"))
                form.locator("button", has_text="Resume").click()
                page.get_by_text("threshold=5").first.wait_for(timeout=60_000)
                lab._wait_for_idle_kernel(base, token)
                time.sleep(1)
                live = _outputs(page)
                lab._screenshot_outputs(page, shots, "words-ran")
                for _ in range(2):
                    page.keyboard.press("Control+s")
                    time.sleep(2)
                page.close()
            with lab._server(root, tmp_path / "second", kernels=False) as (base, token):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                lab._open(page, base, token, "words")
                lab._dismiss_kernel_dialog(page)
                page.locator(lab.PICTURES).first.wait_for(timeout=60_000)
                reopened = _outputs(page)
                lab._screenshot_outputs(page, shots, "words-reopened")
        finally:
            browser.close()
    assert "Waits up to 90 s for an answer, then times out." in waits, waits
    for outputs in (live, reopened):
        first, again, retried = outputs[1], outputs[2], outputs[4]
        assert "1/1 completed" in first and "1 cached" not in first, first
        assert "1/1 completed: 1 cached" in again, again
        assert "3 log lines" in again, again  # its start, its own line, its end
        assert re.search(r"4/4 completed: 3 reused from etl-\w+, 1 ran", retried), retried
        assert "Completed" in outputs[5] and "Starting a Dask" not in outputs[5], outputs[5]

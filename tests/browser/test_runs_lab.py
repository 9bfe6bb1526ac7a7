"""The run history in a real JupyterLab: one notebook's kernel runs a flow that fails;
a second notebook, in a kernel of its own (as after a restart), lists it as a table and
draws its graph; saved and reopened with no kernel, both still show.

Run with ``make test-browser`` (the server and browser set-up is ``test_jupyterlab``'s).
Screenshots land in build/browser-screenshots/history-*.png.
"""

import json
import time

from tests.browser import test_jupyterlab as lab

pytestmark = lab.pytestmark  # skipped unless KERNELFLOW_BROWSER_TEST=1


def _screenshots():
    # Beside test_jupyterlab's, which empties the folder first: this file sorts after it.
    lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return lab.SCREENSHOTS


FIRST = [
    """
import kernelflow
from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS

@task(cache_policy=INPUTS)
def load(n):
    return list(range(n))

@task
def clean(rows):
    return [r for r in rows if r % 3]

@task
def publish(rows):
    raise ValueError("the report server is down")

@flow
def nightly_report(n: int):
    return publish(clean(load(n)))

try:
    nightly_report(12)
except ValueError as error:
    print("failed:", error)
""",
]

SECOND = [
    "import kernelflow\nkernelflow.runs()",
    "past = kernelflow.runs(flow='nightly_report')[0]\npast.graph()",
]


def _history_outputs(page) -> dict:
    """The runs tables' text, and the text inside each loaded picture (SVG inline or as
    an image's data URI), as the page shows them."""
    return page.evaluate(
        """() => {
            const svgText = (img) => {
                const src = img.getAttribute('src') || '';
                const comma = src.indexOf(',');
                if (!src.startsWith('data:image/svg+xml') || comma < 0) return '';
                const data = src.slice(comma + 1);
                return src.slice(0, comma).endsWith(';base64')
                    ? atob(data) : decodeURIComponent(data);
            };
            const outputs = [...document.querySelectorAll('.jp-OutputArea-output')];
            return {
                table: [...document.querySelectorAll('table.kf-runs')].map(t => t.innerText),
                graphs: outputs.flatMap(o => [
                    ...[...o.querySelectorAll('svg')].map(svg => svg.textContent),
                    ...[...o.querySelectorAll('img')]
                        .filter(img => img.complete && img.naturalWidth > 0)
                        .map(svgText),
                ]),
            };
        }"""
    )


def test_a_past_run_shows_as_a_table_and_a_graph_live_and_reopened(tmp_path):
    from playwright.sync_api import sync_playwright

    screenshots = _screenshots()
    root = tmp_path / "root"
    root.mkdir()
    lab.write_notebook(root / "history_first.ipynb", FIRST)
    lab.write_notebook(root / "history_second.ipynb", SECOND)
    with sync_playwright() as playwright:
        browser = lab._browser(playwright)
        try:
            with lab._server(root, tmp_path / "first") as (base, token):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                try:
                    lab._run_notebook(page, base, token, "history_first")
                finally:
                    page.screenshot(path=str(screenshots / "history-first-ran.png"))
                page.close()
                lab._shut_down_kernels(base, token)  # that kernel is gone

                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                try:
                    lab._run_notebook(page, base, token, "history_second")
                    page.locator("table.kf-runs").first.wait_for(timeout=60_000)
                    time.sleep(1)
                    live = _history_outputs(page)
                finally:
                    page.screenshot(path=str(screenshots / "history-live.png"), full_page=True)
                page.close()
                lab._shut_down_kernels(base, token)
            (table,) = live["table"]
            assert "nightly-report" in table and "Failed" in table, table
            assert "2 Completed, 1 Failed" in table, table
            assert "this one" not in table  # an earlier kernel's run
            assert any("load" in g and "publish" in g for g in live["graphs"]), live
            saved = json.loads((root / "history_second.ipynb").read_text())
            mimes = {
                m for c in saved["cells"] for o in c.get("outputs", ()) for m in o.get("data", ())
            }
            assert "text/html" in mimes, mimes

            # Reopened by another server with no kernel: what was saved still shows.
            with lab._server(root, tmp_path / "second", kernels=False) as (base, token):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                lab._open(page, base, token, "history_second")
                try:
                    lab._dismiss_kernel_dialog(page)
                    page.locator(".jp-OutputArea-output").first.wait_for(timeout=60_000)
                    time.sleep(2)
                    reopened = _history_outputs(page)
                finally:
                    page.screenshot(path=str(screenshots / "history-reopened.png"), full_page=True)
                page.close()
            assert reopened["table"] and "nightly-report" in reopened["table"][0], reopened
            assert any("load" in g and "publish" in g for g in reopened["graphs"]), reopened
        finally:
            browser.close()

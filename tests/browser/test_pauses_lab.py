"""Pauses in a real JupyterLab: a person clicks the form of an awaited async flow, and
Run All of notebook 08 completes with the person answering its form, then its solutions
(loaded as the lesson says) ask again.

Run with ``make test-browser`` (see ``test_jupyterlab.py`` for the server and browser
set-up this file reuses). Screenshots land in build/browser-screenshots/, also on failure.
"""

import shutil
from pathlib import Path

from tests.browser import test_jupyterlab as lab
from tests.browser.test_jupyterlab import CHROMIUM, CHROMIUM_FLAGS, _run_all_cells
from tests.test_pause_notebook import ASYNC_CELL

jupyterlab = lab.jupyterlab  # the JupyterLab server fixture, shared

pytestmark = lab.pytestmark  # skipped unless KERNELFLOW_BROWSER_TEST=1

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"

PAUSED_FLOW = [ASYNC_CELL, "await reviewed()"]


def _open(browser, base, token, name):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(f"{base}/lab/tree/{name}?token={token}", timeout=60_000)
    return page


def _field(form, label):
    """The input of the form's field labelled ``label``."""
    row = form.locator(".widget-inline-hbox", has=form.page.locator("label", has_text=label))
    return row.locator("input").first


def _shoot(page, tmp_path, name, focus=None):
    """A screenshot, with ``focus`` scrolled into view (JupyterLab scrolls inside)."""
    if focus is not None:
        try:
            focus.first.scroll_into_view_if_needed(timeout=5_000)
        except Exception:  # a failing test's element may be missing: shoot anyway
            pass
    # Beside test_jupyterlab's screenshots (build/browser-screenshots/), to look at.
    lab.SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = lab.SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def test_resume_clicked_in_jupyterlab_completes_the_awaited_flow(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    lab.write_notebook(tmp_path / "paused.ipynb", PAUSED_FLOW)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = _open(browser, base, token, "paused.ipynb")
        try:
            _run_all_cells(page, base, token)
            # The run's display: the live widget, then the static output that replaces it.
            run = page.locator(".kf-flow-run, .kf-flow")
            form = run.locator(".kf-pause-form")  # the form sits inside the run's display
            form.wait_for(timeout=60_000)
            run.locator(".kf-badge", has_text="Paused").first.wait_for(timeout=30_000)
            _field(form, "threshold").fill("0")
            _field(form, "threshold").press("Tab")
            form.locator("button", has_text="Resume").click()
            form.get_by_text("greater than or equal to 1").first.wait_for(timeout=30_000)
            _shoot(page, tmp_path, "pause-form-refused.png", focus=form)
            _field(form, "threshold").fill("5")
            _field(form, "threshold").press("Tab")
            _field(form, "approved").check()
            form.locator("button", has_text="Resume").click()
            page.get_by_text("(Approval(approved=True, threshold=5), 6)").first.wait_for(
                timeout=60_000
            )
            run.locator(".kf-badge", has_text="Completed").first.wait_for(timeout=60_000)
            page.get_by_text("resumed with approved=True, threshold=5").first.wait_for(
                timeout=30_000
            )
        finally:
            _shoot(page, tmp_path, "pause-form-resumed.png", page.locator(".kf-pause-outcome"))
            browser.close()


def _load_solution(page, name):
    """What the lesson asks of a learner: delete the `# ` before `%load` in a solution
    cell and run it (JupyterLab puts the file's code in the cell, not run), then run the
    cell again. Returns the cell."""
    line = f"%load solutions/{name}"
    cell = page.locator(".jp-CodeCell", has_text=f"# {line}")
    cell.locator(".cm-content").click()
    page.keyboard.press("Control+a")
    page.keyboard.type(line)
    page.keyboard.press("Shift+Enter")
    code = (NOTEBOOKS / "solutions" / name).read_text().splitlines()[0]
    cell.locator(".cm-content", has_text=code).wait_for(timeout=30_000)
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    return cell


def test_run_all_of_notebook_08_then_its_solutions_with_a_person_answering(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    # The lesson as a learner has it: the notebook beside its solutions/ folder.
    shutil.copy(NOTEBOOKS / "08_pauses.ipynb", tmp_path / "08_pauses.ipynb")
    shutil.copytree(NOTEBOOKS / "solutions", tmp_path / "solutions")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = _open(browser, base, token, "08_pauses.ipynb")
        try:
            _run_all_cells(page, base, token)
            # The lesson's form: approve, skip page 5, Resume.
            form = page.locator(".kf-pause-form").first
            form.wait_for(timeout=60_000)
            _shoot(page, tmp_path, "nb08-form.png", focus=form)
            _field(form, "approved").check()
            _field(form, "skip_pages").fill("5")
            form.locator("button", has_text="Resume").click()
            page.get_by_text("loaded 175 orders, skipped pages [5]").first.wait_for(timeout=60_000)
            outcome = page.locator(".kf-pause-outcome")
            _shoot(page, tmp_path, "nb08-form-answered.png", focus=outcome)
            # A pause nobody answers ends by itself, and Run All goes on to the last cell.
            page.get_by_text("unanswered: Failed").first.wait_for(timeout=60_000)
            lab._wait_for_idle_kernel(base, token)
            # Run All ran no solution: each cell is still the commented line, no output.
            solutions = page.locator(".jp-CodeCell", has_text="# %load solutions/")
            assert solutions.count() == 2
            for i in range(2):
                source = solutions.nth(i).locator(".cm-content").inner_text().strip()
                assert source.startswith("# %load solutions/") and "\n" not in source, source
                assert solutions.nth(i).locator(".jp-OutputArea-output").count() == 0
            for by_a_solution in ("not approved", "loaded 200 orders"):
                shown = page.locator(".jp-OutputArea-output", has_text=by_a_solution)
                assert shown.count() == 0, by_a_solution
            # Exercise 1's solution, loaded and run: the person says no this time.
            said_no = _load_solution(page, "08_say_no.py")
            second = said_no.locator(".kf-pause-form")
            second.wait_for(timeout=60_000)
            second.locator("button", has_text="Resume").click()
            # (in its output: the solution's code has the same words in an assert)
            said = said_no.locator(".jp-OutputArea-output", has_text="not approved: nothing loaded")
            said.first.wait_for(timeout=60_000)
            # Exercise 2's solution: a thread resumes the run, the form says so.
            elsewhere = _load_solution(page, "08_resumed_from_elsewhere.py")
            loaded = elsewhere.locator(
                ".jp-OutputArea-output", has_text="loaded 200 orders, skipped pages []"
            )
            loaded.first.wait_for(timeout=60_000)
            answered = elsewhere.locator(".kf-pause-outcome", has_text="approved=True")
            answered.wait_for(timeout=30_000)
            assert page.locator(".jp-OutputArea-output", has_text="Traceback").count() == 0
        finally:
            _shoot(page, tmp_path, "nb08-run-all.png", page.get_by_text("unanswered: Failed"))
            _shoot(page, tmp_path, "nb08-solutions.png", page.locator(".kf-pause-outcome").last)
            browser.close()


SYNC_RESUMED_ELSEWHERE = [
    """
import threading, time
import kernelflow
from kernelflow import flow, pause_flow_run

@flow
def reviewed():
    pause_flow_run(timeout=120)
    return "went on"

def resume_soon():
    while not kernelflow.paused_runs():
        time.sleep(0.05)
    time.sleep(2)
    kernelflow.resume_flow_run(kernelflow.paused_runs()[0])

threading.Thread(target=resume_soon).start()
reviewed()
""",
]


def test_a_sync_flows_input_line_ends_when_resumed_from_a_thread(jupyterlab, tmp_path):
    from playwright.sync_api import sync_playwright

    base, token = jupyterlab
    lab.write_notebook(tmp_path / "line.ipynb", SYNC_RESUMED_ELSEWHERE)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = _open(browser, base, token, "line.ipynb")
        try:
            _run_all_cells(page, base, token)
            stale = page.locator(".jp-Stdin-input").first
            stale.wait_for(timeout=60_000)  # the line is open, nobody types
            page.get_by_text("'went on'").first.wait_for(timeout=60_000)
            page.get_by_text("resumed elsewhere").first.wait_for(timeout=30_000)
            _shoot(page, tmp_path, "line-resumed-elsewhere.png", stale)
            # As the cell says: Enter in the box JupyterLab still shows clears it, and
            # the next cell runs (JupyterLab holds other cells while input is pending).
            stale.press("Enter")
            page.locator(".jp-Notebook .jp-Cell").last.click()
            page.keyboard.press("Escape")
            page.keyboard.press("b")  # a new cell below, in command mode
            page.keyboard.press("Enter")
            page.keyboard.type("6 * 7")
            page.keyboard.press("Shift+Enter")
            page.locator(".jp-OutputArea-output", has_text="42").first.wait_for(timeout=30_000)
        finally:
            _shoot(page, tmp_path, "line-next-cell.png")
            browser.close()

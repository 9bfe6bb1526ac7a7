"""What a flow's display shows in JupyterLab while it runs and once it is saved: graphs
that fit, timelines in lanes, pictures from the first frame, and header counts that agree
with the graph in every frame.

Run with ``make test-browser`` (see ``test_jupyterlab.py`` for the server and browser
set-up this file reuses). Screenshots land in build/browser-screenshots/display-*.png.
"""

import re
import shutil
import time

import nbformat

from tests.browser import test_jupyterlab as lab

pytestmark = lab.pytestmark  # skipped unless KERNELFLOW_BROWSER_TEST=1

SETUP = """
import asyncio, time
from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

@task
def step(x):
    time.sleep(0.15)
    return x + 1000  # a fresh int each step: each step's input is the last one's output

@flow
def chain():
    x = 1000
    for _ in range(15):
        x = step(x)
    return x

@task
async def wait_a_bit(i):
    await asyncio.sleep(1)
    return i

@flow
async def concurrent():
    return await asyncio.gather(*(wait_a_bit(i) for i in range(10)))

@task
def trickle(i):
    time.sleep(0.03 * (i % 9))
    return i

# Eight threads, so the map lasts seconds and the display many frames: the default
# runner would run all 240 sleeps at once and end in a few tenths of a second.
@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def many():
    return len(trickle.map(range(240)).result())
"""
FAN_IN = """
def check_record(x):
    if x == 3:
        raise ValueError(f"bad record {x}")
    return x

@task
def parse(x):
    return check_record(x)

@task
def combine(xs):
    return sum(xs)

@flow
def fan_in():
    return combine(parse.map(range(6)))

fan_in()  # the last cell: Run All stops at its error
"""
CELLS = [SETUP, "chain()", "await concurrent()", "many()", FAN_IN]


def _error_text(page) -> str:
    """The traceback the page shows for the last cell's error."""
    return _error(page).inner_text()


def _error(page):
    return page.locator(".jp-OutputArea-output", has_text="UpstreamTaskError").last


def _frame(page) -> dict:
    """The newest live flow display as the page shows it now, read in one go."""
    return page.evaluate(
        """() => {
            const views = document.querySelectorAll('.kf-flow-run');
            const view = views[views.length - 1];
            if (!view) return {};
            const frames = [...view.querySelectorAll('.kf-frame')];
            const graph = view.querySelector('.kf-graph svg');
            return {
                snapshots: frames.map(f => f.dataset.snapshot),
                counts: view.querySelector('.kf-counts')?.innerText || '',
                graph: graph ? [...graph.querySelectorAll('text')].map(t => t.textContent) : null,
                edges: graph ? graph.querySelectorAll('g.edge').length : 0,
                lanes: [...view.querySelectorAll('.kf-timeline text[text-anchor="end"]')]
                    .map(t => t.textContent),
            };
        }"""
    )


def _completed_in_graph(texts: list[str]) -> str:
    found = [m[1] for text in texts for m in [re.match(r"(\d+) completed", text)] if m]
    return found[0] if found else "0"


def test_live_displays_fit_agree_and_come_at_once_then_survive_reopening(tmp_path):
    from playwright.sync_api import sync_playwright

    root = tmp_path / "root"
    root.mkdir()
    lab.write_notebook(root / "displays.ipynb", CELLS)
    shots = lab.SCREENSHOTS
    shots.mkdir(parents=True, exist_ok=True)
    frames: dict[str, list[dict]] = {"chain": [], "concurrent": [], "many": []}
    with sync_playwright() as playwright:
        browser = lab._browser(playwright)
        try:
            with lab._server(root, tmp_path / "first") as (base, token):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                lab._open(page, base, token, "displays")
                lab._run_all_cells(page, base, token)
                # The chain: its display appears as it starts, its graph within 0.5 s.
                page.locator(".kf-flow-run").first.wait_for(timeout=60_000)
                appeared = time.monotonic()
                page.locator(".kf-flow-run .kf-graph svg").first.wait_for(timeout=10_000)
                graph_after = time.monotonic() - appeared
                page.locator(".jp-OutputArea-output:has(.kf-flow-run)").last.screenshot(
                    path=str(shots / "display-chain-first-frame.png")
                )
                deadline = time.monotonic() + 180
                for name, count in (("chain", 1), ("concurrent", 2), ("many", 3)):
                    while lab._static_flows(page) < count:
                        assert time.monotonic() < deadline, f"{name} did not end"
                        frame = _frame(page)
                        if frame.get("graph") is not None:
                            frames[name].append(frame)
                            if len(frames[name]) % 5 == 1:
                                live = page.locator(".jp-OutputArea-output:has(.kf-flow-run)")
                                try:
                                    live.last.screenshot(
                                        path=str(shots / f"display-{name}-{len(frames[name])}.png")
                                    )
                                except Exception:  # it turned static meanwhile
                                    pass
                        time.sleep(0.05)
                lab._wait_for_idle_kernel(base, token)
                _error(page).wait_for(timeout=60_000)
                error_live = _error_text(page)
                _error(page).screenshot(path=str(shots / "display-fan-in-error.png"))
                pictures = page.locator(lab.PICTURES)
                widths = pictures.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
                lab._screenshot_outputs(page, shots, "display-ran")
                for _ in range(2):
                    page.keyboard.press("Control+s")
                    time.sleep(2)
                page.close()
            # Reopened untrusted, with no kernel: the pictures still show (as PNG).
            with lab._server(root, tmp_path / "second", kernels=False) as (base, token):
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                lab._open(page, base, token, "displays")
                lab._dismiss_kernel_dialog(page)
                page.locator(lab.PICTURES).nth(7).wait_for(timeout=60_000)
                reopened = page.locator(lab.PICTURES).evaluate_all(
                    "imgs => imgs.map(i => [i.complete && i.naturalWidth, i.src.slice(0, 15)])"
                )
                error_reopened = _error_text(page)
                _error(page).screenshot(path=str(shots / "display-fan-in-error-reopened.png"))
                lab._screenshot_outputs(page, shots, "display-reopened")
                page.screenshot(path=str(shots / "display-reopened.png"), full_page=True)
        finally:
            browser.close()
    assert graph_after <= 0.5, graph_after
    # A fan-in failure: the traceback ends at the helper's raise, with no kernelflow frame.
    for shown in (error_live, error_reopened):
        assert 'raise ValueError(f"bad record {x}")' in shown and "UpstreamTaskError" in shown
        assert "/kernelflow/" not in shown, shown
    # Header and graph agree in every complete frame (both widgets from one snapshot).
    whole = [f for f in frames["many"] if len(set(f["snapshots"])) == 1 and f["graph"]]
    assert len(whole) >= 3, frames["many"]
    for frame in whole:
        header = re.match(r"(\d+)/\d+ completed", frame["counts"])
        assert header and header[1] == _completed_in_graph(frame["graph"]), frame
    # The 15-step chain: its edges grow live; saved, its graph has all 14, top to bottom,
    # at its natural size within 900 px.
    assert max(f["edges"] for f in frames["chain"]) >= 5, frames["chain"]
    saved = nbformat.read(root / "displays.ipynb", as_version=4)
    graph = next(o for o in saved.cells[1].outputs if "image/svg+xml" in o.get("data", {}))
    assert graph.data["image/svg+xml"].count('class="edge"') == 14
    assert widths[0] <= 900, widths
    # Ten overlapping async tasks: ten lanes.
    assert any(len(f["lanes"]) == 10 for f in frames["concurrent"]), frames["concurrent"]
    assert len(widths) == 8 and all(widths), widths  # 4 flows
    assert len(reopened) == 8 and all(w for w, _ in reopened), reopened
    assert all(src == "data:image/png;" for _, src in reopened), reopened
    shutil.rmtree(tmp_path / "first", ignore_errors=True)

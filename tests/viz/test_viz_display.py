"""How graphs display: real SVG from the real ``dot``, an install hint without it, and
in a real notebook kernel."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kernelflow

FLOW_DEFINITION = """
from kernelflow import flow, task

@task(viz_return_value=[1, 2, 3])
def extract():
    return [1, 2, 3]

@task
def transform(x):
    return x + 1

@flow
def my_flow():
    return transform.map(extract())
"""
NOTEBOOK_CELL = FLOW_DEFINITION + "\nmy_flow.visualize()\n"


def defined_flow():
    """The notebook's flow, defined here in-process."""
    namespace: dict = {}
    exec(FLOW_DEFINITION, namespace)
    return namespace["my_flow"]


def test_svg_render_with_the_real_dot(dot_binary):
    my_flow = defined_flow()
    bundle = my_flow.visualize()._repr_mimebundle_()
    svg = bundle["image/svg+xml"]
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "transform" in svg and "× 3 runs" in svg and "legend" in svg

    my_flow()
    run_svg = kernelflow.last_run().graph()._repr_image_svg_xml()
    assert "<svg" in run_svg and "transform × 3" in run_svg and "#bbf7d0" in run_svg


def test_without_dot_display_shows_the_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no dot anywhere
    my_flow = defined_flow()
    graph = my_flow.visualize()
    assert "digraph" in graph.source and "transform" in graph.source  # DOT is still there
    bundle = graph._repr_mimebundle_()
    assert "image/svg+xml" not in bundle
    for text in (bundle["text/plain"], bundle["text/html"]):
        for command in (
            "apt-get install graphviz",
            "conda install graphviz",
            "brew install graphviz",
        ):
            assert command in text

    my_flow()
    assert (
        "apt-get install graphviz"
        in kernelflow.last_run().graph()._repr_mimebundle_()["text/plain"]
    )


def test_wide_graphs_scale_to_the_cell_and_tall_ones_scroll(dot_binary):
    from kernelflow.viz._picture import MAX_HEIGHT, MIN_SCALE, img_html, svg_size

    svg = '<svg width="1500pt" height="90pt" viewBox="0 0 1500 90"></svg>'
    assert svg_size(svg) == (2000, 120)
    html = img_html(svg, "wide", "kf-graph")
    assert f"max-height:{MAX_HEIGHT}px;max-width:100%;overflow:auto" in html  # scrolls beyond
    assert f"width:100%;max-width:2000px;min-width:{2000 * MIN_SCALE:.0f}px" in html

    bundle = defined_flow().visualize()._repr_mimebundle_()
    width = svg_size(bundle["image/svg+xml"])[0]
    assert f"max-width:{width:.0f}px" in bundle["text/html"]


def test_import_kernelflow_loads_neither_graphviz_nor_the_viz_package():
    code = (
        "import sys, kernelflow; "
        "print(sorted(m for m in sys.modules if m.startswith(('graphviz', 'kernelflow.viz'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


ASYNC_CELL = """
import asyncio

@task(viz_return_value=[1, 2])
async def fetch():
    return [1, 2]

@task
async def store(item):
    return item

@flow
async def child(items):
    await asyncio.gather(*[store(i) for i in items])

@flow
async def async_flow():
    await child(await fetch())

async_flow.visualize()
"""


@pytest.mark.kernel
def test_notebook_cell_shows_the_graph_as_svg(dot_binary, tmp_path):
    from tests.kernel import RealKernel

    with RealKernel(env={"KERNELFLOW_HOME": str(tmp_path)}) as kernel:
        reply = kernel.execute(NOTEBOOK_CELL)
        svgs = reply.data("image/svg+xml")
        assert svgs and "<svg" in svgs[0] and "transform" in svgs[0]
        # What JupyterLab shows, also untrusted: the same picture as an <img>; and words,
        # not an object's repr, for readers without pictures.
        [html] = reply.data("text/html")
        assert '<img alt="Graph of' in html and 'src="data:image/svg+xml;base64,' in html
        [plain] = reply.data("text/plain")
        assert plain.startswith("Graph of 'my-flow': 2 nodes") and " at 0x" not in plain

        # And the executed run's graph, from kernelflow.last_run().
        reply = kernel.execute("import kernelflow\nmy_flow()\nkernelflow.last_run().graph()")
        svgs = reply.data("image/svg+xml")
        assert svgs and "transform × 3" in svgs[0]

        # An async flow is traced on the kernel's own running loop.
        reply = kernel.execute(ASYNC_CELL)
        svgs = reply.data("image/svg+xml")
        assert svgs and "subflow: child" in svgs[0] and "fetch" in svgs[0]


@pytest.mark.kernel
def test_notebook_cell_without_dot_shows_the_hint(tmp_path):
    from tests.kernel import RealKernel

    # The kernel runs this interpreter by its full path, so an empty PATH hides only dot.
    env = {"KERNELFLOW_HOME": str(tmp_path), "PATH": str(tmp_path)}
    with RealKernel(env=env) as kernel:
        reply = kernel.execute(NOTEBOOK_CELL)
        assert not reply.data("image/svg+xml")
        html = reply.data("text/html")
        assert html and "apt-get install graphviz" in html[0]
        assert "Traceback" not in reply.stderr


def test_displays_use_only_glyphs_that_debians_default_fonts_have():
    """Text drawn in graphs, timelines and displays stays within Latin-1 and General
    Punctuation (· × …), which DejaVu and Liberation cover: a pause glyph (U+23F8) drew
    as an empty box in Debian's chromium and in nbconvert's HTML."""
    import ast
    import pathlib

    import kernelflow

    root = pathlib.Path(kernelflow.__file__).parent
    odd = set()
    for path in [*root.glob("notebook/*.py"), *root.glob("viz/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                odd |= {
                    (path.name, ch)
                    for ch in node.value
                    if ord(ch) > 0xFF and not 0x2000 <= ord(ch) <= 0x206F
                }
    assert not odd

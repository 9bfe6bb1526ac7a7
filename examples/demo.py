"""``make demo``: run the quickstart notebook headless and keep what it shows.

Executes ``notebooks/01_quickstart.ipynb`` in a real Jupyter kernel (nbclient), exactly
as a person running every cell would, then writes to ``demo-output/``:

- ``01_quickstart.ipynb``: the executed notebook, outputs included;
- ``etl-plan.svg``: the graph ``etl.visualize()`` draws before anything runs;
- ``etl-run.svg``: the graph of what ran, coloured by each run's final state.

Drawing SVG needs Graphviz's ``dot``. Without it the demo still succeeds: it writes the
graphs' DOT source (``*.dot``) and says how to install Graphviz to draw them.
"""

from __future__ import annotations

import pathlib
import shutil
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "01_quickstart.ipynb"
OUT = ROOT / "demo-output"

# Appended to the demo's copy of the notebook (and visible in it): save both graphs.
SAVE_GRAPHS = """\
# Added by `make demo`: save the graphs of the flow above to demo-output/.
import pathlib
import graphviz

_out = pathlib.Path({out!r})
for _name, _graph in [("etl-plan", etl.visualize()), ("etl-run", kernelflow.last_run().graph())]:
    (_out / f"{{_name}}.dot").write_text(_graph.source)
    try:
        (_out / f"{{_name}}.svg").write_bytes(_graph.pipe(format="svg"))
    except graphviz.ExecutableNotFound:
        print("no-dot")
"""


def main() -> int:
    import nbformat
    from jupyter_client import KernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("etl-*"):
        old.unlink()
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(SAVE_GRAPHS.format(out=str(OUT))))
    cells = sum(cell.cell_type == "code" for cell in notebook.cells)
    print(f"Running {NOTEBOOK.relative_to(ROOT)} in a Jupyter kernel ({cells} code cells)...")

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kernelflow-demo-") as scratch:
        # IPC sockets in the scratch directory: nothing listens on the network, and the
        # kernel has no reason to warn about plain-text TCP.
        kernel = KernelManager(
            kernel_name="python3", transport="ipc", ip=str(pathlib.Path(scratch) / "kernel")
        )
        client = NotebookClient(
            notebook,
            km=kernel,
            timeout=300,
            # Every display ends as static outputs: widget models would be dead weight.
            store_widget_state=False,
            resources={"metadata": {"path": scratch}},
        )
        try:
            client.execute()
        except CellExecutionError as error:
            nbformat.write(notebook, OUT / NOTEBOOK.name)
            print(f"\nA cell failed; the notebook as far as it ran is in {OUT / NOTEBOOK.name}")
            print(str(error)[-2000:])
            return 1
    elapsed = time.perf_counter() - started
    nbformat.write(notebook, OUT / NOTEBOOK.name)
    _report(notebook, elapsed)
    return 0


def _report(notebook, elapsed: float) -> None:
    printed = "".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("name") == "stdout"
    )
    print(f"Done in {elapsed:.1f} s. What the cells printed:\n")
    for line in printed.splitlines():
        if line != "no-dot":
            print("   ", line)
    print(f"\nWritten to {OUT}/:")
    for path in sorted(OUT.iterdir()):
        print(f"    {path.name:<22} {path.stat().st_size:>8,} bytes")
    print("\nHow to look at them:")
    print(f"  - the executed notebook: `make lab` and open demo-output/{NOTEBOOK.name},")
    print("    or any Jupyter, VS Code, or GitHub (its outputs are saved in the file)")
    if "no-dot" in printed or shutil.which("dot") is None:
        print("  - the graphs: Graphviz's `dot` is not installed, so only their DOT source was")
        print("    written. Install it (`sudo apt-get install graphviz`, `brew install graphviz`")
        print("    or `conda install graphviz`), then `dot -Tsvg demo-output/etl-run.dot -o")
        print("    demo-output/etl-run.svg`, or run `make demo` again.")
    else:
        print("  - the graphs: open demo-output/etl-plan.svg and demo-output/etl-run.svg in a")
        print("    web browser (e.g. `python -m webbrowser demo-output/etl-run.svg`)")
    print("  - the other tutorials: `make lab` starts JupyterLab on notebooks/")


if __name__ == "__main__":
    sys.exit(main())

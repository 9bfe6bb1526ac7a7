"""Draw the README's figures into docs/ (``make figures``; needs Graphviz's ``dot``).

- ``quickstart-plan.svg``: ``squares.visualize()`` of the README's 30-second example;
- ``quickstart-run.svg``: the graph of a real run of it, coloured by state;
- ``quickstart-timeline.svg``: the timeline the notebook display shows for that run.

The flow below is the README's example, word for word: keep the two in step.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent


def main() -> int:
    os.environ["KERNELFLOW_HOME"] = tempfile.mkdtemp(prefix="kernelflow-figures-")
    logging.getLogger("kernelflow").setLevel(logging.WARNING)

    import graphviz

    import kernelflow
    from kernelflow import flow, task
    from kernelflow.notebook._charts import timeline_svg

    # --- the README's example -------------------------------------------------------
    @task(retries=2, retry_delay_seconds=1)
    def fetch(n: int) -> int:
        time.sleep(0.1)  # pretend to call a slow service
        return n * n

    @task
    def total(values: list[int], offset: int) -> int:
        return sum(values) + offset

    @flow
    def squares(n: int = 5) -> int:
        futures = fetch.map(range(n))  # five runs at once on the flow's thread pool
        return total(futures, offset=10)  # futures passed to a task become their values

    # ---------------------------------------------------------------------------------
    assert squares() == 40
    run = kernelflow.last_run()
    figures = {
        "quickstart-plan.svg": squares.visualize(),
        "quickstart-run.svg": run.graph(),
    }
    try:
        for name, graph in figures.items():
            (HERE / name).write_bytes(graph.pipe(format="svg"))
    except graphviz.ExecutableNotFound:
        print("Graphviz's `dot` is needed to draw the figures: install graphviz and retry.")
        return 1
    (HERE / "quickstart-timeline.svg").write_text(timeline_svg(run) + "\n")
    for name in [*figures, "quickstart-timeline.svg"]:
        print(f"wrote docs/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

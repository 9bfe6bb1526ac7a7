"""What the run history costs a flow (DESIGN.md s. 4: on <= 1.05x off).

    python benchmarks/history.py [--pairs N] [--n N]

Two flows, each timed with the history on and off in adjacent pairs of alternating
order (``support.pairs``), every run from the same heap:

- a 10,000-task map on ThreadPoolTaskRunner(8);
- a flow making 100 direct task calls.

With the history on, a run's path does a few enqueues (its flow run's own state changes
and its log lines); the writer thread turns the records into rows and writes them
after the flow ends. Two figures per flow:

- "call": the flow call's wall time, on / off: what the person running it waits for;
- "written": the call plus the wait until its records are in the database, on / off:
  the writer's whole cost, as if nothing else could run meanwhile.

The history is within budget when both "call" figures are <= 1.05x. "written" is
printed for the record (on a 2-core machine the writer shares the cores with the next
cell).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("KERNELFLOW_LOGGING_LEVEL", "WARNING")
os.environ["KERNELFLOW_HOME"] = tempfile.mkdtemp(prefix="kernelflow-history-bench-")

from support.pairs import alternating_pairs, fresh_heap, pair_ratio  # noqa: E402

from kernelflow import flow, task  # noqa: E402
from kernelflow._history import writer  # noqa: E402
from kernelflow.task_runners import ThreadPoolTaskRunner  # noqa: E402

BUDGET = 1.05


@task
def trivial(x: int) -> int:
    return x


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def mapped(n: int) -> None:
    trivial.map(range(n)).result()


@flow
def direct(n: int) -> int:
    return sum(trivial(i) for i in range(n))


def timed(body, n: int, history: bool) -> tuple[float, float]:
    """(call, written) seconds for one run of ``body(n)``."""
    os.environ["KERNELFLOW_HISTORY"] = "on" if history else "off"
    start = time.perf_counter()
    body(n)
    call = time.perf_counter() - start
    if history:
        writer.flush()  # its records written (the writer thread may have begun already)
    return call, time.perf_counter() - start


def before_each() -> None:
    writer.flush()  # nothing of an earlier run left for the writer to do
    fresh_heap()


def report(name: str, body, n: int, pairs: int) -> bool:
    runs = alternating_pairs(
        lambda: timed(body, n, True),
        lambda: timed(body, n, False),
        pairs,
        warmup=2,
        before_each=before_each,
    )
    on, off = runs.first, runs.second
    call = pair_ratio([c for c, _ in on], [c for c, _ in off])
    written = pair_ratio([w for _, w in on], [w for _, w in off])
    print(f"{name}: call {call}; written {written}")
    return call.median <= BUDGET


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--n", type=int, default=10_000, help="tasks in the map")
    args = parser.parse_args()
    ok = report(f"{args.n:,}-task map", mapped, args.n, args.pairs)
    ok = report("100 direct task calls", direct, 100, args.pairs * 5) and ok
    print("within budget" if ok else f"OVER BUDGET (> {BUDGET}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

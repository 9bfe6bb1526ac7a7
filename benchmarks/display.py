"""What the live display costs a 10,000-task mapped flow, in a real kernel (DESIGN.md s. 4).

    python benchmarks/display.py [--pairs N]

One IPython kernel (jupyter_client) runs the same flow, 10,000 trivial mapped tasks on
ThreadPoolTaskRunner(8), with the live FlowRun display on and off. With the display on,
every flow-run state change reaches the display's observer, its widgets are opened and
updated ~10 times a second, and its final frame (state, counts) is sent before the flow
call returns: all of that is inside the measured time. The final pictures (graph and
timeline) are drawn on the display thread just after the call returns; that work is
timed apart and printed, and it is over before the next run starts, so it never lands
in another run's time.

One run of this flow moves by 20% or more on a shared 2-core machine (its CPU time as
much as its wall time), so the figure is built to survive that:

- warm-up pairs first (imports, thread pool, widget classes), then ``--pairs`` pairs;
- the two runs of a pair are adjacent and their order alternates (off-on, on-off,
  ...), so drift in the machine's load hits both sides alike;
- every run starts from the same state: no records kept from earlier runs, a collected
  heap, and the display of the previous run finished;
- figure 1, the ratio of the *medians* of the flow call's wall time, which a few
  disturbed runs cannot move (a best is one lucky run: printed, not judged), with a
  bootstrap interval that says how far another run of this script may land;
- figure 2, the display's own work inside the call (the CPU time of its thread, plus
  the time the cell's thread spent opening it), as a share of the median flow time
  with the display off: the same in every run, it is what a costlier display moves
  first.

The display is within budget when both figures are <= 1.10x (10% slower than without).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.kernel import RealKernel  # noqa: E402

N = 10_000
PAIRS = 100
WARMUP_PAIRS = 3
BUDGET = 1.10

SETUP = """
import gc, json, logging, threading, time
import kernelflow, kernelflow.notebook
from kernelflow import flow, task
from kernelflow.notebook import _display
from kernelflow.notebook._ticker import ticker
from kernelflow.task_runners import ThreadPoolTaskRunner
logging.getLogger("kernelflow").setLevel(logging.WARNING)

@task
def trivial(x):
    return x

@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def mapped(n):
    trivial.map(range(n)).result()

def display_cpu():
    # CPU seconds of the display thread so far (0 before it first starts).
    for thread in threading.enumerate():
        if thread.name == "kernelflow-display":
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    return 0.0

opening = [0.0]  # CPU seconds the cell's thread spent opening displays
_show = _display.show

def timed_show(kind, record):
    started = time.thread_time()
    try:
        _show(kind, record)
    finally:
        opening[0] += time.thread_time() - started

_display.show = timed_show

def settle():
    # Until the display has drawn its last pictures and stopped watching the run.
    deadline = time.monotonic() + 60
    while ticker().watching and time.monotonic() < deadline:
        time.sleep(0.001)

def timed(display, n):
    kernelflow.notebook.settings.display_flow_runs = display
    # Earlier runs' records (kept by kernelflow.runs()) would make each garbage
    # collection slower than the last: start every run from the same heap.
    kernelflow.runs.clear()
    settle()
    gc.collect()
    during, opening[0] = display_cpu(), 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    mapped(n)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    after = display_cpu()
    own = after - during + opening[0]
    settle()
    return {"wall": wall, "cpu": cpu, "own": own, "after": display_cpu() - after}

def pairs(count, n):
    runs = {"on": [], "off": []}
    for i in range(count):
        for display in ((True, False) if i % 2 else (False, True)):
            runs["on" if display else "off"].append(timed(display, n))
    return runs
"""


def measure(pairs: int) -> dict[str, list[dict[str, float]]]:
    # The display is on by default in a kernel; the cells switch it per run.
    with RealKernel(env={"KERNELFLOW_DISPLAY": "1"}) as kernel:
        kernel.execute(SETUP)
        kernel.execute(f"pairs({WARMUP_PAIRS}, {N})", timeout=600)
        reply = kernel.execute(f"print(json.dumps(pairs({pairs}, {N})))", timeout=1800)
    if not reply.ok:
        raise SystemExit(f"The benchmark cell failed: {reply.error}")
    return json.loads(reply.stdout.strip().splitlines()[-1])


def interval(on: list[float], off: list[float], rounds: int = 2000) -> tuple[float, float]:
    """Where the ratio of medians falls in 90% of resamples of these runs (seeded: the
    same timings always give the same interval)."""
    pick = random.Random(0).choices
    ratios = sorted(
        statistics.median(pick(on, k=len(on))) / statistics.median(pick(off, k=len(off)))
        for _ in range(rounds)
    )
    return ratios[rounds // 20], ratios[-rounds // 20 - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:6.1f} ms"


def report(runs: dict[str, list[dict[str, float]]]) -> tuple[float, float]:
    """Print the figures; return (ratio of median wall times, 1 + display's own share)."""
    for kind, label in (("wall", "wall time "), ("cpu", "kernel CPU")):
        off = [run[kind] for run in runs["off"]]
        on = [run[kind] for run in runs["on"]]
        median = statistics.median(on) / statistics.median(off)
        low, high = interval(on, off)
        print(
            f"  {label}  median off {ms(statistics.median(off))}  on {ms(statistics.median(on))}"
            f"  on/off {median:.3f} (90%: {low:.3f}-{high:.3f});"
            f"  best on/off {min(on) / min(off):.3f}"
        )
        if kind == "wall":
            wall, off_median = median, statistics.median(off)
    own = statistics.median(run["own"] for run in runs["on"])
    after = statistics.median(run["after"] for run in runs["on"])
    share = own / off_median
    print(f"  display's own work in the call (CPU, median): {ms(own)} = {share:.1%} of the flow")
    print(f"  display thread after the call returned (final graph, timeline): {ms(after)} CPU")
    return wall, 1 + share


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=PAIRS, help="measured on/off pairs")
    pairs = parser.parse_args().pairs
    runs = measure(pairs)
    print(f"{N:,} mapped tasks in a flow, ThreadPoolTaskRunner(8), in a real kernel:")
    print(f"{pairs} adjacent off/on pairs in alternating order (after {WARMUP_PAIRS} warm-up")
    print("pairs); the flow call's times, the display's final frame included.")
    wall, own = report(runs)
    worst = max(wall, own)
    verdict = "within" if worst <= BUDGET else "OVER"
    print(
        f"  display on / off = {wall:.3f} (median wall time), {own:.3f} (display's own work):"
        f" {verdict} the {BUDGET:.2f}x budget"
    )
    return 0 if worst <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())

"""Engine overhead against plain Python, measured in one run (DESIGN.md section 4).

    python benchmarks/overhead.py

1. 10,000 trivial tasks on ThreadPoolTaskRunner(8) vs raw ThreadPoolExecutor(8), mapped
   (``.map()``) and submitted one by one (``.submit()``): per-task microseconds and the
   ratio (budget <= 2x raw for both).
2. 10,000 direct task calls inside a flow vs plain calls: microseconds over a plain
   call (budget <= 15 us).
3. `import kernelflow` + a first trivial flow in a new process (budget <= 0.5 s).

The thread-runner ratios are the median over adjacent pairs in alternating order, each
run from the same heap (support/pairs.py: kernelflow keeps the last flow runs' records,
and a bigger heap makes every later run pay more for garbage collection). The direct
call and the start-up are the best of several repeats, to damp the noise of a shared
machine.
"""

from __future__ import annotations

import logging
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from support.compare import report
from support.load import OtherLoad
from support.pairs import alternating_pairs, pair_ratio

from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

N = 10_000
REPEATS = 5
PAIRS = 7
logging.getLogger("kernelflow").setLevel(logging.WARNING)  # no per-flow INFO lines


def trivial(x):
    return x


trivial_task = task(trivial)


def raw_executor_per_task() -> float:
    with ThreadPoolExecutor(8) as pool:
        started = time.perf_counter()
        futures = [pool.submit(trivial, i) for i in range(N)]
        for future in futures:
            future.result()
        return (time.perf_counter() - started) / N


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def mapped_flow(n: int):
    started = time.perf_counter()
    trivial_task.map(range(n)).result()
    return (time.perf_counter() - started) / n


@flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
def submitted_flow(n: int):
    started = time.perf_counter()
    futures = [trivial_task.submit(i) for i in range(n)]
    for future in futures:
        future.result()
    return (time.perf_counter() - started) / n


@flow
def direct_calls_flow(n: int):
    started = time.perf_counter()
    for i in range(n):
        trivial_task(i)
    return (time.perf_counter() - started) / n


def plain_calls_per_call() -> float:
    started = time.perf_counter()
    for i in range(N):
        trivial(i)
    return (time.perf_counter() - started) / N


def first_flow_in_new_process() -> float:
    code = (
        "import time; t = time.perf_counter()\n"
        "import kernelflow\n"
        "@kernelflow.task\n"
        "def one(): return 1\n"
        "@kernelflow.flow\n"
        "def first(): return one()\n"
        "first(); print(time.perf_counter() - t)"
    )
    runs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        for _ in range(3)
    ]
    return min(float(run.stdout.strip()) for run in runs)


def best(measure, *args) -> float:
    return min(measure(*args) for _ in range(REPEATS))


def _against_raw(name: str, pairs) -> tuple:
    ours, raw = statistics.median(pairs.first), statistics.median(pairs.second)
    ratio = pair_ratio(pairs.first, pairs.second)
    return (
        name,
        f"{ours * 1e6:8.1f} us/task",
        f"raw ThreadPoolExecutor(8) {raw * 1e6:.1f} us/task",
        str(ratio),
        "<= 2x",
        ratio.median <= 2,
    )


def main() -> int:
    with OtherLoad() as load:
        mapped = alternating_pairs(lambda: mapped_flow(N), raw_executor_per_task, PAIRS)
        submitted = alternating_pairs(lambda: submitted_flow(N), raw_executor_per_task, PAIRS)
    plain = best(plain_calls_per_call)
    direct = best(direct_calls_flow, N)
    startup = first_flow_in_new_process()
    over_plain = (direct - plain) * 1e6
    print(
        f"thread runner: {PAIRS} alternating pairs each, every run from the same heap;"
        f" medians, and the pair ratios' median (lowest-highest); {load}"
    )
    rows = [
        _against_raw("mapped task, ThreadPoolTaskRunner(8)", mapped),
        _against_raw("submitted task, ThreadPoolTaskRunner(8)", submitted),
        (
            "direct task call in a flow",
            f"{direct * 1e6:8.1f} us/call",
            f"plain call {plain * 1e6:.2f} us",
            f"+{over_plain:.1f} us",
            "<= +15 us",
            over_plain <= 15,
        ),
        (
            "import + first flow, new process",
            f"{startup:8.3f} s",
            "",
            "",
            "<= 0.5 s",
            startup <= 0.5,
        ),
    ]
    return report(rows)


if __name__ == "__main__":
    sys.exit(main())

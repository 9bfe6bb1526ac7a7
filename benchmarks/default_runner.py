"""The default ThreadPoolTaskRunner() (no max_workers) against ThreadPoolTaskRunner(8).

    python benchmarks/default_runner.py

1. A 100,000-task map of a trivial task: the default runner may take at most 1.0x the
   time of ThreadPoolTaskRunner(8) (issue 27; issue 13: it took 4.6 s with 510 threads
   vs 2.4 s), and the number of threads it started is printed.
2. 200 tasks that each sleep 1 s on the default runner: still about 1 s in all
   (Prefect's default allows that concurrency).

How it is measured (support/pairs.py): the two runners are timed in adjacent pairs
whose order alternates, every run from the same heap (kernelflow's kept flow runs
cleared, garbage collected), after one warm-up pair; the figure is the median of the
pairs' ratios, printed with the lowest and highest. Timing 3 runs of one runner and
then 3 of the other, as this script once did, made the default runner look 1.3-1.5x
slower: each 100k-task run leaves ~600,000 objects in kernelflow's run history, every
full garbage collection walks them all, so whichever runner went second ran on a
bigger heap (in either order, the second was the slower).
"""

from __future__ import annotations

import logging
import statistics
import sys
import threading
import time

from support.compare import report
from support.load import OtherLoad
from support.pairs import alternating_pairs, fresh_heap, pair_ratio

from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

N = 100_000
SLEEPERS = 200
PAIRS = 5
SLEEPER_RUNS = 3
logging.getLogger("kernelflow").setLevel(logging.WARNING)


@task
def trivial(x):
    return x


@task
def sleep_one_second(x):
    time.sleep(1)
    return x


def timed_map(runner: ThreadPoolTaskRunner, mapped, n: int) -> tuple[float, int]:
    """Seconds for the map, and the most threads this run started alive at once.

    Threads alive before the run are not counted: the timer thread a default runner
    starts once for the session, and pool threads of the previous run still exiting.
    """
    before = set(threading.enumerate())
    most = [0]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.01):
            started = sum(1 for thread in threading.enumerate() if thread not in before)
            most[0] = max(most[0], started - 1)  # less the watcher itself

    watcher = threading.Thread(target=watch, daemon=True)

    @flow(task_runner=runner)
    def mapping():
        started = time.perf_counter()
        mapped.map(range(n)).result()
        return time.perf_counter() - started

    watcher.start()
    try:
        seconds = mapping()
    finally:
        done.set()
        watcher.join()
    return seconds, most[0]


def main() -> int:
    with OtherLoad() as load:
        runs = alternating_pairs(
            lambda: timed_map(ThreadPoolTaskRunner(), trivial, N),
            lambda: timed_map(ThreadPoolTaskRunner(8), trivial, N),
            PAIRS,
        )
    default = [seconds for seconds, _ in runs.first]
    bounded = [seconds for seconds, _ in runs.second]
    ratio = pair_ratio(default, bounded)
    default_threads = max(threads for _, threads in runs.first)
    bounded_threads = max(threads for _, threads in runs.second)
    sleepers = []
    for _ in range(SLEEPER_RUNS):
        fresh_heap()
        sleepers.append(timed_map(ThreadPoolTaskRunner(), sleep_one_second, SLEEPERS))
    sleeper_seconds = statistics.median(seconds for seconds, _ in sleepers)
    sleeper_threads = max(threads for _, threads in sleepers)
    print(
        f"{PAIRS} alternating pairs after a warm-up pair, each run from the same heap;"
        f" medians, and the pair ratios' median (lowest-highest); {load}"
    )
    rows = [
        (
            f"{N:,} trivial mapped tasks, default runner",
            f"{statistics.median(default):6.2f} s ({default_threads} threads)",
            f"ThreadPoolTaskRunner(8) {statistics.median(bounded):.2f} s"
            f" ({bounded_threads} threads)",
            str(ratio),
            "<= 1.0x",
            round(ratio.median, 2) <= 1.0,  # as printed: the same runner, in effect
        ),
        (
            f"{SLEEPERS} tasks sleeping 1 s, default runner",
            f"{sleeper_seconds:6.2f} s ({sleeper_threads} threads)",
            f"median of {SLEEPER_RUNS} runs"
            f" ({min(s for s, _ in sleepers):.2f}-{max(s for s, _ in sleepers):.2f} s)",
            "",
            "about 1 s",
            sleeper_seconds <= 1.5,
        ),
    ]
    return report(rows)


if __name__ == "__main__":
    sys.exit(main())

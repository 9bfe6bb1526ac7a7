"""The default ThreadPoolTaskRunner() (no max_workers) against ThreadPoolTaskRunner(8).

    python benchmarks/default_runner.py

1. A 100,000-task map of a trivial task: the default runner may take at most 1.2x the
   time of ThreadPoolTaskRunner(8) (issue 13: it took 4.6 s with 510 threads vs 2.4 s),
   and the number of threads it started is printed.
2. 200 tasks that each sleep 1 s on the default runner: still about 1 s in all
   (Prefect's default allows that concurrency).

Each figure is the best of a few repeats, to damp the noise of a shared machine.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

from support.compare import report

from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

N = 100_000
SLEEPERS = 200
REPEATS = 3
logging.getLogger("kernelflow").setLevel(logging.WARNING)


@task
def trivial(x):
    return x


@task
def sleep_one_second(x):
    time.sleep(1)
    return x


def timed_map(runner: ThreadPoolTaskRunner, mapped, n: int) -> tuple[float, int]:
    """Seconds for the map, and the most threads alive meanwhile."""
    most = [threading.active_count()]
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.01):
            most[0] = max(most[0], threading.active_count())

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
    return seconds, most[0] - 2  # less this thread and the watcher


def best(runner_factory, mapped, n: int) -> tuple[float, int]:
    results = [timed_map(runner_factory(), mapped, n) for _ in range(REPEATS)]
    return min(results)


def main() -> int:
    bounded, bounded_threads = best(lambda: ThreadPoolTaskRunner(8), trivial, N)
    default, default_threads = best(ThreadPoolTaskRunner, trivial, N)
    sleepers, sleeper_threads = best(ThreadPoolTaskRunner, sleep_one_second, SLEEPERS)
    ratio = default / bounded
    rows = [
        (
            f"{N:,} trivial mapped tasks, default runner",
            f"{default:6.2f} s ({default_threads} threads)",
            f"ThreadPoolTaskRunner(8) {bounded:.2f} s ({bounded_threads} threads)",
            f"{ratio:.2f}x",
            "<= 1.2x",
            ratio <= 1.2,
        ),
        (
            f"{SLEEPERS} tasks sleeping 1 s, default runner",
            f"{sleepers:6.2f} s ({sleeper_threads} threads)",
            "",
            "",
            "about 1 s",
            sleepers <= 1.5,
        ),
    ]
    return report(rows)


if __name__ == "__main__":
    sys.exit(main())

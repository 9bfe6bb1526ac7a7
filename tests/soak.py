"""``make soak``: one kernel, many flows, interrupts, for ten minutes (SOAK_SECONDS).

Not part of ``make test``. In one real IPython kernel it runs rounds of flows on the
thread, process and Dask runners, with caching, failures, retries and timeouts, and
every 30 s starts a long flow and presses Stop (SIGINT to the kernel's process group,
as JupyterLab does). It prints runs done, interrupts survived and the kernel's memory
(with its worker processes) at start and end, and fails on a hang (a cell without
progress for 30 s), a lost or wrong result, or memory growth over 20%. "Start" is once
the run history is full (the last 100 flow runs' records are kept by design; filling it
is not growth), after a warm-up that does so with rounds of every size it runs.

    make soak                      # 10 minutes
    SOAK_SECONDS=120 make soak     # a short one
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.kernel import RealKernel  # noqa: E402

DURATION = float(os.environ.get("SOAK_SECONDS", "600"))
INTERRUPT_EVERY = 30.0
HANG = 30.0  # seconds a cell may go without finishing
GROWTH = 0.20

SETUP = """
import random, time
from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS
from kernelflow.task_runners import DaskTaskRunner, ProcessPoolTaskRunner, ThreadPoolTaskRunner

RUNNERS = {
    "thread": ThreadPoolTaskRunner(max_workers=4),
    "process": ProcessPoolTaskRunner(max_workers=2),
    "dask": DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1}),
}

@task(cache_policy=INPUTS)
def square(x):
    return x * x

@task(retries=3, retry_delay_seconds=0)
def flaky(x):
    if random.random() < 0.3:
        raise ConnectionError("flaky service")
    return x

@task(timeout_seconds=0.5)
def sometimes_slow(x):
    time.sleep(1.0 if x % 7 == 0 else 0.0)
    return x

@task
def nap(seconds):
    time.sleep(seconds)
    return seconds

def make_round(runner):
    @flow(task_runner=runner)
    def one_round(n):
        squares = square.map(range(n)).result()
        kept = [f.result() for f in flaky.map(range(n)) if f.state.is_completed()]
        timed = [s for s in sometimes_slow.map(range(n), return_state=True)]
        timed_out = sum(1 for s in timed if s.is_failed())
        return sum(squares), len(kept), timed_out
    return one_round

ROUNDS = {name: make_round(runner) for name, runner in RUNNERS.items()}

def long_flow(runner_name):
    return flow(task_runner=RUNNERS[runner_name])(lambda: nap.map([20] * 4).result())()
"""

# Rounds of every size the soak runs (n = 20..49), until the run history is full of
# them: filled with small rounds only, it grows while larger ones replace them, which
# is not a leak either.
WARM_HISTORY = """
from kernelflow._run_history import RUN_HISTORY_SIZE, _history
for r in range(10**6):
    if r >= 30 and len(_history) >= RUN_HISTORY_SIZE:
        break
    for one_round in ROUNDS.values():
        one_round(20 + r % 30)
"""

ROUND = """
for name, one_round in ROUNDS.items():
    total, kept, timed_out = one_round({n})
    assert total == sum(i * i for i in range({n})), (name, total)
    assert timed_out == len([i for i in range({n}) if i % 7 == 0]), (name, timed_out)
print("runs", 3 * 3 * {n})
"""


def memory(kernel: RealKernel) -> int:
    """RSS of the kernel and its children (worker processes), in bytes."""
    return sum(memory_parts(kernel))


def memory_parts(kernel: RealKernel) -> tuple[int, int]:
    """RSS of the kernel, and of its children (worker processes), in bytes."""
    process = psutil.Process(kernel.manager.provisioner.process.pid)
    children = sum(p.memory_info().rss for p in process.children(recursive=True))
    return process.memory_info().rss, children


def main() -> int:
    home = tempfile.mkdtemp(prefix="kernelflow-soak-")
    runs = interrupts = rounds = 0
    with RealKernel(env={"KERNELFLOW_HOME": home}) as kernel:
        kernel.execute(SETUP, timeout=120)
        kernel.execute(ROUND.format(n=20), timeout=120)  # warm: pools, cluster, caches
        first_memory = memory(kernel)
        # Memory is measured from when the run history is full: it keeps the last
        # RUN_HISTORY_SIZE flow runs' records by design, and filling it is not a leak.
        kernel.execute(WARM_HISTORY, timeout=600)
        start_memory = memory(kernel)
        started = last_interrupt = time.monotonic()
        while time.monotonic() - started < DURATION:
            if time.monotonic() - last_interrupt >= INTERRUPT_EVERY:
                runner = ("thread", "process", "dask")[interrupts % 3]
                msg_id = kernel.execute_async(f"long_flow({runner!r})")
                time.sleep(1.0)
                kernel.interrupt()
                reply = kernel.wait_reply(msg_id, timeout=HANG)
                if reply.status != "error" or reply.error["ename"] != "KeyboardInterrupt":
                    print(f"FAIL: the interrupted {runner} flow ended {reply.status}")
                    return 1
                interrupts += 1
                last_interrupt = time.monotonic()
                continue
            n = 20 + rounds % 30
            try:
                reply = kernel.execute(ROUND.format(n=n), timeout=HANG)
            except Exception as error:  # a hang (queue.Empty) or a failed assert
                print(f"FAIL after {rounds} rounds: {type(error).__name__}: {error}")
                return 1
            runs += int(reply.stdout.split()[1])
            rounds += 1
            if os.environ.get("SOAK_VERBOSE"):
                own, children = memory_parts(kernel)
                mb = 2**20
                print(f"round {rounds}: kernel {own / mb:.0f} MB, workers {children / mb:.0f} MB")
        end_memory = memory(kernel)
    growth = end_memory / start_memory - 1
    print(
        f"soak: {time.monotonic() - started:.0f} s, {rounds} rounds, {runs} task runs, "
        f"{interrupts} interrupts survived; kernel + workers RSS {start_memory / 2**20:.0f} MB "
        f"-> {end_memory / 2**20:.0f} MB ({growth:+.1%}, limit +{GROWTH:.0%}; "
        f"{first_memory / 2**20:.0f} MB before the run history filled)"
    )
    return 0 if growth <= GROWTH else 1


if __name__ == "__main__":
    raise SystemExit(main())

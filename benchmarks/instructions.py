"""Instructions per run, counted by valgrind's callgrind: figures that do not depend on load.

    python benchmarks/instructions.py [--runs 3000] [--only direct,mapped,...]

Wall-clock figures on a shared machine move with whatever else runs; the number of
machine instructions a run costs does not. Each kind of run is done ``N`` times and
``2N`` times, each in a fresh process under ``valgrind --tool=callgrind``; the difference
of the two totals over ``N`` is the cost of one run, since importing and starting the
flow and the pool are in both and cancel out. The child leaves by ``os._exit``: the
interpreter's shutdown walks every live object in its last garbage collections, so
there the 2N process would pay for the N more run records it keeps (a cost of memory
held, paid at exit, not of running), about 6k instructions "per run" on a direct call.

    direct      a trivial task called directly in a flow
    mapped      one run of ``trivial_task.map(range(N))`` on ThreadPoolTaskRunner(8)
    submitted   one ``trivial_task.submit(i)`` on ThreadPoolTaskRunner(8), then its result
    raw_tpe     one ``ThreadPoolExecutor(8).submit(trivial, i)``, then its result
    cache_hit   a direct call of a cached task whose result is cached (in memory)
    retried     a mapped run, then its reuse by ``FlowRun.retry()`` (one item of the map
                failed, and runs again): "reused run" is this less ``mapped``
    plain       a plain Python call of the same function (the floor)
    startup     not per run: ``import kernelflow`` and a first trivial flow in a new
                process, less a new process that only starts Python (overhead.py times
                the same; its time varies twofold here, its instructions do not)

Budgets (issue 27): a direct call <= 60k instructions, a mapped run <= 110k. The
others are printed for the record, next to the raw pool's. Exit status 1 when a budget
is over (0, with a note, where valgrind is not installed). Runs with threads vary by a
few thousand instructions from one count to the next (which thread waits for the GIL
how often).

N is 3,000 by default. Every run leaves its record alive, so the garbage collector
walks records as they pile up: its youngest generation every ~150 runs of a direct
call, its middle one every ~1,500. With N = 1,000 a count holds less than one middle
collection, and the figure moves with where the collections fall in the N and 2N
processes: for one build, 60.2k at 1,000 runs against 56.0k, 57.4k and 56.8k at 2,000,
3,000 and 5,000. At 3,000 each count holds several, and the figure is what runs cost
over time, collections included.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

BUDGETS = {"direct": 60_000, "mapped": 110_000}
KINDS = ("plain", "raw_tpe", "direct", "mapped", "submitted", "cache_hit", "retried", "startup")

# What each kind does in the child process, ``n`` times, after its setup.
_CHILD = r"""
import os, sys
kind, n = sys.argv[1], int(sys.argv[2])
if kind == "bare":
    os._exit(0)
import logging
logging.getLogger("kernelflow").setLevel(logging.WARNING)
from concurrent.futures import ThreadPoolExecutor
from kernelflow import flow, task
from kernelflow.task_runners import ThreadPoolTaskRunner

def trivial(x):
    return x

trivial_task = task(trivial)

if kind == "plain":
    for i in range(n):
        trivial(i)
elif kind == "raw_tpe":
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(trivial, i) for i in range(n)]
        for future in futures:
            future.result()
elif kind == "direct":
    @flow
    def calls(n):
        for i in range(n):
            trivial_task(i)
    calls(n)
elif kind == "mapped":
    @flow(task_runner=ThreadPoolTaskRunner(8))
    def mapped(n):
        trivial_task.map(range(n)).result()
    mapped(n)
elif kind == "submitted":
    @flow(task_runner=ThreadPoolTaskRunner(8))
    def submitted(n):
        futures = [trivial_task.submit(i) for i in range(n)]
        for future in futures:
            future.result()
    submitted(n)
elif kind == "cache_hit":
    from kernelflow.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def inc(x):
        return x + 1

    @flow
    def hits(n):
        for i in range(n):
            inc(0)
    hits(1)  # the one miss, stored; every call after is a hit
    hits(n)
elif kind == "startup":
    @flow
    def first():
        return trivial_task(1)
    first()
elif kind == "bare":  # never imported kernelflow: the startup kind's baseline
    pass
elif kind == "retried":
    import kernelflow

    broken = {"item": 0}

    @task
    def work(x):
        if x == broken["item"]:
            raise ValueError("broken")
        return x

    @flow(task_runner=ThreadPoolTaskRunner(8))
    def batch(n):
        return len(work.map(range(n)).result())

    try:
        batch(n)
    except ValueError:
        pass
    broken["item"] = -1
    assert kernelflow.last_run().retry() == n
else:
    raise SystemExit(f"unknown kind {kind!r}")
# Out without the interpreter's shutdown: its last garbage collections walk every object
# still alive, the kept run records among them, so the 2N process would pay more there
# than the N one for the records it keeps, not for its runs. Collections while the
# runs go on are counted.
sys.stdout.flush()
os._exit(0)
"""


def _child_env(home: str) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,  # with .pyc files written and read: compiling is no run's cost
        "KERNELFLOW_HOME": os.path.join(home, "kernelflow"),
        "KERNELFLOW_LOGGING_LEVEL": "WARNING",
        "PYTHONHASHSEED": "0",
        # The run history is written by its own thread, off the hot path, after the
        # flow; its cost is benchmarks/history.py's to measure, not a run's.
        "KERNELFLOW_HISTORY": "off",
    }


def count(kind: str, runs: int) -> int:
    """Instructions a fresh process doing ``runs`` runs of ``kind`` executes, in all threads."""
    with tempfile.TemporaryDirectory() as home:
        env = _child_env(home)
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={os.path.join(home, 'callgrind.out')}",
                sys.executable,
                "-c",
                _CHILD,
                kind,
                str(runs),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
    if done.returncode != 0:
        raise RuntimeError(f"{kind} under callgrind failed:\n{done.stderr[-3000:]}")
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{done.stderr[-3000:]}")
    return int(found.group(1))


def per_run(kind: str, runs: int) -> float:
    """Instructions of one run: the difference between ``2 * runs`` runs and ``runs``.

    A first run outside valgrind writes the ``.pyc`` files of whatever was edited since
    the last import: compiling a module costs millions of instructions, which would
    otherwise fall into one count of the pair and not the other.
    """
    _write_pyc_files(kind)
    return (count(kind, 2 * runs) - count(kind, runs)) / runs


def startup() -> tuple[int, int]:
    """Instructions of a new process that imports kernelflow and runs a first flow, and
    of one that only starts Python."""
    _write_pyc_files("startup")
    return count("startup", 1), count("bare", 0)


def _write_pyc_files(kind: str) -> None:
    with tempfile.TemporaryDirectory() as home:
        subprocess.run(
            [sys.executable, "-c", _CHILD, kind, "1"],
            capture_output=True,
            check=True,
            env=_child_env(home),
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="N (default 3000)")
    parser.add_argument("--only", default=",".join(KINDS), help="comma-separated kinds")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): no instruction counts.")
        return 0  # nothing measured is nothing over budget
    kinds = [kind.strip() for kind in args.only.split(",") if kind.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kind(s) {', '.join(sorted(unknown))}; choose from {KINDS}")
    figures = {kind: per_run(kind, args.runs) for kind in kinds if kind != "startup"}
    raw = figures.get("raw_tpe")
    if figures:
        print(f"instructions per run (callgrind, {args.runs} vs {2 * args.runs} runs):")
    within = True
    for kind, figure in figures.items():
        relative = f"{figure / raw:5.2f}x raw pool task" if raw else ""
        budget = BUDGETS.get(kind)
        verdict = ""
        if budget is not None:
            ok = figure <= budget
            within = within and ok
            verdict = f"budget <= {budget // 1000}k {'ok' if ok else 'OVER BUDGET'}"
        print(f"  {kind:<10} {figure / 1000:8.1f}k  {relative:<22} {verdict}")
    if "retried" in figures and "mapped" in figures:
        reused = figures["retried"] - figures["mapped"]
        print(f"  {'reused run':<10} {reused / 1000:8.1f}k  (retried less mapped)")
    if "startup" in kinds:
        started, bare = startup()
        print(
            f"start-up, import kernelflow + a first flow: {(started - bare) / 1e6:.1f}M"
            f" instructions (a new process that only starts Python: {bare / 1e6:.1f}M)"
        )
    return 0 if within else 1


if __name__ == "__main__":
    sys.exit(main())

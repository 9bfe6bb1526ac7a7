"""The quickstart flow: extract numbers, transform them concurrently, load a report.

Run it as a plain script: ``.venv/bin/python examples/quickstart.py`` (``make demo``
runs the notebook version, ``notebooks/01_quickstart.ipynb``). It shows the pieces every
later tutorial builds on: tasks called directly, submitted (futures), mapped, a retried
task, and the run record that ``kernelflow.last_run()`` keeps.
"""

import random
import time

import kernelflow
from kernelflow import flow, task, unmapped
from kernelflow.task_runners import ThreadPoolTaskRunner


@task
def extract(n: int) -> list[int]:
    return list(range(1, n + 1))


@task(retries=3, retry_delay_seconds=0.1)
def transform(x: int, factor: int) -> int:
    time.sleep(0.2)  # pretend to call a slow service...
    if random.random() < 0.2:  # ...that sometimes fails: retries absorb it
        raise ConnectionError("flaky service")
    return x * factor


@task(task_run_name="load-{label}")
def load(values: list[int], label: str) -> str:
    return f"{label}: {len(values)} values, total {sum(values)}"


@flow(task_runner=ThreadPoolTaskRunner(max_workers=4), log_prints=True)
def quickstart(n: int = 8, factor: int = 10) -> str:
    numbers = extract(n)  # a direct call: runs now, returns the value
    scaled = transform.map(numbers, unmapped(factor))  # one run per number, 4 at a time
    report = load.submit(scaled, label="report")  # a future; waits for the mapped runs
    print(report.result())
    return report.result()


if __name__ == "__main__":
    started = time.perf_counter()
    result = quickstart()
    elapsed = time.perf_counter() - started
    run = kernelflow.last_run()
    print(f"\nflow returned {result!r} in {elapsed:.2f}s")
    print(f"{run.name}: {run.state.name}, {len(run.task_runs)} task runs")
    for task_run in run.task_runs:
        retried = f" after {task_run.run_count - 1} retries" if task_run.run_count > 1 else ""
        print(f"  {task_run.name:<14} {task_run.state.name:<10} on {task_run.worker}{retried}")

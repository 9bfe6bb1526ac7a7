"""Per-task cost of ProcessPoolTaskRunner against a raw ProcessPoolExecutor, same run.

2,000 trivial tasks on 2 worker processes each way, both pools warm (started and used
once before timing). Budget (issue 7): kernelflow <= 1.5x raw per task.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, wait

os.environ.setdefault("KERNELFLOW_LOGGING_LEVEL", "WARNING")  # before kernelflow logs

from support.compare import compare  # noqa: E402

from kernelflow import flow, task  # noqa: E402
from kernelflow.task_runners import ProcessPoolTaskRunner  # noqa: E402

N = 2_000
WORKERS = 2
EXPECTED = list(range(1, N + 1))


def inc(x: int) -> int:
    return x + 1


inc_task = task(inc)


@flow(task_runner=ProcessPoolTaskRunner(max_workers=WORKERS))
def mapped(n: int) -> list[int]:
    return inc_task.map(range(n)).result()


def main() -> None:
    context = multiprocessing.get_context("spawn")  # what kernelflow's pool uses too
    with ProcessPoolExecutor(WORKERS, mp_context=context) as executor:

        def raw() -> None:
            futures = [executor.submit(inc, i) for i in range(N)]
            wait(futures)
            assert [f.result() for f in futures] == EXPECTED

        def ours() -> None:
            assert mapped(N) == EXPECTED

        raw()  # warm both pools
        mapped(50)
        compare(
            ("raw ProcessPoolExecutor", raw),
            ("ProcessPoolTaskRunner", ours),
            N,
            1.5,
            note=f", {WORKERS} worker processes",
        )


if __name__ == "__main__":
    main()

"""Per-task cost of DaskTaskRunner against raw ``client.map``, same cluster, same run.

2,000 trivial tasks on an embedded LocalCluster of 2 single-threaded worker processes,
warm (used once before timing), timed in adjacent pairs of alternating order
(support/pairs.py); the figure is the median of the pairs' ratios, since this machine's
raw ``client.map`` alone moves by a quarter from one run to the next. Budget (issue 7):
kernelflow <= 1.5x raw per task; the exit status is 1 when it is over.
"""

from __future__ import annotations

import os
import statistics
import sys

os.environ.setdefault("KERNELFLOW_LOGGING_LEVEL", "WARNING")  # before kernelflow logs

from support.compare import per_task  # noqa: E402
from support.load import OtherLoad  # noqa: E402
from support.pairs import alternating_pairs, pair_ratio  # noqa: E402

from kernelflow import flow, task  # noqa: E402
from kernelflow.task_runners import DaskTaskRunner  # noqa: E402

N = 2_000
PAIRS = 5
BUDGET = 1.5
EXPECTED = list(range(1, N + 1))
CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}


def inc(x: int) -> int:
    return x + 1


inc_task = task(inc)
runner = DaskTaskRunner(cluster_kwargs=CLUSTER)


@flow(task_runner=runner)
def mapped(n: int) -> list[int]:
    return inc_task.map(range(n)).result()


def main() -> int:
    mapped(50)  # starts the warm cluster
    client = runner.client  # the same cluster and client for the raw figure

    def raw() -> float:
        return per_task(lambda: client.gather(client.map(inc, range(N), pure=False)), N)

    def ours() -> float:
        return per_task(lambda: mapped(N), N)

    assert client.gather(client.map(inc, range(N), pure=False)) == EXPECTED
    assert mapped(N) == EXPECTED
    with OtherLoad() as load:
        pairs = alternating_pairs(ours, raw, PAIRS)
    ratio = pair_ratio(pairs.first, pairs.second)
    print(
        f"{N} trivial tasks, LocalCluster of 2 single-threaded workers; {PAIRS} alternating "
        f"pairs after a warm-up pair; medians; {load}"
    )
    print(f"raw client.map            {statistics.median(pairs.second) * 1e6:9.1f} us/task")
    print(f"DaskTaskRunner            {statistics.median(pairs.first) * 1e6:9.1f} us/task")
    verdict = "OK" if ratio.median <= BUDGET else "OVER"
    print(f"ratio: {ratio} (budget <= {BUDGET}x) -> {verdict}")
    return 0 if ratio.median <= BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())

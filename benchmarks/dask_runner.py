"""Per-task cost of DaskTaskRunner against raw ``client.map``, same cluster, same run.

2,000 trivial tasks on an embedded LocalCluster of 2 single-threaded worker processes,
warm (used once before timing). Budget (issue 7): kernelflow <= 1.5x raw per task.
"""

from __future__ import annotations

import os

os.environ.setdefault("KERNELFLOW_LOGGING_LEVEL", "WARNING")  # before kernelflow logs

from support.compare import compare  # noqa: E402

from kernelflow import flow, task  # noqa: E402
from kernelflow.task_runners import DaskTaskRunner  # noqa: E402

N = 2_000
EXPECTED = list(range(1, N + 1))
CLUSTER = {"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}


def inc(x: int) -> int:
    return x + 1


inc_task = task(inc)
runner = DaskTaskRunner(cluster_kwargs=CLUSTER)


@flow(task_runner=runner)
def mapped(n: int) -> list[int]:
    return inc_task.map(range(n)).result()


def main() -> None:
    mapped(50)  # starts the warm cluster
    client = runner.client  # the same cluster and client for the raw figure

    def raw() -> None:
        assert client.gather(client.map(inc, range(N), pure=False)) == EXPECTED

    def ours() -> None:
        assert mapped(N) == EXPECTED

    raw()
    compare(
        ("raw client.map", raw),
        ("DaskTaskRunner", ours),
        N,
        1.5,
        rounds=3,
        note=", LocalCluster of 2 single-threaded workers",
    )


if __name__ == "__main__":
    main()

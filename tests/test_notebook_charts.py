"""The timeline's lanes: overlapping runs get lanes of their own, sequential runs share one."""

import asyncio
import re
import time
import types

from kernelflow import flow, task
from kernelflow.notebook import _charts
from kernelflow.states import Completed


def _run(start, end, worker="kernelflow_0", name="t"):
    return types.SimpleNamespace(
        start_time=start, end_time=end, worker=worker, name=name, state=Completed()
    )


def _flow_run(task_runs):
    return types.SimpleNamespace(task_runs=task_runs, subflow_runs=[], name="r")


def _labels(svg):
    return re.findall(r'<text x="\d+" y="\d+" text-anchor="end">([^<]*)</text>', svg)


def test_overlapping_runs_get_a_lane_each_and_later_runs_reuse_the_lowest_free_lane():
    runs = [_run(0, 10), _run(1, 3), _run(2, 5), _run(4, 6), _run(11, 12)]
    lanes = _charts._lanes(runs, now=20)
    assert [[bar[:2] for bar in bars] for _, bars in lanes] == [
        [(0, 10), (11, 12)],  # lane 1: free again at 10
        [(1, 3), (4, 6)],  # lane 2: free at 3, so the run starting at 4 goes here
        [(2, 5)],
    ]
    assert [label for label, _ in lanes] == [
        "worker threads · 1", "worker threads · 2", "worker threads · 3"
    ]  # fmt: skip


def test_lanes_are_grouped_by_where_the_body_ran():
    runs = [
        _run(0, 1, "MainThread"),
        _run(0, 2, "process-11"),
        _run(0, 2, "process-12"),
        _run(1, 2, "ThreadPoolTaskRunner_3"),
    ]
    labels = [label for label, _ in _charts._lanes(runs, now=5)]
    assert sorted(labels) == ["main thread", "process-11", "process-12", "worker threads"]


@task
def step(x):
    time.sleep(0.002)
    return x + 1


@flow
def chain():
    x = 0
    for _ in range(15):
        x = step.submit(x).result()  # each on whichever pool thread is free
    return x


def test_a_chain_of_sequential_steps_draws_one_lane_not_a_staircase():
    import kernelflow

    assert chain() == 15
    run = kernelflow.last_run()
    assert len({tr.worker for tr in run.task_runs}) >= 1
    svg = _charts.timeline_svg(run)
    assert _labels(svg) == ["worker threads"]
    assert svg.count("<rect") == 15  # each step its own bar (2 ms is wide enough)


@task
async def wait_a_bit(i):
    await asyncio.sleep(0.2)
    return i


@flow
async def concurrent():
    return await asyncio.gather(*(wait_a_bit(i) for i in range(10)))


def test_concurrent_async_tasks_draw_one_lane_each_with_their_true_length():
    import kernelflow

    assert asyncio.run(concurrent()) == list(range(10))
    svg = _charts.timeline_svg(kernelflow.last_run())
    assert _labels(svg) == [f"main thread · {n}" for n in range(1, 11)]
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)"', svg)]
    assert len(widths) == 10 and min(widths) > 0.8 * _charts.WIDTH  # ~0.2 s each, side by side

"""Graphs that fit a cell: long chains run top to bottom, wide fan-outs left to right."""

from __future__ import annotations

import kernelflow
from kernelflow import flow, task
from kernelflow.viz._layout import MAX_RANKS_ACROSS, _rows, depth_and_breadth, ranks
from kernelflow.viz._picture import svg_size


def test_depth_and_breadth_of_chains_fans_and_odd_inputs():
    chain = [(f"n{i}", f"n{i + 1}") for i in range(14)]
    assert depth_and_breadth(chain) == (15, 1)
    fan_in = [(f"load{i}", "combine") for i in range(6)]
    assert depth_and_breadth(fan_in) == (2, 6)
    assert depth_and_breadth([]) == (0, 0)
    assert depth_and_breadth([("a", "b"), ("b", "a")]) == (0, 0)  # a cycle: flat, not a hang


def test_rows_hold_whole_ranks_up_to_the_width_of_a_cell():
    assert MAX_RANKS_ACROSS == 4
    chain = [(f"n{i}", f"n{i + 1}") for i in range(9)]
    assert _rows(ranks(chain)) == [
        [f"n{i}" for i in r] for r in ([0, 1, 2, 3], [4, 5, 6, 7], [8, 9])
    ]
    fan = [("a", f"m{i}") for i in range(6)] + [(f"m{i}", "z") for i in range(6)]
    assert [len(row) for row in _rows(ranks(fan))] == [1, 6, 1]  # a wide rank: its own row


@task
def step(x):
    return x + 1000  # a fresh int: lineage by identity links each step to the last


@flow
def fifteen_steps():
    x = 1000
    for _ in range(15):
        x = step(x)
    return x


@task
def load(i):
    return [i]


@task
def combine(values):
    return len(values)


@flow
def fan_in():
    return combine([load(i) for i in range(8)])


def test_a_15_step_chain_wraps_into_rows_and_fits_900_px_unscaled():
    fifteen_steps()
    graph = kernelflow.last_run().graph()
    assert graph.source.count(" -> ") - graph.source.count("style=invis") == 14
    assert graph.graph_attr["rankdir"] == "TB" and graph.source.count("rank=same") == 4
    width, height = svg_size(graph.pipe(format="svg", encoding="utf-8"))
    assert width <= 900  # shown at its natural size: text as legible as any graph's
    assert height < 450  # four rows, not fifteen


def test_a_15_step_plan_wraps_too_and_a_graph_with_subflows_runs_top_to_bottom():
    graph = fifteen_steps.visualize()
    assert graph.graph_attr["rankdir"] == "TB" and "rank=same" in graph.source

    @flow
    def nested():
        return fifteen_steps()

    nested()
    graph = kernelflow.last_run().graph()
    assert graph.graph_attr["rankdir"] == "TB" and "rank=same" not in graph.source


def test_a_fan_in_stays_left_to_right():
    fan_in()
    assert kernelflow.last_run().graph().graph_attr["rankdir"] == "LR"
    assert MAX_RANKS_ACROSS >= 3


@task
def small_step(x):
    return x + 1  # 1, 2, 3...: small ints, shared objects with no lineage


@task
def constant():
    return 7


@flow
def small_chain():
    x = 0
    for _ in range(15):
        x = small_step(x)
    constant()
    return small_step(7)  # 7 equals constant's result: maybe from there


def test_a_chain_of_small_values_draws_dotted_maybe_edges_never_counted_as_edges():
    small_chain()
    run = kernelflow.last_run()
    steps = [r for r in run.task_runs if r.task_name == "small_step"]
    const = next(r for r in run.task_runs if r.task_name == "constant")
    assert all(not r.upstream for r in run.task_runs)  # no sure edge: nothing traced
    assert not steps[0].possible_upstream  # 0 was never returned: no guess
    for before, after in zip(steps, steps[1:15], strict=False):
        assert after.possible_upstream == {"x": frozenset({before.id})}
    assert steps[15].possible_upstream == {"x": frozenset({const.id})}  # the latest 7
    graph = run.graph()
    assert graph.source.count("style=dotted") == 15
    assert "maybe from there" in graph.source and "rank=same" in graph.source  # rows, no grid

"""FlowRun.graph(): what ran, coloured by final state, with durations and a legend."""

from __future__ import annotations

import pytest

import kernelflow
import kernelflow.viz
from kernelflow import allow_failure, flow, task
from kernelflow._runs import FlowRun, TaskRun, set_state
from kernelflow.exceptions import UpstreamTaskError
from kernelflow.states import Cached, Cancelled, Completed, Crashed, Failed, Pending, Running
from kernelflow.viz._draw_run import CATEGORIES, category
from tests.viz.viz_dot import dot
from tests.viz.viz_examples import failed_then_retried, subflow_example


def fill(category_name: str) -> str:
    return CATEGORIES[category_name]["fillcolor"]


def test_state_categories():
    assert category(Completed(1)) == "completed"
    assert category(Cached(1)) == "cached"
    assert category(Cached(1, message="reused from load-0 of flow run etl-1")) == "reused"
    assert category(Failed(ValueError("x"))) == "failed"
    assert category(Failed(UpstreamTaskError("up"))) == "not run"
    assert category(Crashed(SystemExit())) == "crashed"
    assert category(Cancelled()) == "cancelled"
    assert category(Running()) == "running"


def failing_flow():
    """A flow whose returned future fails, with a run it skips and one that waits anyway."""

    @task
    def extract():
        return [1000, 2000, 3000]

    @task
    def explode(rows):
        raise ValueError("bad row")

    @task
    def report(value):
        return value

    @task
    def cleanup():
        return "done"

    @flow
    def failing():
        rows = extract()
        broken = explode.submit(rows)
        skipped = report.submit(broken)
        cleanup.submit(wait_for=[allow_failure(skipped)])
        return broken

    return failing


@pytest.mark.parametrize("attempt", range(5))  # it was a race: repeat to catch it
def test_returning_a_failed_future_does_not_cancel_the_other_runs(attempt):
    # Engine regression (found here): the body awaited the returned future, so the flow
    # failed before waiting for its other runs and the runner's exit cancelled them.
    with pytest.raises(ValueError, match="bad row"):
        failing_flow()()
    states = {run.name: run.state.name for run in kernelflow.last_run().task_runs}
    assert states == {
        "extract-0": "Completed",
        "explode-0": "Failed",
        "report-0": "Failed",
        "cleanup-0": "Completed",
    }


def test_every_final_state_has_its_colour_in_the_graph():
    # Run records built by hand, as the engine would leave them (states it reaches
    # only through caching, crashes or interrupts).
    @task
    def step():
        return None

    @flow
    def by_hand():
        return None

    flow_run = FlowRun(by_hand, "by-hand-1", {})
    states = {
        "done": Completed(1),
        "reused": Cached(1),
        "broke": Failed(ValueError("x")),
        "died": Crashed(SystemExit()),
        "stopped": Cancelled(),
        "skipped": Failed(UpstreamTaskError("up")),
        "going": Running(),
        "waiting": Pending(),
    }
    for name, state in states.items():
        run = TaskRun(step, name, {}, flow_run, frozenset(), {})
        if name in ("done", "broke", "died"):
            set_state(run, Running())  # these started before they ended (and get a duration)
        if name != "waiting":  # a new run is Pending already
            set_state(run, state)
        flow_run.task_runs.append(run)
    graph = dot(flow_run.graph())
    expected = {
        "done": "completed",
        "reused": "cached",
        "broke": "failed",
        "died": "crashed",
        "stopped": "cancelled",
        "skipped": "not run",
        "going": "running",
        "waiting": "pending",
    }
    for name, cat in expected.items():
        assert fill(cat) in graph.attrs[graph.id(name)], name
    assert graph.labels[graph.id("reused")].startswith("reused\nCached")
    assert "running (or paused)" in graph.attrs["legend"]  # shown only when something is
    assert "waiting to run" in graph.attrs["legend"]


def test_failed_run_graph_colours_edges_and_legend():
    failing = failing_flow()
    with pytest.raises(ValueError, match="bad row"):
        failing()
    run = kernelflow.last_run()
    graph = dot(run.graph())
    e, x = graph.id("extract-0"), graph.id("explode-0")
    r, c = graph.id("report-0"), graph.id("cleanup-0")
    assert fill("completed") in graph.attrs[e]
    assert fill("failed") in graph.attrs[x]
    assert fill("not run") in graph.attrs[r] and "dashed" in graph.attrs[r]
    assert graph.labels[r].endswith("not run")
    assert fill("completed") in graph.attrs[c]
    assert "Completed · " in graph.labels[e]  # with its duration
    assert graph.labels[e].endswith("ms") or graph.labels[e].endswith(" s")
    # extract's result went in by value; explode's as a future; report only by wait_for.
    assert graph.data_edges() == {(e, x), (x, r)}
    assert graph.wait_for_edges() == {(r, c)}
    assert f"{run.name}: Failed" in graph.source
    legend = graph.attrs["legend"]
    for meaning in ("completed", "failed", "not run"):  # the states that occur...
        assert meaning in legend
    for meaning in ("cached", "crashed", "cancelled"):  # ...and only those
        assert meaning not in legend


def test_a_retrys_graph_says_reused_where_its_header_does():
    _, result = failed_then_retried(lambda load: load.map(range(3)))
    assert result == 3
    graph = dot(kernelflow.last_run().graph())
    group = graph.id("load × 3")
    assert "3 reused" in graph.labels[group] and "cached" not in graph.labels[group]
    assert fill("reused") in graph.attrs[group]
    assert "reused by this retry" in graph.attrs["legend"]
    assert "cached" not in graph.attrs["legend"]


def test_an_all_completed_run_has_no_legend_and_a_title_only_when_asked():
    @task
    def step(x):
        return x

    @flow
    def fine():
        return step.map(range(3)).result()

    fine()
    run = kernelflow.last_run()
    assert "legend" not in run.graph().source
    assert f"{run.name}: Completed" in run.graph().source
    untitled = kernelflow.viz.run_graph(run, title=False).source
    assert f"{run.name}: Completed" not in untitled and "step × 3" in untitled


def test_mapped_runs_are_one_node_with_counts_or_expanded():
    @task
    def check(x):
        if x == 2:
            raise ValueError("two")
        return x

    @task
    def total(values):
        return len(values)

    @flow
    def mapped():
        futures = check.map([1, 2, 3, 4])
        total(allow_failure(futures))

    mapped()
    run = kernelflow.last_run()
    graph = dot(run.graph())
    group = graph.id("check × 4")
    assert "3 completed, 1 failed" in graph.labels[group]
    assert fill("failed") in graph.attrs[group] and "box3d" in graph.attrs[group]
    assert graph.named_edges() == {("check × 4", "total-0")}

    expanded = dot(run.graph(expand_maps=True))
    assert len([i for i in expanded.labels if i.startswith("r")]) == 5
    assert fill("failed") in expanded.attrs[expanded.id("check-1")]
    assert len(expanded.data_edges()) == 4
    assert 'label="check × 4"' in expanded.source  # the frame around the mapped runs
    assert "3-D box" in graph.attrs["legend"] and "3-D box" not in expanded.attrs["legend"]
    assert "wait_for" not in graph.attrs["legend"]  # notes only for what is drawn


def test_subflow_runs_are_clusters_with_edges_into_them(calls):
    subflow_example(calls)()
    run = kernelflow.last_run()
    graph = dot(run.graph())
    source = graph.source
    assert source.count("subgraph cluster_") == 2
    child_run, empty_run = run.subflow_runs
    assert f"subflow {child_run.name}: Completed" in source
    assert f"subflow {empty_run.name}: Completed" in source
    produce_id = graph.id("produce-0")
    inner_consume = next(i for i in graph.ids("consume-0") if f"\t\t{i} [" in source)
    into_cluster = {(t, h) for t, h, a in graph.edges if "lhead=" in a}
    assert (produce_id, inner_consume) in into_cluster  # the subflow's parameter came from it
    assert any(t == produce_id and h.endswith("_empty") for t, h in into_cluster)
    assert "(no task runs)" in source


def test_independent_runs_are_a_grid_in_the_order_they_ran(dot_binary):
    @task
    def stop(floor):
        return floor

    @flow
    def elevator():
        return [stop.submit(floor).result() for floor in range(10)]

    elevator()
    graph = kernelflow.last_run().graph()
    plain = graph.pipe(format="plain", encoding="utf-8")
    where = {}
    for line in plain.splitlines():
        parts = line.split()
        if parts[0] == "node":
            where[graph_label(parts)] = (float(parts[2]), float(parts[3]))
    # Four to a row, left to right; rows top to bottom (plain output's y grows upwards).
    assert where["stop-0"][0] < where["stop-1"][0] < where["stop-3"][0]
    assert where["stop-0"][1] == where["stop-3"][1] > where["stop-4"][1] > where["stop-8"][1]
    assert dot(graph).data_edges() == set()  # the grid's edges are invisible, not data


def graph_label(parts):
    """The first line of a node's label in Graphviz's plain output."""
    return " ".join(parts[6:]).split('"')[1].split("\\n")[0]


def test_a_task_result_mapped_over_draws_an_edge_even_of_small_ints():
    @task
    def ids() -> list[int]:
        return [1, 2, 3]  # small ints: shared objects, no trace of where they came from

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def doubled():
        return double.map(ids()).result()

    assert doubled() == [2, 4, 6]
    run = kernelflow.last_run()
    assert dot(run.graph()).named_edges() == {("ids-0", "double × 3")}
    producer = run.task_runs[0].id
    assert all(r.upstream == {"x": frozenset({producer})} for r in run.task_runs[1:])


def test_a_subflows_result_passed_to_a_task_draws_an_edge_from_the_subflow():
    @task
    def fetch() -> list[int]:
        return [1000, 2000]

    @flow
    def ingest() -> list[int]:
        return fetch()

    @task
    def report(values: list[int]) -> int:
        return sum(values)

    @flow
    def nightly() -> int:
        return report(ingest())

    assert nightly() == 3000
    run = kernelflow.last_run()
    (sub,) = run.subflow_runs
    assert run.task_runs[0].upstream == {"values": frozenset({sub.id})}
    graph = dot(run.graph())
    from_cluster = {(t, h) for t, h, a in graph.edges if "ltail=" in a}
    assert any(h == graph.id("report-0") for _, h in from_cluster), graph.source

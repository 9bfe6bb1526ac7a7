"""Flow.visualize(): lineage through derived values, maps, subflows, async, errors."""

from __future__ import annotations

import asyncio
import copy
import threading

import pytest

import kernelflow
from kernelflow import allow_failure, flow, quote, task
from kernelflow._context import visualize_tracker
from kernelflow.exceptions import MappingLengthMismatch, PlaceholderValueError
from tests.viz.viz_dot import dot
from tests.viz.viz_examples import subflow_example


@pytest.fixture
def etl_tasks(calls):
    @task(viz_return_value=[{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}])
    def extract(source: str):
        calls.append("extract")
        return []

    @task(task_run_name="clean-{row[id]}")
    def transform(row: dict):
        calls.append("transform")
        return row

    @task
    def load(rows: list):
        calls.append("load")

    return extract, transform, load


def test_etl_map_over_an_upstream_viz_return_value(etl_tasks, calls):
    extract, transform, load = etl_tasks

    @flow
    def etl(source: str = "db://orders"):
        rows = extract(source)
        cleaned = transform.map(rows)
        load(cleaned)

    graph = dot(etl.visualize())
    e, t, lo = graph.id("extract"), graph.id("transform"), graph.id("load")
    assert "× 4 runs" in graph.labels[t]
    assert graph.data_edges() == {("p_source", e), (e, t), (t, lo)}
    assert graph.labels["p_source"] == "source = 'db://orders'"
    assert calls == []

    expanded = dot(etl.visualize(expand_maps=True))
    names = [expanded.labels[f"{t}_{i}"] for i in range(4)]
    assert names == ["clean-1", "clean-2", "clean-3", "clean-4"]  # task_run_name formed
    assert {(e, f"{t}_{i}") for i in range(4)} | {(f"{t}_{i}", lo) for i in range(4)} <= (
        expanded.data_edges()
    )
    assert f"subgraph cluster_{t}" in expanded.source
    assert "mapped task: one node" in graph.attrs["legend"]
    assert "mapped task: one node" not in expanded.attrs["legend"]
    assert "purple frame" in expanded.attrs["legend"]
    assert "wait_for" not in graph.attrs["legend"]
    assert calls == []


def test_map_over_a_placeholder_without_viz_return_value_is_counted_as_unknown(calls):
    @task
    def fetch():
        calls.append("fetch")

    @task
    def double(x):
        calls.append("double")

    @task
    def total(xs):
        calls.append("total")

    @flow
    def pipeline():
        doubled = double.map(fetch())
        again = double.map(doubled)
        total(again)

    graph = dot(pipeline.visualize(expand_maps=True))  # unknown counts stay collapsed
    first, second = graph.ids("double")
    assert "× ? runs" in graph.labels[first] and "× ? runs" in graph.labels[second]
    assert graph.named_edges() == {("fetch", "double"), ("double", "double"), ("double", "total")}
    assert calls == []


def test_map_of_a_map_links_run_to_run_when_expanded(calls):
    @task
    def inc(x):
        calls.append(x)

    @flow
    def chain(xs):
        inc.map(inc.map(xs))

    graph = dot(chain.visualize([1, 2, 3], expand_maps=True))
    first, second = graph.source.split("subgraph ")[1:3]
    a, b = first.split()[0].removeprefix("cluster_"), second.split()[0].removeprefix("cluster_")
    assert {(f"{a}_{i}", f"{b}_{i}") for i in range(3)} == {
        (t, h) for t, h in graph.data_edges() if t.startswith(a) and h.startswith(b)
    }


def test_derived_values_keep_their_edges(calls):
    @task(viz_return_value={"rows": [10, 20], "meta": {"n": 2}})
    def load_table():
        calls.append("load_table")

    @task(viz_return_value=7)
    def count():
        calls.append("count")

    @task(viz_return_value="Hello")
    def greet():
        calls.append("greet")

    @task
    def use(*values):
        calls.append("use")

    @flow
    def derived():
        table, n, text = load_table(), count(), greet()
        use(table["rows"][0])  # indexing
        use(table["meta"]["n"] * 2 + n)  # arithmetic over two upstreams
        use(text.upper())  # attribute access and a method call
        use([x + 1 for x in table["rows"]])  # iteration, into a list
        use({"key": (n,)})  # inside a dict and a tuple
        use(-n, abs(n))  # unary operators
        use(f"{text}!")  # formatting gives a plain string: no edge (and no crash)

    graph = dot(derived.visualize())
    uses = graph.ids("use")
    edges = graph.named_edges()
    assert len(uses) == 7
    incoming = {u: {graph.labels[t] for t, h in graph.data_edges() if h == u} for u in uses}
    assert [sorted(incoming[u]) for u in uses] == [
        ["load_table"],
        ["count", "load_table"],
        ["greet"],
        ["load_table"],
        ["count"],
        ["count"],
        [],
    ]
    assert ("count", "use") in edges
    assert calls == []


def test_placeholders_behave_like_their_viz_return_value():
    seen = {}

    @task(viz_return_value=[3, 1, 2])
    def numbers():
        raise AssertionError("never runs")

    @flow
    def checks():
        values = numbers()
        seen["isinstance"] = isinstance(values, list)
        seen["len"] = len(values)
        seen["sorted"] = sorted(values)
        seen["branch"] = "big" if values[0] > 2 else "small"
        seen["range"] = list(range(values[1]))
        seen["in"] = 2 in values

    checks.visualize()
    assert seen == {
        "isinstance": True,
        "len": 3,
        "sorted": [1, 2, 3],
        "branch": "big",
        "range": [0],
        "in": True,
    }


def test_branching_on_an_unknown_value_names_the_task():
    @task
    def score():
        return 5

    @flow
    def decide():
        value = score()
        if value > 3:
            return "high"
        return "low"

    with pytest.raises(PlaceholderValueError) as caught:
        decide.visualize()
    message = str(caught.value)
    assert "task 'score'" in message
    assert "viz_return_value" in message
    assert "truth test" in message


@pytest.mark.parametrize("use", [len, list, int])
def test_other_uses_of_an_unknown_value_explain_themselves(use):
    @task
    def rows():
        return [1]

    @flow
    def needs_value():
        use(rows())

    with pytest.raises(PlaceholderValueError, match="task 'rows'.*viz_return_value"):
        needs_value.visualize()


def test_subflow_cluster_with_edges_in_and_out(calls):
    outer = subflow_example(calls)
    graph = dot(outer.visualize())
    source = graph.source
    assert source.count("subgraph cluster_") == 2
    inner_consume = [i for i in graph.ids("consume") if f"\t\t{i} [" in source]
    assert len(inner_consume) == 1
    edges = graph.data_edges()
    produce_id = graph.id("produce")
    assert (produce_id, inner_consume[0]) in edges  # into the subflow, to the task using it
    outer_consumes = [i for i in graph.ids("consume") if i not in inner_consume]
    assert (inner_consume[0], outer_consumes[0]) in edges  # out, from what it returned
    # A subflow whose result came from no task: the edge leaves the cluster as a whole.
    cluster_edges = [(t, h, a) for t, h, a in graph.edges if "ltail=" in a]
    assert len(cluster_edges) == 1 and cluster_edges[0][1] == outer_consumes[1]
    # Its input is used only by its own code: the edge goes to the cluster as a whole.
    into = [(t, h) for t, h, a in graph.edges if "lhead=" in a]
    assert into == [(produce_id, cluster_edges[0][0])]
    assert "(no task calls)" in source
    assert calls == []


def async_example(calls):
    """An async flow: async tasks awaited, mapped, gathered in an async subflow."""

    @task(viz_return_value=[1, 2, 3])
    async def fetch_all():
        calls.append("fetch")

    @task
    async def process(x):
        calls.append("process")

    @flow
    async def child(items):
        await asyncio.gather(*[process(i) for i in items])

    @flow
    async def main():
        items = await fetch_all()
        futures = process.map(items)
        first = await futures[0]
        await process(first)
        await child(items)

    return main


def assert_async_example_graph(graph):
    f = graph.id("fetch_all")
    assert "× 3 runs" in graph.labels[graph.ids("process")[0]]
    assert "subflow: child" in graph.source
    assert len(graph.ids("process")) == 1 + 1 + 3
    assert all(t == f or graph.labels[t].startswith("process") for t, _ in graph.data_edges())


def test_async_flow_with_async_tasks_and_async_subflow(calls):
    assert_async_example_graph(dot(async_example(calls).visualize()))
    assert calls == []


def test_async_flow_visualized_while_an_event_loop_runs(calls):
    # As in a notebook cell: sync code, with the kernel's loop running in this thread.
    async def cell():
        return async_example(calls).visualize()

    assert_async_example_graph(dot(asyncio.run(cell())))
    assert calls == []


def test_branching_on_a_parameter_not_given_says_to_pass_it():
    @flow
    def needs_n(n: int):
        return "many" if n > 3 else "few"

    with pytest.raises(PlaceholderValueError, match="parameter 'n'.*pass the parameter"):
        needs_n.visualize()
    needs_n.visualize(5)


def test_missing_parameters_are_drawn_as_unknown_inputs(calls):
    @task
    def show(x):
        calls.append(x)

    @flow
    def needs_args(a: int, b: str = "x"):
        show(a)
        show(b)

    graph = dot(needs_args.visualize())
    assert graph.labels["p_a"] == "a"
    assert graph.labels["p_b"] == "b = 'x'"
    assert calls == []


def test_allow_failure_and_quote(calls):
    @task(viz_return_value=1)
    def up():
        calls.append("up")

    @task
    def down(x):
        calls.append("down")

    @flow
    def annotated():
        down(allow_failure(up()))
        down(quote(up()))  # quoted values are passed untouched: no dependency

    graph = dot(annotated.visualize())
    first_up, second_up = graph.ids("up")
    first_down, second_down = graph.ids("down")
    assert graph.data_edges() == {(first_up, first_down)}


def test_return_state_gives_completed_states_that_keep_lineage(calls):
    @task(viz_return_value=2)
    def first():
        calls.append("first")

    @task
    def second(x):
        calls.append("second")

    @flow
    def sub():
        return first()

    @flow
    def with_states():
        state = first(return_state=True)
        if state.is_completed():
            second(state.result())
        submitted = first.submit(return_state=True)
        mapped = second.map([1, 2], return_state=True)
        assert [s.is_completed() for s in mapped] == [True, True]
        second(submitted.result())
        second(sub(return_state=True).result())

    graph = dot(with_states.visualize())
    assert len(graph.data_edges()) == 3
    assert {(graph.labels[t], graph.labels[h]) for t, h in graph.data_edges()} == {
        ("first", "second")
    }
    assert calls == []


def test_copies_delay_and_big_maps(calls):
    @task(viz_return_value={"rows": [1, 2]})
    def config():
        calls.append("config")

    @task(viz_return_value=list(range(150)))
    def many():
        calls.append("many")

    @task
    def use(x):
        calls.append("use")

    @flow
    def odd_uses():
        cfg = config()
        use(copy.deepcopy(cfg)["rows"])  # a copy keeps the lineage
        use(copy.copy(cfg))
        use.delay(cfg)  # a background run is traced too, not started
        use.map(many())

    graph = dot(odd_uses.visualize(expand_maps=True))
    assert len(graph.ids("use")) == 4  # 3 calls, and the map of 150 stays one node
    assert "× 150 runs" in graph.labels[graph.ids("use")[3]]
    assert len([t for t, h in graph.data_edges() if graph.labels[t] == "config"]) == 3
    assert calls == []


def test_map_length_mismatch_is_reported_as_when_running():
    @task
    def pair(a, b):
        return a, b

    @flow
    def bad():
        pair.map([1, 2], [1, 2, 3])

    with pytest.raises(MappingLengthMismatch):
        bad.visualize()


def test_the_tracker_is_a_context_variable_and_is_cleared(calls):
    @task
    def work():
        calls.append(threading.current_thread().name)
        return 1

    seen = []

    @flow
    def traced():
        thread = threading.Thread(target=lambda: seen.append(visualize_tracker.get()))
        thread.start()
        thread.join()
        work()

    traced.visualize()
    assert seen == [None]  # another thread does not see this trace
    assert visualize_tracker.get() is None
    assert calls == []

    @flow
    def real():
        return work()

    assert real() == 1  # and afterwards tasks run for real
    assert len(calls) == 1


def test_a_flow_parameter_named_expand_maps_gets_the_value(calls):
    @task
    def echo(x):
        calls.append(x)

    @flow
    def odd(expand_maps: bool = False):
        echo.map([1, 2]) if expand_maps else echo(0)

    assert "× 2 runs" in odd.visualize(expand_maps=True).source
    assert "× 2" not in odd.visualize().source


def test_visualize_is_available_without_importing_the_viz_package_first():
    assert callable(kernelflow.Flow.visualize)
    assert callable(kernelflow.FlowRun.graph)

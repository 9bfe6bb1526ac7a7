"""Assets: @materialize and asset_deps, checked at decoration time, recorded per flow
run on every runner, listed by kernelflow.assets(), and drawn in both graphs."""

from __future__ import annotations

import pytest

import kernelflow
from kernelflow import Asset, flow, materialize, task
from kernelflow.exceptions import InvalidOptionError
from kernelflow.tasks import MaterializingTask
from tests.test_task_runners import RUNNERS, _close_backends, make_runner  # noqa: F401
from tests.viz.conftest import dot_binary  # noqa: F401
from tests.viz.viz_dot import dot

RAW, CLEAN, LOOKUP = "file://data/raw.csv", "file://data/clean.parquet", "postgres://db/lookup"


@materialize(RAW)
def extract(n: int) -> list[int]:
    return list(range(n))


@materialize(Asset(CLEAN), materialized_by="pandas")
def transform(rows: list[int]) -> list[int]:
    if not rows:
        raise ValueError("nothing to clean")
    return [row * 2 for row in rows]


@task(asset_deps=[CLEAN, Asset(LOOKUP)])
def load() -> str:
    return "loaded"


@flow
def etl(n: int = 3) -> str:
    clean = transform(extract(n))  # transform reads what extract made (inferred)
    return load(wait_for=[clean])


def events(flow_run) -> set[tuple[str, str, str]]:
    return {(e.task_run_name, e.kind, e.key) for e in flow_run.asset_events}


ETL_EVENTS = {
    ("extract-0", "materialized", RAW),
    ("transform-0", "read", RAW),
    ("transform-0", "materialized", CLEAN),
    ("load-0", "read", CLEAN),
    ("load-0", "read", LOOKUP),
}


# --- decoration time ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, option",
    [
        (lambda: task(asset_deps=["data/raw.csv"])(len), "asset_deps"),
        (lambda: task(asset_deps="file://one.csv")(len), "asset_deps"),
        (lambda: task(asset_deps=[3])(len), "asset_deps"),
        (lambda: materialize("s3://bucket/with space"), "assets"),
        (lambda: materialize('file://"quoted"'), "assets"),
        (lambda: materialize(), "assets"),
        (lambda: materialize(len), "materialize"),
        (lambda: Asset("no-scheme"), "Asset.key"),
    ],
)
def test_bad_asset_keys_fail_at_decoration_time_naming_the_option(make, option):
    with pytest.raises(InvalidOptionError, match=rf"{option}=.*(URI|asset key)"):
        make()


def test_materialize_makes_a_materializing_task_that_keeps_its_assets_through_with_options():
    assert isinstance(transform, MaterializingTask) and isinstance(transform, kernelflow.Task)
    assert transform.assets == [Asset(CLEAN)] and transform.materialized_by == "pandas"
    renamed = transform.with_options(name="clean_v2", retries=1)
    assert isinstance(renamed, MaterializingTask)
    assert (renamed.name, renamed.assets, renamed.materialized_by) == (
        "clean_v2",
        [Asset(CLEAN)],
        "pandas",
    )
    assert renamed.with_options(assets=[RAW]).assets == [Asset(RAW)]
    assert materialize(RAW, by="dbt")(len).materialized_by == "dbt"  # Prefect's spelling
    assert load.asset_deps == [Asset(CLEAN), Asset(LOOKUP)]


# --- records --------------------------------------------------------------------------


def test_a_flow_run_records_what_each_task_read_and_materialized():
    assert etl() == "loaded"
    run = kernelflow.last_run()
    assert events(run) == ETL_EVENTS
    made = {e.key: e for e in run.asset_events if e.kind == "materialized"}
    assert made[CLEAN].materialized_by == "pandas" and made[RAW].materialized_by is None

    latest = {e.key: e for e in kernelflow.assets()}
    assert latest[CLEAN].task_run_name == "transform-0"
    assert latest[CLEAN].flow_run_name == run.name and latest[CLEAN].flow_run_id == run.id
    assert latest[CLEAN].task_run_id == run.task_runs[1].id
    assert LOOKUP not in latest  # only read, never materialized

    table = kernelflow.assets()._repr_html_()  # a notebook shows a table
    assert "<td>file://data/clean.parquet</td><td>transform-0</td>" in table

    etl()  # a newer run replaces each asset's latest materialization
    assert {e.key: e for e in kernelflow.assets()}[CLEAN].flow_run_id == kernelflow.last_run().id


def test_a_failed_run_reads_but_materializes_nothing_and_a_run_never_started_reads_nothing():
    before = {e.key: e for e in kernelflow.assets()}
    with pytest.raises(ValueError, match="nothing to clean"):
        etl(0)
    run = kernelflow.last_run()
    assert events(run) == {("extract-0", "materialized", RAW), ("transform-0", "read", RAW)}
    assert {e.key: e for e in kernelflow.assets()}.get(CLEAN) == before.get(CLEAN)

    graph = dot(run.graph())
    asset = graph.id(CLEAN)
    dashed = [(t, h, a) for t, h, a in graph.edges if h == asset]
    assert len(dashed) == 1 and "not materialized" in dashed[0][2]


def test_a_materialization_rolled_back_by_its_transaction_is_not_the_latest():
    @flow
    def rolled_back():
        with kernelflow.transaction():
            transform([1])
            raise KeyError("undo it")

    etl()
    before = {e.key: e for e in kernelflow.assets()}[CLEAN]
    with pytest.raises(KeyError):
        rolled_back()
    assert ("transform-0", "materialized", CLEAN) in events(kernelflow.last_run())  # it ran
    assert {e.key: e for e in kernelflow.assets()}[CLEAN] == before


# --- graphs ---------------------------------------------------------------------------


def assert_assets_between_the_tasks(graph, extract_label, transform_label, load_label):
    for key in (RAW, CLEAN, LOOKUP):
        assert "shape=cylinder" in graph.attrs[graph.id(key)]
    assert {
        (extract_label, RAW),
        (RAW, transform_label),
        (transform_label, CLEAN),
        (CLEAN, load_label),
        (LOOKUP, load_label),
    } <= graph.named_edges()
    assert "asset (cylinder)" in graph.labels["legend"]


def test_the_executed_run_graph_draws_assets_between_the_tasks():
    etl()
    graph = dot(kernelflow.last_run().graph())
    assert_assets_between_the_tasks(graph, "extract-0", "transform-0", "load-0")
    tooltip = graph.attrs[graph.id(CLEAN)]  # who made it, with what, and who read it
    assert "materialized by transform-0 with pandas at" in tooltip and "read by load-0" in tooltip


def test_visualize_draws_the_planned_assets_without_running_anything():
    graph = dot(etl.visualize())
    assert_assets_between_the_tasks(graph, "extract", "transform", "load")


def test_visualize_links_every_run_of_a_mapped_materializing_task(dot_binary):  # noqa: F811
    @materialize("s3://bucket/parts")
    def part(i: int) -> int:
        return i

    @flow
    def parts():
        return load(wait_for=part.map(range(3)))

    collapsed = dot(parts.visualize())
    assert ("part", "s3://bucket/parts") in collapsed.named_edges()
    expanded = parts.visualize(expand_maps=True)
    asset = dot(expanded).id("s3://bucket/parts")
    assert sum(head == asset for _, head, _ in dot(expanded).edges) == 3
    assert expanded.pipe(format="svg").startswith(b"<")  # the real dot lays it out


# --- runners --------------------------------------------------------------------------


def test_assets_are_recorded_and_drawn_on_every_runner(make_runner):  # noqa: F811
    @flow(task_runner=make_runner())
    def submitted_etl() -> str:
        clean = transform.submit(extract.submit(3))
        return load.submit(wait_for=[clean]).result()

    assert submitted_etl() == "loaded"
    run = kernelflow.last_run()
    assert events(run) == ETL_EVENTS
    assert_assets_between_the_tasks(dot(run.graph()), "extract-0", "transform-0", "load-0")

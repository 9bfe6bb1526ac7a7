"""Flow attributes ported code reads: parameters (JSON schema), generate_mermaid_graph(),
visualize() in a script, generator flows; runtime.deployment and a lazy kernelflow.runtime."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pydantic
import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.utilities.callables import parameter_schema


class Window(pydantic.BaseModel):
    days: int = 7


@task
def extract() -> int:
    return 1


@task
def transform(x: int) -> int:
    return x


@flow
def child(y: int) -> int:
    return transform(y)


@flow
def etl(source: str, limit: int = 10, window: Window = Window()) -> None:
    """Move rows.

    Args:
        source: Where the rows come from,
            a table name.
        limit: How many rows at most.
    """
    raw = extract()
    cleaned = transform(raw)
    transform.submit(cleaned, wait_for=[raw])
    transform.map([cleaned, 2])
    child(cleaned)


def test_parameters_are_a_json_schema_in_prefects_layout():
    schema = etl.parameters
    assert isinstance(schema, pydantic.BaseModel)
    assert schema.required == ["source"]
    assert schema.properties["source"] == {
        "title": "source",
        "type": "string",
        "description": "Where the rows come from, a table name.",
        "position": 0,
    }
    assert schema.properties["limit"]["default"] == 10
    assert schema.properties["window"]["$ref"] == "#/definitions/Window"
    assert schema.definitions["Window"]["properties"]["days"]["default"] == 7
    assert schema.model_dump_for_openapi()["title"] == "Parameters"
    assert "properties" in schema.model_json_schema()["properties"]
    assert parameter_schema(etl) == schema


def test_generate_mermaid_graph_draws_task_runs_and_their_edges():
    text = etl.generate_mermaid_graph("db")
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    for node in (
        'extract_0["extract-0"]',
        'transform_0["transform-0"]',
        'transform_3["transform-3"]',
    ):
        assert f"    {node}" in lines
    assert 'subgraph cluster_s4["child"]' in text and '        transform_4["transform-4"]' in lines
    for edge in (
        "extract_0 --> transform_0",  # an argument
        "extract_0 --> transform_1",  # wait_for
        "transform_0 --> transform_2",  # into one mapped run
        "transform_0 --> cluster_s4",  # into the subflow
    ):
        assert f"    {edge}" in lines
    assert "transform_0 --> transform_3" not in text  # that mapped run got a plain 2


def test_visualize_in_a_script_writes_an_svg_and_says_where(kf_logs, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger="kernelflow")  # as kernelflow sets it in a script
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    graph = etl.visualize("db")
    path = os.path.join(os.environ["KERNELFLOW_HOME"], "graphs", "etl.svg")
    with open(path, encoding="utf-8") as svg:
        assert "<svg" in svg.read()
    assert [r.getMessage() for r in kf_logs] == [f"Graph of flow 'etl' written to {path}"]
    assert "extract" in graph.source


def test_visualize_in_a_notebook_writes_no_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", sys)  # any module: "a kernel runs us"
    etl.visualize("db")
    assert not os.path.exists(os.path.join(os.environ["KERNELFLOW_HOME"], "graphs"))


def test_a_generator_flow_returns_a_generator_fed_by_the_run():
    seen = []

    @flow
    def numbers(n: int):
        for i in range(n):
            seen.append(("made", i))
            yield i

    stream = numbers(3)
    assert not seen  # nothing runs before the caller iterates
    for item in stream:
        seen.append(("got", item))
    assert seen == [("made", 0), ("got", 0), ("made", 1), ("got", 1), ("made", 2), ("got", 2)]
    assert kernelflow.last_run().state.is_completed()
    assert numbers(2, return_state=True).result() == [0, 1]


def test_a_generator_flow_raises_after_its_items_and_retries():
    attempts = []

    @flow(retries=1)
    def flaky():
        attempts.append(1)
        yield len(attempts)
        if len(attempts) == 1:
            raise ValueError("first attempt")

    assert list(flaky()) == [1, 2]  # the retry yields again, as in Prefect

    @flow
    def broken():
        yield 1
        raise ValueError("boom")

    items = []
    with pytest.raises(ValueError, match="boom"):
        for item in broken():
            items.append(item)
    assert items == [1]


def test_runtime_deployment_is_empty_outside_a_deployment():
    from kernelflow.runtime import deployment

    assert (deployment.id, deployment.name, deployment.version) == (None, None, None)
    assert deployment.flow_run_id is None and deployment.parameters == {}


def test_runtime_ids_of_parent_and_root_flow_runs():
    from kernelflow import runtime

    @task
    def where() -> tuple:
        return runtime.task_run.root_flow_run_id, runtime.flow_run.parent_flow_run_id

    @flow
    def inner() -> tuple:
        return where()

    @flow
    def outer() -> tuple:
        return inner(), runtime.flow_run.id

    (root_seen, parent_seen), outer_id = outer()
    assert root_seen == parent_seen == outer_id
    assert runtime.flow_run.root_flow_run_id is None and runtime.task_run.run_count == 0


def test_kernelflow_runtime_loads_on_first_access():
    code = (
        "import sys, kernelflow\n"
        "assert 'kernelflow.runtime' not in sys.modules\n"
        "print(kernelflow.runtime.flow_run.name, kernelflow.runtime.deployment.name)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None None"

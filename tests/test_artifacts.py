"""Artifacts: published by runs, kept with their run records, shown as markdown."""

from __future__ import annotations

import uuid

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.artifacts import (
    Artifact,
    artifacts_of,
    create_image_artifact,
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from kernelflow.exceptions import InvalidOptionError


def test_artifacts_are_kept_with_the_run_that_made_them():
    @task
    def report(rows):
        create_table_artifact(rows, key="rows", description="loaded")
        return create_progress_artifact(10)

    @flow
    def pipeline():
        progress = report([{"a": 1}, {"b": 2}])
        update_progress_artifact(progress, 100, description="done")
        create_markdown_artifact("# Summary", key="summary")
        create_link_artifact("https://example.org", link_text="docs")

    pipeline()
    run = kernelflow.last_run()
    found = artifacts_of(run)
    assert [a.type for a in found] == ["table", "progress", "markdown", "link"]
    (task_run,) = run.task_runs
    assert [a.type for a in artifacts_of(task_run)] == ["table", "progress"]
    assert all(a.flow_run_id == run.id for a in found)
    assert found[0].task_run_id == task_run.id and found[2].task_run_id is None
    assert artifacts_of(run, include_task_runs=False)[0].type == "markdown"
    assert found[1].data == 100.0 and found[1].description == "done"
    assert Artifact.get("summary") is found[2]


def test_artifacts_display_as_markdown():
    create_table_artifact({"name": ["a", "b"], "n": [1]}, key="t")
    create_image_artifact("https://example.org/x.png", key="img")
    table, image = artifacts_of(None)[-2:]
    assert "| name | n |" in table._repr_markdown_() and "| b |  |" in table._repr_markdown_()
    assert image._repr_markdown_().endswith("![img](https://example.org/x.png)")
    rows = create_table_artifact([[1, 2], [3]])
    assert "| 3 |  |" in artifacts_of(None)[-1]._repr_markdown_()
    assert isinstance(rows, uuid.UUID)


@pytest.mark.parametrize(
    "make",
    [
        lambda: create_markdown_artifact("x", key="Bad Key"),
        lambda: create_progress_artifact(101),
        lambda: create_progress_artifact(float("nan")),
        lambda: create_table_artifact(5),
    ],
)
def test_bad_artifacts_are_refused_with_a_message(make):
    with pytest.raises(InvalidOptionError):
        make()


def test_updating_something_that_is_not_a_progress_artifact_fails():
    markdown = create_markdown_artifact("x")
    with pytest.raises(ValueError, match="not a progress one"):
        update_progress_artifact(markdown, 5)
    with pytest.raises(ValueError, match="No artifact"):
        update_progress_artifact(uuid.uuid4(), 5)

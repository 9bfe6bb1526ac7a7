"""kernelflow.context: TagsContext, get_run_context, and with_context across processes."""

from __future__ import annotations

import multiprocessing

import pytest

from kernelflow import flow, tags, task
from kernelflow.context import TagsContext, get_run_context, with_context
from kernelflow.exceptions import MissingContextError
from kernelflow.logging import get_run_logger
from kernelflow.runtime import task_run


def test_tags_context_gives_the_tags_in_force():
    assert TagsContext.get().current_tags == set()
    with tags("a"), tags("b"):
        assert TagsContext.get().current_tags == {"a", "b"}


def test_get_run_context_outside_a_run_raises():
    with pytest.raises(MissingContextError, match="inside a flow or task run"):
        get_run_context()


def _who_am_i(item: int) -> tuple[int, str | None, str | None, list[str]]:
    logger = get_run_logger()
    logger.info("working on %s", item)
    return item, task_run.name, logger.extra.get("task_run_name"), task_run.tags


def test_with_context_carries_the_run_into_a_spawned_pool():
    @task(tags=["batch"])
    def fan_out() -> list:
        # spawn: a fresh interpreter, so nothing is inherited by forking
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            return pool.map(with_context(_who_am_i), [1, 2])

    @flow
    def pipeline() -> list:
        return fan_out()

    results = pipeline()
    assert [item for item, *_ in results] == [1, 2]
    for _, runtime_name, logger_name, run_tags in results:
        assert runtime_name == logger_name == "fan_out-0"
        assert run_tags == ["batch"]


def test_without_with_context_a_spawned_pool_sees_no_run():
    @task
    def fan_out() -> list:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.map(_who_am_i, [1])

    @flow
    def pipeline() -> list:
        return fan_out()

    [(_, runtime_name, logger_name, _)] = pipeline()
    assert runtime_name is None and logger_name is None

"""Futures inside dataclasses and pydantic models reach tasks as values (as in Prefect),
and resolve_futures_to_states/results swap futures in any structure."""

from __future__ import annotations

from dataclasses import dataclass, field

import pydantic
import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow.futures import resolve_futures_to_results, resolve_futures_to_states
from kernelflow.states import State


@dataclass(frozen=True)
class Settings:
    rows: object
    label: str = "x"
    derived: int = field(init=False, default=0)


class Batch(pydantic.BaseModel):
    size: int
    items: list = []


@task
def produce(x: int) -> int:
    return x * 10


@task
def consume(settings: Settings, batch: Batch) -> tuple:
    return settings.rows, settings.label, batch.items, batch.size


def test_futures_inside_a_dataclass_and_a_model_are_resolved_and_are_edges():
    @flow
    def pipeline() -> tuple:
        first, second = produce.submit(1), produce.submit(2)
        return consume(Settings(rows=first, label="l"), Batch(size=2, items=[second, 3]))

    assert pipeline() == (10, "l", [20, 3], 2)
    run = kernelflow.last_run()
    consumer = next(r for r in run.task_runs if r.task_name == "consume")
    producers = {r.id for r in run.task_runs if r.task_name == "produce"}
    assert consumer.upstream_ids == producers  # both futures are upstream edges


def test_a_failed_future_in_a_dataclass_stops_the_downstream_run():
    @task
    def broken() -> int:
        raise ValueError("no rows")

    @flow
    def pipeline() -> tuple:
        return consume(Settings(rows=broken.submit()), Batch(size=1))

    state = pipeline(return_state=True)
    assert state.is_failed() and "no rows" in state.message


def test_objects_without_futures_are_passed_as_they_are():
    settings, batch = Settings(rows=[1]), Batch(size=1)

    @task
    def same(s: Settings, b: Batch) -> bool:
        return s is settings and b is batch

    @flow
    def pipeline() -> bool:
        return same(settings, batch)

    assert pipeline()


def test_resolve_futures_to_states_and_results_keep_the_structure():
    @flow
    def pipeline() -> tuple:
        futures = produce.map([1, 2])
        expr = {"list": futures, "settings": Settings(rows=futures[0]), futures[1]: "key"}
        return resolve_futures_to_states(expr), resolve_futures_to_results(expr), futures

    states, results, futures = pipeline()
    assert all(isinstance(s, State) and s.is_completed() for s in states["list"])
    assert type(states["list"]) is list  # a list of futures comes back a plain list
    assert states["settings"].rows.result() == 10
    assert results == {"list": [10, 20], "settings": Settings(rows=10), 20: "key"}
    unchanged = [1, (2, 3), {"a": 4}]
    assert resolve_futures_to_results(unchanged) is unchanged


def test_resolve_futures_to_results_raises_the_failed_runs_error():
    @task
    def broken() -> int:
        raise ValueError("boom")

    @flow
    def pipeline() -> None:
        resolve_futures_to_results([broken.submit()])

    with pytest.raises(ValueError, match="boom"):
        pipeline()


def test_a_run_context_passed_to_a_task_is_not_looked_into():
    # FlowRunContext is a dataclass holding every future of the flow run; walking it
    # would make the task wait for itself.
    from kernelflow.context import FlowRunContext, get_run_context

    @task
    def name_of(ctx: FlowRunContext) -> str:
        return ctx.flow_run.name

    @flow
    def pipeline() -> str:
        produce.submit(1)
        return name_of.submit(get_run_context()).result(timeout=10)

    assert pipeline() == kernelflow.last_run().name

"""A flow's retry reuses its subflow runs that completed in an earlier attempt (Prefect)."""

from __future__ import annotations

import asyncio

import kernelflow
from kernelflow import flow


def test_a_retry_reuses_a_completed_subflow_and_reruns_a_failed_one():
    calls = []

    @flow
    def child(name: str) -> str:
        calls.append(name)
        if name == "flaky" and calls.count("flaky") == 1:
            raise ValueError("first time")
        return f"hello {name}"

    attempts = []

    @flow(retries=2)
    def parent() -> list:
        attempts.append(1)
        first = child("steady")
        second = child("flaky")
        third = child("steady") if len(attempts) > 1 else None  # a new call: index 1
        return [first, second, third]

    assert parent() == ["hello steady", "hello flaky", "hello steady"]
    # steady ran once for call 0 (reused on the retry), flaky failed then ran again,
    # and the retry's second steady call had no earlier twin, so it ran.
    assert calls == ["steady", "flaky", "flaky", "steady"]
    run = kernelflow.last_run()
    assert [r.state.name for r in run.subflow_runs] == [
        "Completed",
        "Failed",
        "Completed",
        "Completed",
    ]


def test_other_parameters_run_the_subflow_again():
    calls = []

    @flow
    def child(x: int) -> int:
        calls.append(x)
        return x

    attempts = []

    @flow(retries=1)
    def parent() -> int:
        attempts.append(1)
        value = child(len(attempts))
        if len(attempts) == 1:
            raise ValueError("retry me")
        return value

    assert parent() == 2
    assert calls == [1, 2]


def test_without_retries_every_call_runs():
    calls = []

    @flow
    def child() -> int:
        calls.append(1)
        return 1

    @flow
    def parent() -> int:
        return child() + child()

    assert parent() == 2 and len(calls) == 2


def test_an_async_subflow_is_reused_too():
    calls = []

    @flow
    async def child() -> str:
        calls.append(1)
        return "done"

    attempts = []

    @flow(retries=1)
    async def parent() -> str:
        attempts.append(1)
        value = await child()
        if len(attempts) == 1:
            raise ValueError("retry me")
        return value

    assert asyncio.run(parent()) == "done"
    assert len(calls) == 1 and len(attempts) == 2

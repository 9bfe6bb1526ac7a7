"""kernelflow.input.RunInput: the model a paused flow run waits for."""

from __future__ import annotations

import threading
import time

import pydantic
import pytest

import kernelflow
from kernelflow import flow
from kernelflow.input import RunInput


class Approval(RunInput):
    approved: bool
    reviewer: str = "nobody"


def test_with_initial_data_makes_a_subclass_with_defaults():
    prefilled = Approval.with_initial_data(description="Ship it?", reviewer="ada", note="x")
    assert issubclass(prefilled, Approval)
    assert prefilled(approved=True).reviewer == "ada"
    assert prefilled(approved=True).note == "x"  # a new field, typed as its value
    assert prefilled.description() == "Ship it?" and Approval.description() is None
    with pytest.raises(pydantic.ValidationError):
        prefilled(approved=True, unknown=1)  # unknown fields are refused


def test_pause_waits_for_a_run_input_and_returns_it():
    @flow
    def release() -> str:
        answer = kernelflow.pause_flow_run(
            wait_for_input=Approval.with_initial_data(reviewer="ada"), timeout=30
        )
        return f"{answer.approved} by {answer.reviewer}"

    def resume_when_paused() -> None:
        for _ in range(300):
            paused = kernelflow.paused_runs()
            if paused:
                kernelflow.resume_flow_run(paused[0].id, run_input={"approved": True})
                return
            time.sleep(0.01)

    resumer = threading.Thread(target=resume_when_paused)
    resumer.start()
    assert release() == "True by ada"
    resumer.join()

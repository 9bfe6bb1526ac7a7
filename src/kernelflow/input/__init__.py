"""Typed input for paused flow runs (``prefect.input``).

Subclass ``RunInput`` with the fields to ask for, and pass it to
``pause_flow_run(wait_for_input=...)``; ``resume_flow_run(run_id, run_input={...})``
must then give values that validate against it, and the pause returns the instance::

    class Approval(RunInput):
        approved: bool
        reviewer: str

    answer = pause_flow_run(wait_for_input=Approval.with_initial_data(reviewer="ada"))
"""

from __future__ import annotations

from kernelflow.input.run_input import RunInput

__all__ = ["RunInput"]

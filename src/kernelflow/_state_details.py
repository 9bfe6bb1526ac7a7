"""``StateDetails``: the ids of the task run and flow run a state belongs to.

``kernelflow._state_owners`` finds them (it searches runs, which sit above states).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import uuid


@dataclass(frozen=True)
class StateDetails:
    """The runs a state belongs to (Prefect's ``StateDetails``, its run-id fields).

    Attributes:
        flow_run_id: The flow run: the state's own for a flow run's state, the
            enclosing one for a task run's (None for a task run outside any flow).
        task_run_id: The task run whose state it is (None for a flow run's state).
        child_flow_run_id: Prefect sets it on the state of the task run that stands for
            a subflow; kernelflow has no such task run, so it is always None.
    """

    flow_run_id: uuid.UUID | None = None
    task_run_id: uuid.UUID | None = None
    child_flow_run_id: uuid.UUID | None = None


NO_DETAILS = StateDetails()

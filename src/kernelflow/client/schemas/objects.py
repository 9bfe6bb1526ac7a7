"""Run and state types under Prefect's ``prefect.client.schemas.objects`` path.

Ported code uses these names in annotations, above all in state-change hooks::

    def on_failure(flow: Flow, flow_run: FlowRun, state: State) -> None: ...

Here they are kernelflow's run records (``kernelflow.FlowRun``, ``kernelflow.TaskRun``,
what hooks receive) and state types, not Prefect's server schemas: they have the
fields those records have (``id``, ``name``, ``parameters``, ``tags``, ``state``, ...).
"""

from __future__ import annotations

from kernelflow._runs import FlowRun, TaskRun
from kernelflow._state_details import StateDetails
from kernelflow.states import State, StateType

__all__ = ["FlowRun", "State", "StateDetails", "StateType", "TaskRun"]

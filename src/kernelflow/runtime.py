"""What the code of a running task or flow can know about its own run.

``from kernelflow.runtime import task_run, flow_run``; then ``task_run.name``,
``task_run.id``, ``task_run.parameters`` (and the same on ``flow_run``), plus
``task_run.task_name`` and ``flow_run.flow_name``, describe the run the calling code is
in, or are None outside one (``parameters`` ``{}``, ``tags`` ``[]``, ``run_count`` 0), as
Prefect's. ``deployment`` is there too: kernelflow runs no deployments, so its
attributes are what Prefect gives outside one (None, and ``{}`` for ``parameters``).
``api_url`` and ``ui_url`` are None: there is no server.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

from kernelflow._context import flow_run_context, task_run_context

__all__ = ["deployment", "flow_run", "task_run"]


class _CurrentRun:
    """A live view of the current task run or flow run, read from the run context."""

    def __init__(self, kind: str) -> None:
        self._kind = kind

    def _record(self) -> Any:
        task_ctx = task_run_context.get()
        if self._kind == "task":
            return task_ctx.task_run if task_ctx else None
        flow_ctx = flow_run_context.get()
        if flow_ctx is not None:
            return flow_ctx.flow_run
        # In a worker process there is no flow context, only the task run, which knows
        # its flow run.
        return getattr(task_ctx.task_run, "flow_run", None) if task_ctx else None

    @property
    def id(self) -> str | None:
        record = self._record()
        return str(record.id) if record else None

    @property
    def name(self) -> str | None:
        record = self._record()
        return record.name if record else None

    @property
    def task_name(self) -> str | None:
        """The name of the current run's task (on ``task_run``; None on ``flow_run``)."""
        definition = getattr(self._record(), "task", None)
        return definition.name if definition is not None else None

    @property
    def flow_name(self) -> str | None:
        """The name of the current run's flow (on ``flow_run``; None on ``task_run``)."""
        definition = getattr(self._record(), "flow", None)
        return definition.name if definition is not None else None

    @property
    def parameters(self) -> dict[str, Any]:
        record = self._record()
        return dict(record.parameters) if record else {}

    @property
    def tags(self) -> list[str]:
        record = self._record()
        return sorted(record.tags) if record else []

    @property
    def run_count(self) -> int:
        record = self._record()
        return getattr(record, "run_count", 1) if record else 0

    # Prefect's server links: kernelflow has no server (None, as Prefect outside a run).
    api_url = None
    ui_url = None

    @property
    def flow_version(self) -> str | None:
        """The version of the current run's flow (on ``flow_run``)."""
        definition = getattr(self._record(), "flow", None)
        return getattr(definition, "version", None)

    @property
    def scheduled_start_time(self) -> datetime.datetime:
        """When the run started (kernelflow schedules nothing ahead); now outside a run."""
        started = getattr(self._record(), "start_time", None)
        stamp = started if started is not None else time.time()
        return datetime.datetime.fromtimestamp(stamp, tz=datetime.timezone.utc)

    @property
    def parent_flow_run_id(self) -> str | None:
        """The id of the flow run this subflow run was called in (on ``flow_run``)."""
        parent = getattr(self._record(), "parent", None)
        return str(parent.id) if parent is not None else None

    @property
    def root_flow_run_id(self) -> str | None:
        """The id of the outermost flow run this run is part of."""
        record = self._record()
        if record is None:
            return None
        record = getattr(record, "flow_run", None) or record  # a task run: its flow run
        while getattr(record, "parent", None) is not None:
            record = record.parent
        return str(record.id)

    parent_deployment_id = None
    job_variables = None

    def __repr__(self) -> str:
        return f"<current {self._kind} run: {self.name!r}>"


class _NoDeployment:
    """``runtime.deployment``: what Prefect gives outside a deployment, always."""

    id = None
    flow_run_id = None
    name = None
    version = None

    @property
    def parameters(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        return "<no deployment: kernelflow runs flows directly>"


task_run = _CurrentRun("task")
flow_run = _CurrentRun("flow")
deployment = _NoDeployment()

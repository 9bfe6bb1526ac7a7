"""Pausing and resuming flow runs, under Prefect's module path (``prefect.flow_runs``).

See ``kernelflow.pause_flow_run`` for how a pause waits in a notebook.
"""

from kernelflow._pause import cancel_flow_run, pause_flow_run, paused_runs, resume_flow_run

__all__ = ["cancel_flow_run", "pause_flow_run", "paused_runs", "resume_flow_run"]

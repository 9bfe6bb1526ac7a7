"""What a drawing reads of a flow's task runs: their records now, or a snapshot.

Kept apart from the drawing code (and its graphviz import) so that the notebook layer,
whose tally takes the snapshots, can name the default without loading graphviz.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kernelflow._runs import FlowRun, TaskRun
    from kernelflow.states import State


class Seen:
    """What a drawing reads of the task runs: by default their records as they are now.

    A live display passes the snapshot its counts were taken from (``notebook._tally``),
    so in every frame the graph's boxes say what the header says, though runs change
    state while the graph is drawn.
    """

    def task_runs(self, flow_run: FlowRun) -> list[TaskRun]:
        return flow_run.task_runs

    def state(self, run: TaskRun) -> State:
        return run.state


NOW = Seen()

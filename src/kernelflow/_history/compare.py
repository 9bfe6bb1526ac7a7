"""``kernelflow.runs.compare(a, b)``: two flow runs side by side, task run by task run.

Task runs are matched by name ("load-0" in one with "load-0" in the other: the same task
at the same place in the flow's order). For each: its state and duration in both,
whether its task's source or its inputs changed between them, and whether ``b``
reused its result (a retry, or a cache hit). Works for live runs and runs read from the
history alike: it reads only what records keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kernelflow._history.rows import preview_of
from kernelflow._history.text import duration


@dataclass
class TaskDifference:
    name: str
    task: str
    state_a: str | None
    state_b: str | None
    duration_a: float | None
    duration_b: float | None
    source_changed: bool
    inputs_changed: bool
    reused: bool

    @property
    def changes(self) -> str:
        what = [
            w for w, on in (("source", self.source_changed), ("inputs", self.inputs_changed)) if on
        ]
        return " + ".join(what) or "-"


class Comparison:
    """The result of ``runs.compare(a, b)``: ``tasks``, one ``TaskDifference`` each."""

    def __init__(self, a: Any, b: Any, tasks: list[TaskDifference]) -> None:
        self.a, self.b, self.tasks = a, b, tasks

    @property
    def changed(self) -> list[str]:
        """Names of the task runs whose source or inputs changed."""
        return [t.name for t in self.tasks if t.source_changed or t.inputs_changed]

    @property
    def reused(self) -> list[str]:
        """Names of the task runs whose results ``b`` reused."""
        return [t.name for t in self.tasks if t.reused]

    def rows(self) -> list[dict[str, str]]:
        return [
            {
                "task run": t.name,
                "state a": t.state_a or "-",
                "state b": t.state_b or "-",
                "duration a": duration(t.duration_a),
                "duration b": duration(t.duration_b),
                "changed": t.changes,
                "reused in b": "yes" if t.reused else "",
            }
            for t in self.tasks
        ]

    def __repr__(self) -> str:
        head = (
            f"a: {self.a.name} ({self.a.state.name}, {duration(self.a.duration)})\n"
            f"b: {self.b.name} ({self.b.state.name}, {duration(self.b.duration)})"
        )
        rows = self.rows()
        if not rows:
            return head + "\nNo task runs in either."
        columns = list(rows[0])
        widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
        lines = ["  ".join(c.upper().ljust(widths[c]) for c in columns).rstrip()]
        lines += ["  ".join(r[c].ljust(widths[c]) for c in columns).rstrip() for r in rows]
        return head + "\n" + "\n".join(lines)


def compare(a: Any, b: Any) -> Comparison:
    runs_a, runs_b = _task_runs(a), _task_runs(b)
    sources_a, sources_b = _sources(a), _sources(b)
    names = list(runs_a) + [name for name in runs_b if name not in runs_a]
    tasks = []
    for name in names:
        run_a, run_b = runs_a.get(name), runs_b.get(name)
        task = (run_a or run_b).task.name
        both = run_a is not None and run_b is not None
        source_a, source_b = sources_a.get(task), sources_b.get(task)
        tasks.append(
            TaskDifference(
                name=name,
                task=task,
                state_a=run_a.state.name if run_a else None,
                state_b=run_b.state.name if run_b else None,
                duration_a=run_a.duration if run_a else None,
                duration_b=run_b.duration if run_b else None,
                source_changed=bool(source_a and source_b and source_a != source_b),
                inputs_changed=both and _previews(run_a) != _previews(run_b),
                reused=run_b is not None and run_b.state.name == "Cached",
            )
        )
    return Comparison(a, b, tasks)


def _task_runs(flow_run: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    stack = [("", flow_run)]
    while stack:
        prefix, run = stack.pop()
        for task_run in run.task_runs:
            found[prefix + task_run.name] = task_run
        stack.extend((f"{prefix}{sub.flow_name}/", sub) for sub in run.subflow_runs)
    return found


def _sources(flow_run: Any) -> dict[str, str]:
    sources: dict[str, str] = {}
    stack = [flow_run]
    while stack:
        run = stack.pop()
        sources.update(run.task_sources or {})
        stack.extend(run.subflow_runs)
    return sources


def _previews(task_run: Any) -> dict[str, Any]:
    # A run read from the history keeps previews (text) of its inputs, a live one the
    # values: both are compared as previews.
    if not hasattr(task_run.task, "fn"):  # a past run's task stands in by name only
        return dict(task_run.parameters)
    return {name: preview_of(value) for name, value in task_run.parameters.items()}

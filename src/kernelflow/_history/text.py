"""Plain-text forms of run listings and logs: for terminals, ``python -m kernelflow``
and the ``text/plain`` beside a notebook's table."""

from __future__ import annotations

import datetime
import logging
from typing import Any


def summary(run: Any) -> dict[str, str]:
    """What a listing shows of a run, as text."""
    counts = getattr(run, "task_counts", None)
    if counts is None:
        counts = {}
        for task_run in run.task_runs:
            counts[task_run.state.name] = counts.get(task_run.state.name, 0) + 1
    created = run.history[0].timestamp
    return {
        "state": run.state.name,
        "flow": run.flow_name,
        "run": run.name,
        "start": datetime.datetime.fromtimestamp(created).strftime("%Y-%m-%d %H:%M:%S"),
        "duration": duration(run.duration),
        "tasks": ", ".join(f"{n} {name}" for name, n in sorted(counts.items())) or "-",
        "session": session_of(run),
    }


def session_of(run: Any) -> str:
    from kernelflow._history import SESSION

    session = getattr(run, "session", None)
    return "this one" if session in (None, SESSION) else session


def duration(seconds: float | None) -> str:
    """A run's duration as people read it, the same in every table, header and graph:
    "-" (not known yet), "<1 ms", "12 ms", "3.42 s", "12.3 s", "2m 05s"."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return "<1 ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


COLUMNS = ("state", "flow", "run", "start", "duration", "tasks", "session")


def runs_table(runs: list[Any]) -> str:
    if not runs:
        return "No flow runs."
    rows = [summary(run) for run in runs]
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in COLUMNS}
    lines = ["  ".join(c.upper().ljust(widths[c]) for c in COLUMNS).rstrip()]
    lines += ["  ".join(r[c].ljust(widths[c]) for c in COLUMNS).rstrip() for r in rows]
    return "\n".join(lines)


class LogLines(list):
    """A run's log lines, ``(time, level, run name, message)``, oldest first."""

    def __repr__(self) -> str:
        return "\n".join(line_text(line) for line in self) or "No log lines."


def line_text(line: tuple[float, int, str, str]) -> str:
    when, level, run_name, message = line
    clock = datetime.datetime.fromtimestamp(when).strftime("%H:%M:%S.%f")[:-3]
    return f"{clock} | {logging.getLevelName(level):<7} | {run_name} - {message}"


class Timeline:
    """Which worker ran which task run, and when (``FlowRun.timeline()``): a chart in a
    notebook (registered by ``kernelflow.notebook``), lines of text elsewhere."""

    def __init__(self, flow_run: Any) -> None:
        self.flow_run = flow_run

    def __repr__(self) -> str:
        runs = [r for r in self.flow_run.task_runs if r.start_time is not None]
        if not runs:
            return f"Timeline of {self.flow_run.name}: no task run started."
        origin = min(r.start_time for r in runs)
        lines = [f"Timeline of {self.flow_run.name} (seconds from its first task run):"]
        for run in sorted(runs, key=lambda r: (r.worker or "", r.start_time)):
            end = run.end_time if run.end_time is not None else run.start_time
            lines.append(
                f"  {run.worker or '?':<24} {run.start_time - origin:8.3f} "
                f"-> {end - origin:8.3f}  {run.name} ({run.state.name})"
            )
        return "\n".join(lines)

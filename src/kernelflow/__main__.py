"""``python -m kernelflow``: the run history from a terminal.

python -m kernelflow runs [--flow NAME] [--state STATE] [--limit N]
python -m kernelflow runs show NAME_OR_ID
python -m kernelflow runs clear [--older-than-days DAYS]
"""

from __future__ import annotations

import argparse
import datetime
import sys
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kernelflow")
    commands = parser.add_subparsers(dest="command", required=True)
    runs = commands.add_parser("runs", help="list flow runs, newest first")
    runs.add_argument("action", nargs="?", choices=("show", "clear"))
    runs.add_argument("name", nargs="?", help="the run to show: its name or id")
    runs.add_argument("--flow", help="only runs of this flow")
    runs.add_argument("--state", help="only runs in this state (Failed, Completed...)")
    runs.add_argument("--limit", type=int, default=20, help="at most this many (20)")
    runs.add_argument("--older-than-days", type=float, help="clear: only runs older than")
    args = parser.parse_args(argv)

    import kernelflow

    if args.action is None:
        print(repr(kernelflow.runs(flow=args.flow, state=args.state, limit=args.limit)))
        return 0
    if args.action == "clear":
        older = args.older_than_days
        cut = None if older is None else datetime.timedelta(days=older)
        print(f"Cleared {kernelflow.runs.clear(older_than=cut)} flow run(s).")
        return 0
    if not args.name:
        parser.error("runs show needs the run's name or id: python -m kernelflow runs show NAME")
    try:
        run = kernelflow.runs.get(args.name)
    except LookupError as error:
        print(error, file=sys.stderr)
        return 1
    print(show(run))
    return 0


def show(run: Any) -> str:
    """One run as text: its summary, parameters, task runs, and log lines."""
    from kernelflow._history.text import duration, summary

    about = summary(run)
    lines = [
        f"{run.name}  ({about['flow']})  {run.state.name}"
        + (f": {run.state.message}" if run.state.message else ""),
        f"  started {about['start']}, took {about['duration']}, session {about['session']}",
        f"  parameters: {getattr(run, 'parameter_previews', run.parameters)}",
        "",
        "Task runs:",
    ]
    for task_run in run.task_runs:
        upstream = sorted(_names(run).get(i, "?") for i in task_run.upstream_ids)
        after = f"  <- {', '.join(upstream)}" if upstream else ""
        message = f"  ({task_run.state.message})" if task_run.state.message else ""
        lines.append(
            f"  {task_run.state.name:<10} {task_run.name:<24} "
            f"{duration(task_run.duration):>9}  {task_run.worker or ''}{after}{message}"
        )
    for sub in run.subflow_runs:
        lines.append(f"  {sub.state.name:<10} {sub.name} (subflow, {len(sub.task_runs)} tasks)")
    logs = run.logs()
    if logs:
        lines += ["", "Logs:", repr(logs)]
    return "\n".join(lines)


def _names(run: Any) -> dict[Any, str]:
    return {task_run.id: task_run.name for task_run in run.task_runs}


if __name__ == "__main__":
    sys.exit(main())

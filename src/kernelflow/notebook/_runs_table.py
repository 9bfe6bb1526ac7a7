"""The run history in a notebook: ``kernelflow.runs()`` as a table, a comparison, a
timeline and log lines, each as HTML beside its text form.

The records layer defines the objects (``RunList``, ``Comparison``, ``Timeline``,
``LogLines``) and their text; it never imports this module. ``register`` installs
these as IPython's HTML formatters, from ``_display.register()`` in a kernel. A past
run itself (``PastFlowRun``) is a FlowRun, shown by the flow-run display already there,
and ``run.graph()`` draws it as it draws a live one.
"""

from __future__ import annotations

import html
from typing import Any

from kernelflow.notebook._snapshot import badge_html

_TABLE = (
    '<table class="kf-runs" style="border-collapse:collapse;font-size:13px">'
    "<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
)
_CELL = 'style="padding:2px 10px;text-align:left;border-bottom:1px solid #ddd"'


def runs_html(runs: Any) -> str:
    from kernelflow._history.text import COLUMNS, summary

    if not runs:
        return '<div class="kf-runs">No flow runs.</div>'
    head = "".join(f"<th {_CELL}>{c}</th>" for c in COLUMNS)
    body = []
    for run in runs:
        about = summary(run)
        cells = [badge_html(run.state)] + [html.escape(about[c]) for c in COLUMNS[1:]]
        body.append("<tr>" + "".join(f"<td {_CELL}>{cell}</td>" for cell in cells) + "</tr>")
    return _TABLE.format(head=head, body="".join(body))


def comparison_html(comparison: Any) -> str:
    rows = comparison.rows()
    intro = (
        f"<div><b>a</b>: {html.escape(comparison.a.name)} {badge_html(comparison.a.state)} "
        f"&nbsp; <b>b</b>: {html.escape(comparison.b.name)} {badge_html(comparison.b.state)}</div>"
    )
    if not rows:
        return intro + "<div>No task runs in either.</div>"
    head = "".join(f"<th {_CELL}>{html.escape(c)}</th>" for c in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td {_CELL}>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return intro + _TABLE.format(head=head, body=body)


def timeline_html(timeline: Any) -> str:
    from kernelflow.notebook._charts import timeline_svg

    return timeline_svg(timeline.flow_run) or None  # none started: its text


def logs_html(lines: Any) -> str:
    from kernelflow._history.text import line_text

    text = "\n".join(line_text(line) for line in lines) or "No log lines."
    return f'<pre class="kf-log-lines" style="font-size:12px">{html.escape(text)}</pre>'


def register(shell: Any) -> None:
    """Show the history's objects as HTML in this kernel (text stays their repr)."""
    from kernelflow._history.compare import Comparison
    from kernelflow._history.text import LogLines, Timeline
    from kernelflow._run_history import RunList

    formatter = shell.display_formatter.formatters["text/html"]
    formatter.for_type(RunList, runs_html)
    formatter.for_type(Comparison, comparison_html)
    formatter.for_type(Timeline, timeline_html)
    formatter.for_type(LogLines, logs_html)

"""Plain-data views of run records: colours, counts, durations and text/HTML snapshots.

Everything here reads records and returns strings, with no widget library involved, so
the same words and colours appear in the live widgets, in the ``text/html`` snapshot that
nbconvert, GitHub and a reopened notebook show, and in the ``text/plain`` repr.
"""

from __future__ import annotations

import html
import reprlib
import time
from dataclasses import dataclass
from typing import Any

from kernelflow._history.text import duration
from kernelflow.states import State, StateType

# One colour per state type; "Cached" gets its own so a rerun's cache hits stand out.
COLOURS = {
    StateType.PENDING: "#9e9e9e",
    StateType.RUNNING: "#1e88e5",
    StateType.PAUSED: "#f9a825",
    StateType.COMPLETED: "#2e7d32",
    StateType.FAILED: "#c62828",
    StateType.CRASHED: "#6a1b9a",
    StateType.CANCELLED: "#616161",
}
CACHED_COLOUR = "#00897b"
RETRYING_COLOUR = "#ef6c00"

_preview = reprlib.Repr()
_preview.maxstring = 80
_preview.maxother = 80
_preview.maxlist = _preview.maxtuple = _preview.maxdict = _preview.maxset = 8


def colour(state: State) -> str:
    """The badge colour of ``state``."""
    if state.name == "Cached":
        return CACHED_COLOUR
    if state.name == "Retrying":
        return RETRYING_COLOUR
    return COLOURS.get(state.type, "#9e9e9e")


def elapsed(run: Any) -> float | None:
    """Seconds the run has been going (or went), None before it started."""
    start = run.start_time
    if start is None:
        return None
    return (run.end_time or time.time()) - start


def preview(state: State, limit: int = 300) -> str:
    """A short, safe description of a final state's result or error ('' otherwise).

    An error's message is kept whole up to ``limit`` characters, then cut after its last
    full sentence (or word) that fits, so it never stops mid-word.
    """
    if not state.is_final():
        return ""
    data = state.data
    try:
        if isinstance(data, BaseException):
            text = str(data)
            return clip(f"{type(data).__name__}: {text}", limit) if text else type(data).__name__
        return _preview.repr(data)
    except Exception as error:  # a user __repr__ that raises must not break the display
        return f"<unprintable {type(data).__name__}: {type(error).__name__}>"


def clip(text: str, limit: int) -> str:
    """``text`` up to ``limit`` characters, cut at a sentence or word end, with "…"."""
    if len(text) <= limit:
        return text
    head = text[:limit]
    sentence = max(head.rfind(". "), head.rfind(".\n"))
    if sentence > limit // 2:
        return head[: sentence + 1] + " …"
    return head.rsplit(None, 1)[0] + " …"


@dataclass(frozen=True)
class Counts:
    """How many runs of a group are in each kind of state, and the first failures
    (counted by ``_tally``)."""

    total: int
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    running: int = 0
    pending: int = 0
    failures: tuple[str, ...] = ()  # "run name: error" for the first few failed runs
    # Of the completed: served from the cache, or reused by a retry from the flow run
    # named in ``reused_from`` (the rest ran their bodies).
    cached: int = 0
    reused: int = 0
    reused_from: str = ""

    @property
    def finished(self) -> int:
        return self.completed + self.failed + self.cancelled

    @property
    def done(self) -> bool:
        return self.finished == self.total

    def text(self) -> str:
        """E.g. ``812/1000 completed, 3 failed, 12 running``, or for completed runs that
        did not all run ``13/13 completed: 6 reused from etl-3f2a1c, 7 ran``."""
        parts = [f"{self.completed}/{self.total} completed{self._how_completed()}"]
        for label in ("failed", "cancelled", "running", "pending"):
            number = getattr(self, label)
            if number:
                parts.append(f"{number} {label}")
        return ", ".join(parts)

    def _how_completed(self) -> str:
        if not (self.reused or self.cached):
            return ""
        source = f" from {self.reused_from}" if self.reused_from else ""
        ran = self.completed - self.reused - self.cached
        how = [
            f"{self.reused} reused{source}" if self.reused else "",
            f"{self.cached} cached" if self.cached else "",
            f"{ran} ran" if ran else "",
        ]
        return ": " + ", ".join(part for part in how if part)


MAX_FAILURES = 5  # failures listed by name; the counts tell how many there are in all
_FAILED = (StateType.FAILED, StateType.CRASHED)


def badge_html(state: State) -> str:
    return (
        f'<span class="kf-badge" style="background:{colour(state)};color:white;'
        f'border-radius:4px;padding:1px 6px;font-size:90%">{html.escape(state.name)}</span>'
    )


def future_plain(run: Any) -> str:
    text = f"{run.name}: {run.state.name} ({duration(elapsed(run))})"
    detail = preview(run.state)
    return f"{text} -> {detail}" if detail else text


def future_html(run: Any) -> str:
    detail = preview(run.state)
    tail = f' <code class="kf-preview">{html.escape(detail)}</code>' if detail else ""
    return (
        f'<div class="kf-future"><b>{html.escape(run.name)}</b> {badge_html(run.state)} '
        f'<span class="kf-elapsed">{duration(elapsed(run))}</span>{tail}</div>'
    )


def failures_html(lines: tuple[str, ...]) -> str:
    if not lines:
        return ""
    items = "".join(f"<li>{html.escape(line)}</li>" for line in lines)
    return f'<ul class="kf-failures" style="color:{COLOURS[StateType.FAILED]}">{items}</ul>'


# The bar's segments, left to right: what is done first, then what is still to come.
SEGMENTS = (
    ("completed", COLOURS[StateType.COMPLETED]),
    ("failed", COLOURS[StateType.FAILED]),
    ("cancelled", COLOURS[StateType.CANCELLED]),
    ("running", COLOURS[StateType.RUNNING]),
)


def progress_html(counts: Counts, paused: bool = False) -> str:
    """A progress bar with one segment per kind of state (no widgets needed to read it).

    Nothing to count draws an empty bar (not a full green one), and a paused run's
    running share is drawn in the paused colour.
    """
    segments = []
    for label, fill in SEGMENTS if counts.total else ():
        number = getattr(counts, label)
        if number:
            if label == "running" and paused:
                fill = COLOURS[StateType.PAUSED]
            share = 100 * number / counts.total
            segments.append(
                f'<div class="kf-segment kf-{label}" title="{number} {label}" '
                f'style="width:{share:.2f}%;height:10px;background:{fill}"></div>'
            )
    text = counts.text() if counts.total else "no task runs"
    return (
        '<div class="kf-progress" style="display:flex;align-items:center;gap:8px">'
        '<div class="kf-bar" style="display:flex;width:200px;height:10px;background:#e0e0e0;'
        f'border-radius:3px;overflow:hidden">{"".join(segments)}</div>'
        f'<span class="kf-counts">{html.escape(text)}</span></div>'
    )


def flow_error_html(run: Any) -> str:
    """The error of a failed flow that no task run explains (it failed before any ran)."""
    message = flow_error(run)
    if not message:
        return ""
    return (
        f'<div class="kf-flow-error" style="color:{COLOURS[StateType.FAILED]};'
        f'white-space:pre-wrap">{html.escape(message)}</div>'
    )


def flow_error(run: Any) -> str:
    """A failed or crashed flow's own error text ('' for any other state)."""
    state = run.state
    if state.type not in _FAILED:
        return ""
    return preview(state, limit=600) or (state.message or "")


def _plain_lines(counts: Counts) -> list[str]:
    if not counts.total:
        return ["no task runs"]
    return [f"{counts.total} task runs: {counts.text()}"] + [
        f"  failed: {line}" for line in counts.failures
    ]


def list_plain(counts: Counts) -> str:
    return "\n".join(_plain_lines(counts))


def list_html(counts: Counts) -> str:
    return f'<div class="kf-list">{progress_html(counts)}{failures_html(counts.failures)}</div>'


def flow_header_html(run: Any) -> str:
    return (
        f'<div class="kf-flow-header"><b>{html.escape(run.name)}</b> {badge_html(run.state)} '
        f'<span class="kf-elapsed">{duration(elapsed(run))}</span>{dashboard_html(run)}'
        f"{_waiting_html(run.state)}</div>"
    )


def waiting_for(state: State) -> str:
    """What a Pending run says it waits for (a cluster starting), else ''."""
    return (state.message or "") if state.type is StateType.PENDING else ""


def _waiting_html(state: State) -> str:
    text = waiting_for(state)
    return f' <span class="kf-waiting">{html.escape(text)}</span>' if text else ""


def pause_outcomes(run: Any) -> list[str]:
    """How each pause of the flow run ended, from its state history ("resumed with ...")."""
    history = run.history
    return [
        after.message or after.name
        for before, after in zip(history, history[1:], strict=False)
        if before.type is StateType.PAUSED
    ]


def pauses_html(run: Any) -> str:
    return "".join(
        f'<p class="kf-pause-outcome">Paused, then: {html.escape(outcome)}</p>'
        for outcome in pause_outcomes(run)
    )


def dashboard_html(run: Any) -> str:
    """The Dask dashboard of the flow's runner, when its cluster is running and has one: a
    link while the run goes on; in a finished run's snapshot, which the notebook saves and
    shows after the kernel and its cluster are gone, the address as text."""
    runner = getattr(getattr(run, "flow", None), "task_runner", None)
    link = getattr(runner, "dashboard_link", None)
    if not link:
        return ""
    if run.state.is_final():
        return (
            f' <span class="kf-dashboard">Dask dashboard was at <code>{html.escape(link)}</code>'
            " while its cluster ran</span>"
        )
    href = html.escape(link, quote=True)
    return f' <a class="kf-dashboard" href="{href}" target="_blank">Dask dashboard</a>'


def flow_plain(run: Any, counts: Counts, log: Any = None) -> str:
    """A flow run in words, with the counts of its (and its subflows') task runs, and its
    warning and error log lines."""
    header = f"FlowRun {run.name!r}: {run.state.name} ({duration(elapsed(run))})"
    waiting = waiting_for(run.state)
    if waiting:
        header += f" - {waiting}"
    lines = [header] + ["  " + line for line in _plain_lines(counts)]
    error = flow_error(run)
    if error and not counts.failures:
        lines.append("  " + error)
    return "\n".join(lines + logs_plain(log))


_LEVEL_COLOURS = {"WARNING": "#e65100", "ERROR": COLOURS[StateType.FAILED]}
_LOG_BOX = (
    "margin:2px 0;padding:4px 6px;background:#fafafa;border-left:3px solid {};"
    "font-family:monospace;font-size:85%;white-space:pre-wrap"
)


SHOWN_WARNINGS = 8  # warning and error lines in view; more are folded with the rest


def logs_html(log: Any) -> str:
    """A run's log lines: the first WARNING-and-up lines in view, the rest folded under a
    summary line (a map with 500 failures does not print 500 red lines)."""
    if log is None or not (log.warnings or log.lines):
        return ""
    parts = ['<div class="kf-logs">']
    warnings = list(log.warnings)
    shown, more = warnings[:SHOWN_WARNINGS], warnings[SHOWN_WARNINGS:]
    if shown:
        text = "\n".join(html.escape(line) for _, line in shown)
        if more:
            text += f"\n… and {len(more)} more below"
        colour = _LEVEL_COLOURS["ERROR" if max(lv for lv, _ in shown) >= 40 else "WARNING"]
        style = _LOG_BOX.format(colour)
        parts.append(f'<div class="kf-log-warnings" style="{style}">{text}</div>')
    folded = more + list(log.lines)
    if folded:
        older = f"({log.dropped} earlier lines not kept)\n" if log.dropped else ""
        body = older + "\n".join(html.escape(line) for _, line in folded)
        parts.append(
            f'<details class="kf-log-lines"><summary style="cursor:pointer;color:#555">'
            f"{plural(len(folded) + log.dropped, 'log line')}</summary>"
            f'<div style="{_LOG_BOX.format("#bdbdbd")}">{body}</div></details>'
        )
    return "".join(parts) + "</div>"


def plural(number: int, noun: str) -> str:
    """``1 log line``, ``2 log lines``."""
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def logs_plain(log: Any) -> list[str]:
    """A run's first WARNING-and-up lines, for the text snapshot."""
    if log is None:
        return []
    lines = [text for _, text in log.warnings[:SHOWN_WARNINGS]]
    more = len(log.warnings) - SHOWN_WARNINGS
    return lines + ([f"… and {more} more warnings and errors"] if more > 0 else [])

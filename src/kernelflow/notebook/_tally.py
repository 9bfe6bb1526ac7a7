"""Counting runs by state again and again, at the cost of what changed.

A display counts its runs ten times a second while they run. A final state never
changes (the transitions table has no way out of one), so a run found final is counted
once and never looked at again: each count reads only the runs that were not final the
last time and the runs created since. A 10,000-run map is read in full once rather than
on every tick, and the runs of its last ticks, when most are done, cost next to nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from kernelflow._engine.retry_plan import reused_from
from kernelflow.notebook._snapshot import MAX_FAILURES, Counts, preview
from kernelflow.states import State, StateType

_COMPLETED, _CANCELLED = StateType.COMPLETED, StateType.CANCELLED
_PENDING, _RUNNING, _PAUSED = StateType.PENDING, StateType.RUNNING, StateType.PAUSED
_CANCELLING = StateType.CANCELLING


class Tally:
    """The counts of growing lists of runs, kept up to date by ``update``.

    Lists of runs only grow (runs are appended as they are created), so each is read
    from where the last update stopped.
    """

    def __init__(self) -> None:
        self._read: dict[int, tuple[list[Any], int]] = {}  # id(list) -> (list, runs read)
        self._open: list[Any] = []  # runs read, not final when last looked at
        self._final = (0, 0, 0)  # completed, failed (or crashed), cancelled
        self._cached = self._reused = 0  # of the completed: not run, their value found
        self._reused_from = ""
        self._failures: list[str] = []  # "run name: error" of the first runs found failed
        self._total = 0
        self._frozen: dict[int, StateType] = {}
        self._frozen_at = 0.0

    def update(self, lists: Iterable[list[Any]], freeze: bool = False) -> Counts:
        """The counts of every run in ``lists`` now (lists seen before, grown or not,
        and new ones); ``freeze``: keep what was read, for ``snapshot()``."""
        for runs in lists:
            _, start = self._read.get(id(runs), (runs, 0))
            end = len(runs)  # appends may go on while we read: take what is there now
            if end > start:
                self._open.extend(runs[start:end])
                self._read[id(runs)] = (runs, end)
                self._total += end - start
        return self._recount(freeze)

    def snapshot(self) -> Snapshot:
        """The runs and states the last ``update(..., freeze=True)`` counted."""
        lengths = {key: n for key, (_, n) in self._read.items()}
        return Snapshot(lengths, self._frozen, self._frozen_at)

    def _recount(self, freeze: bool = False) -> Counts:
        frozen: dict[int, StateType] = {}  # id(run) -> the type counted, for runs not final
        still_open: list[Any] = []
        keep = still_open.append
        running = pending = completed = failed = cancelled = 0
        # By type while a run is open: its first states are times until read (_runs),
        # and reading them here would make them for every run of a map.
        for run in self._open:
            kind = run.state_type  # read once: it may change while we look
            if kind is _PENDING or kind is _RUNNING or kind is _PAUSED or kind is _CANCELLING:
                keep(run)
                if freeze:
                    frozen[id(run)] = kind
                if kind is _PENDING:
                    pending += 1
                elif kind is not _CANCELLING:  # a Cancelling run counts in the total only
                    running += 1  # running or paused
                continue
            state = run.state  # final: made, and it never changes again
            if kind is _COMPLETED:
                completed += 1
                if state.name == "Cached":
                    self._count_cached(state)
            elif kind is _CANCELLED:
                cancelled += 1
            else:  # failed or crashed
                failed += 1
                if len(self._failures) < MAX_FAILURES:
                    self._failures.append(f"{run.name}: {preview(state)}")
        self._open = still_open
        if freeze:
            self._frozen, self._frozen_at = frozen, time.time()
        self._final = final = (
            self._final[0] + completed,
            self._final[1] + failed,
            self._final[2] + cancelled,
        )
        return Counts(
            total=self._total,
            completed=final[0],
            failed=final[1],
            cancelled=final[2],
            running=running,
            pending=pending,
            failures=tuple(self._failures),
            cached=self._cached,
            reused=self._reused,
            reused_from=self._reused_from,
        )

    def _count_cached(self, state: State) -> None:
        original = reused_from(state)
        if original is None:
            self._cached += 1
        else:
            self._reused += 1
            self._reused_from = original


class Snapshot:
    """The task runs a tally counted and the states it counted them in, as a drawing
    reads runs (``viz._draw_run.Seen``): a graph drawn from it agrees with the counts.

    Runs created after the count are left out; a run final then is final now, so only
    the state types of runs still open then are kept.
    """

    def __init__(self, lengths: dict[int, int], kinds: dict[int, StateType], at: float) -> None:
        self._lengths = lengths  # id(list of runs) -> how many of its runs were counted
        self._kinds = kinds
        self.at = at  # its time.time()

    def task_runs(self, flow_run: Any) -> list[Any]:
        runs = flow_run.task_runs
        return runs[: self._lengths.get(id(runs), 0)]

    def state(self, run: Any) -> State:
        state = run.state
        kind = self._kinds.get(id(run))
        if kind is None or state.type is kind:  # final when counted, or as counted still
            return state
        # It moved on since: drawn as counted (a drawing reads only a state's kind then)
        return State(kind, kind.value.title(), None, None, self.at)


def count(runs: Iterable[Any]) -> Counts:
    """Tally the runs' states in one pass (for a snapshot taken once)."""
    return Tally().update([list(runs)])

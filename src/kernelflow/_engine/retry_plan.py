"""``RetryPlan``: which runs of the original flow run a retry may reuse, and which of its
runs did (``resume.py`` says when a run is reused).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kernelflow._engine.retry_candidates import Candidates, Reusable, unchanged
from kernelflow._engine.retry_from_history import (
    MISSING,
    StoredCandidates,
    StoredValue,
    not_reusable,
)
from kernelflow._engine.sources import source_digest
from kernelflow._logging import run_logger
from kernelflow.states import Cached, State

if TYPE_CHECKING:
    import uuid

    from kernelflow._runs import FlowRun, TaskRun
    from kernelflow.tasks import Task


_LIVE = object()

# A reused run's message: "reused from <task run> of flow run <original>", and a note.
REUSED_FROM, OF_FLOW_RUN = "reused from ", " of flow run "
FROM_THE_STORE = " (read from the result store)"
NOT_CHECKED = " (not checked for changes made in place: too large to digest)"


def reused_from(state: State) -> str | None:
    """The name of the flow run whose result a retry's reused run (``state``) took; None
    for any other state (a cache hit is Cached too). Displays tell the two apart."""
    message = state.message
    if state.name != "Cached" or not message or not message.startswith(REUSED_FROM):
        return None
    original = message.rpartition(OF_FLOW_RUN)[2]
    return original.removesuffix(FROM_THE_STORE).removesuffix(NOT_CHECKED)


class RetryPlan:
    """Which runs of the original a retry may reuse, and which of its runs did."""

    def __init__(self, original: FlowRun) -> None:
        if original.parent is not None:
            raise ValueError(
                f"Flow run {original.name!r} is a subflow run: retry the flow run it belongs "
                f"to ({_top(original).name!r}), and its subflows are retried with it."
            )
        if not original.state.is_final():
            raise ValueError(
                f"Flow run {original.name!r} is still {original.state.name}: retry it once "
                "it has ended."
            )
        original.check_values_kept()
        self.original = original
        self.rerun: dict[str, str] = {}  # run name -> why it cannot be reused
        self._candidates: dict[tuple[Any, ...], Candidates | StoredCandidates] = {}
        self._sources: dict[tuple[Any, ...], str] = {}
        self._index(original, ())
        self._reused: set[int] = set()  # the ids (as ints: TaskRun._id_bits) of reused runs
        self._places: dict[uuid.UUID, tuple[Any, ...]] = {}
        self._digests: dict[int, str] = {}  # id(task) -> its source digest now
        self._lock = threading.Lock()

    def _index(self, flow_run: FlowRun, place: tuple[Any, ...]) -> None:
        for name, digest in (flow_run.task_sources or {}).items():
            self._sources[(*place, name)] = digest
        for run in flow_run.task_runs:
            if not run.state.is_completed():
                continue
            key = (*place, run.task.name)
            stored = getattr(run, "stored", _LIVE)  # a PastTaskRun's persisted result
            if stored is _LIVE:  # what it needs, taken now: the retry itself is a newer
                # run, and may release the record (a release gives the record new
                # parameters: this dict stays as it is)
                reusable = Reusable(run.name, run.parameters, run.state.data, run.digests)
                self._candidates.setdefault(key, Candidates()).add(reusable)
                continue
            why = not_reusable(run)
            if why is not None:
                self.rerun[run.name] = why
                continue
            reusable = Reusable(run.name, None, StoredValue(*stored), None, run.input_digests)
            self._candidates.setdefault(key, StoredCandidates()).add(reusable)
        for sub, occurrence in _with_occurrence(flow_run.subflow_runs):
            self._index(sub, (*place, (sub.flow_name, occurrence)))

    def reused_state(self, task: Task, run: TaskRun, parameters: dict[str, Any]) -> State | None:
        """A Cached state with the original's value if ``run`` may reuse it, else None."""
        flow_run = run.flow_run
        if flow_run is None or flow_run.parent is None:
            key: tuple[Any, ...] = (task.name,)  # the usual: a run of the top-level flow
        else:
            key = (*self._place(flow_run), task.name)
        candidates = self._candidates.get(key)
        if not candidates or (run.upstream and not self._upstream_reused(run)):
            return None
        digest = self._digests.get(id(task))
        if digest is None:
            digest = self._digests[id(task)] = source_digest(task)
        if self._sources.get(key) != digest:
            return None
        with self._lock:
            original = candidates.take(parameters)
            if original is None:
                return None
            value = original.value
            if isinstance(value, StoredValue):  # from an earlier session: on disk
                value, holds = value.load(), True
                if value is MISSING:
                    return None
            else:
                holds = unchanged(original, parameters)
            if holds is False:  # changed in place since it ran: runs again
                run_logger(task_run=run).info(
                    "Not reused from %s: its inputs or its result were changed in place "
                    "after it ran.",
                    original.name,
                )
                return None
            self._reused.add(run._id_bits)
        message = f"{REUSED_FROM}{original.name}{OF_FLOW_RUN}{self.original.name}"
        if isinstance(original.value, StoredValue):
            message += FROM_THE_STORE
        elif holds is None:
            message += NOT_CHECKED
        return Cached(value, message=message)

    def report(self) -> str:
        """What a retry from the run history can reuse, and what runs again and why."""
        reusable = sum(len(c) for c in self._candidates.values())
        text = (
            f"Retrying flow run {self.original.name!r} from the run history: {reusable} "
            "completed task run(s) can be reused from the result store"
        )
        if self.rerun:
            shown = "; ".join(f"{name}: {why}" for name, why in list(self.rerun.items())[:10])
            more = f" (and {len(self.rerun) - 10} more)" if len(self.rerun) > 10 else ""
            text += f"; {len(self.rerun)} run again: {shown}{more}"
        return text + "."

    def _upstream_reused(self, run: TaskRun) -> bool:
        ids = [i for group in run.upstream.values() for i in group]
        if not ids:
            return True
        with self._lock:
            missing = [i for i in ids if i.int not in self._reused]
        return all(self._subflow_reused(run.flow_run, i) for i in missing)

    def _subflow_reused(self, flow_run: FlowRun, run_id: uuid.UUID) -> bool:
        """True for a finished subflow run of this retry whose task runs were all reused."""
        sub = next((s for s in flow_run.subflow_runs if s.id == run_id), None)
        if sub is None or not sub.state.is_completed():
            return False
        with self._lock:
            if any(r._id_bits not in self._reused for r in sub.task_runs):
                return False
        return all(self._subflow_reused(sub, s.id) for s in sub.subflow_runs)

    def _place(self, flow_run: FlowRun | None) -> tuple[Any, ...]:
        if flow_run is None or flow_run.parent is None:
            return ()
        place = self._places.get(flow_run.id)
        if place is None:
            siblings = [
                s for s in flow_run.parent.subflow_runs if s.flow_name == flow_run.flow_name
            ]
            occurrence = next(i for i, s in enumerate(siblings) if s is flow_run)
            place = (*self._place(flow_run.parent), (flow_run.flow_name, occurrence))
            self._places[flow_run.id] = place
        return place


def _with_occurrence(flow_runs: list[FlowRun]) -> list[tuple[FlowRun, int]]:
    counts: dict[str, int] = {}
    numbered = []
    for sub in flow_runs:
        numbered.append((sub, counts.get(sub.flow_name, 0)))
        counts[sub.flow_name] = counts.get(sub.flow_name, 0) + 1
    return numbered


def _top(flow_run: FlowRun) -> FlowRun:
    while flow_run.parent is not None:
        flow_run = flow_run.parent
    return flow_run

"""Retry a flow run from where it failed: ``FlowRun.retry()``.

A retry calls the same flow with the same parameters, as a new flow run linked to the
original (``retry_of``), and lets each task run reuse what the original's matching run
returned instead of running, when three things hold:

- the task is unchanged: its source digest now is the one recorded when the original
  flow run ended (``TASK_SOURCE``'s notion: the task and the helpers it calls, comment
  and formatting edits aside). A task redefined in a cell runs again;
- its inputs are unchanged: each resolved parameter is the very object, or an equal
  one, that the original run received, and holds what it held when that run ended;
- its result is unchanged: no later step changed it in place (``_digests``: the
  content is digested when the run ends and at the retry; a value too large to digest
  is reused unchecked, and its state message says so);
- everything upstream of it was reused too. A run downstream of a run that ran again
  runs again, even if its inputs happen to be equal: a fixed step can change what the
  steps after it do in ways its return value does not show.

Runs are matched by where they stand: the same task in the same (sub)flow, in the order
the original ran them, so the 47 completed items of a 50-item map are reused and the 3
failed ones run again. Only completed runs are reused (failed, crashed, cancelled and
never-run ones run), and only while the original run's values are still kept (see
``_runs.RUN_VALUES_KEPT``). A reused run ends "Cached", with a message naming the run it
came from.

Reuse is decided where the run is called or submitted (``settle_reused``) whenever it can
be: a reused run has nothing to run, so it goes to no pool, driver or worker and costs
little more than its record. Runs that must wait first (for an upstream run still
going, or a paused flow), and runs with completion hooks (which run where runs run),
are decided by their lifecycle instead, by the same ``RetryPlan``.

A run of an earlier session (``PastFlowRun``, read from the run history) is retried the
same way, with what the history holds in place of values: its flow is found by name,
and only task runs whose results were persisted can be reused, read from the result
store and matched by their inputs' digests (``retry_from_history``).
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from kernelflow._engine.retry_candidates import Candidates, Reusable, unchanged
from kernelflow._engine.retry_from_history import (
    MISSING,
    StoredCandidates,
    StoredValue,
    defined_flow,
    not_reusable,
)
from kernelflow._engine.task_engine import resolve_inputs, settle
from kernelflow._logging import run_logger
from kernelflow._results.keys import combine
from kernelflow._results.source import source_parts
from kernelflow.states import Cached, State

if TYPE_CHECKING:
    import uuid

    from kernelflow._context import FlowRunContext
    from kernelflow._engine.inputs import Upstream
    from kernelflow._runs import FlowRun, TaskRun
    from kernelflow.futures import TaskFuture
    from kernelflow.tasks import Task

# The plan of the retry being started in this context; the flow engine moves it onto
# the flow run's context, where every driver's lifecycle can read it.
starting_retry: ContextVar[RetryPlan | None] = ContextVar("kernelflow_retry", default=None)


def remember_sources(flow_run: FlowRun) -> None:
    """Record the source digest of each task the flow run ran (called when it ends): a
    later edit of a task or helper must not be mistaken for the code that produced the
    original values."""
    digests: dict[str, str] = {}
    seen: set[int] = set()
    for run in flow_run.task_runs:
        task = run.task
        if id(task) not in seen:
            seen.add(id(task))
            digests[task.name] = source_digest(task)
    flow_run.task_sources = digests


def source_digest(task: Task) -> str:
    try:
        return combine("source", source_parts(task.fn))
    except Exception:  # no source to read (a builtin, a C function): never reusable
        import uuid

        return f"unknown-{uuid.uuid4()}"


def retry(original: FlowRun, flow: Any = None, parameters: dict[str, Any] | None = None) -> Any:
    """Run ``original``'s flow again with its parameters, reusing what still holds.

    Returns what calling the flow returns: its value, or for an async flow an awaitable.

    Raises:
        ValueError: ``original`` is a subflow run, or still running.
        RunValuesReleased: the original's values are no longer kept.
    """
    plan = RetryPlan(original)
    return _run_plan(
        plan, flow or original.flow, original.parameters if parameters is None else parameters
    )


def retry_past(original: Any) -> Any:
    """Retry a flow run read from the run history (``PastFlowRun``), in this session.

    Its flow is found by name among the flows defined now (once the cells that define
    it ran again). Task runs whose results were persisted (a cache policy,
    ``persist_result=True``) are reused from the result store when their task and inputs
    are unchanged; the others run again, and a log line says which and why.

    Raises:
        LookupError: no flow of that name is defined in this session.
        ValueError: its parameters could not be kept, or it is a subflow run.
    """
    if original.row["parent_id"] is not None:
        raise ValueError(
            f"Flow run {original.name!r} is a subflow run: retry the flow run it belongs "
            "to, and its subflows are retried with it."
        )
    flow = defined_flow(original.flow_name)
    parameters = original.values
    if parameters is None:
        raise ValueError(
            f"Flow run {original.name!r} cannot be retried from the run history: its "
            f"parameters ({original.parameter_previews}) could not be stored (they do not "
            f"pickle, or are over 1 MB). Call {original.flow_name}(...) with them instead."
        )
    plan = RetryPlan(original)
    run_logger().info("%s", plan.report())
    return _run_plan(plan, flow, parameters)


def _run_plan(plan: RetryPlan, flow: Any, parameters: dict[str, Any]) -> Any:
    args, kwargs = flow.signature.split(parameters)
    if flow.isasync:

        async def retried() -> Any:
            token = starting_retry.set(plan)
            try:
                return await flow(*args, **kwargs)
            finally:
                starting_retry.reset(token)

        return retried()
    token = starting_retry.set(plan)
    try:
        return flow(*args, **kwargs)
    finally:
        starting_retry.reset(token)


def settle_reused(
    task: Task,
    run: TaskRun,
    parameters: dict[str, Any],
    wait_for: Any,
    upstream: Upstream,
    flow_ctx: FlowRunContext,
    future: TaskFuture | None = None,
) -> State | None:
    """End a just-recorded run Cached now, in this thread, if its retry reuses it.

    Returns:
        Its final state; None if it is not reused or cannot be decided yet: then it
        runs its lifecycle as any run does (which decides reuse after its waits).
    """
    plan: RetryPlan | None = flow_ctx.retry_plan
    if plan is None or task.on_completion_hooks or not flow_ctx.gate.open:
        return None
    if upstream.futures and not all(f.done() for f in upstream.futures):
        return None
    if upstream.needs_resolving or wait_for:
        parameters = resolve_inputs(task, run, parameters, wait_for)
        if isinstance(parameters, State):  # a failed upstream: not reused, its lifecycle
            return None  # fails it as usual
    reused = plan.reused_state(task, run, parameters)
    if reused is None:
        return None
    try:
        settle(task, run, reused)  # no hooks apply: a run with completion hooks is not here
    finally:
        if future is not None:
            future._resolve()
    return run.state


_LIVE = object()


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
        message = f"reused from {original.name} of flow run {self.original.name}"
        if isinstance(original.value, StoredValue):
            message += " (read from the result store)"
        elif holds is None:
            message += " (not checked for changes made in place: too large to digest)"
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

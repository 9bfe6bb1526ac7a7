"""Run records: what happened in each task run and flow run, and the one ``set_state``.

Records outlive their runs (``kernelflow.last_run()``), so they hold only plain data:
names, parameters, states, timings and upstream edges; never runners or threads.
The visualizer and the live displays read them; only the engine writes them.
"""

from __future__ import annotations

import inspect
import itertools
import time
from typing import Any

from kernelflow import _digests, _events, _layer_hooks
from kernelflow._events import Observer, every_run
from kernelflow._lazy_imports import uuid
from kernelflow._run_ids import STRIPES, new_id_bits, stripe_lock
from kernelflow.exceptions import InvalidStateTransition, RunValuesReleased
from kernelflow.states import (
    FINAL_TYPES,
    RELEASED,
    TRANSITIONS,
    Running,
    State,
    StateType,
    _new_state,
)

# How many of the latest top-level flow runs keep their values (results, errors,
# inputs): what FlowRun.retry() and state.result() need. Older records keep names,
# states, times and edges only (``_run_history``), so a kernel running a flow every few
# seconds all day stays flat.
RUN_VALUES_KEPT = 5


# ``State.result`` as written, without the look at its call site that serves
# ``await state.result()`` in user code: kernelflow's own calls are never awaited, and
# that look costs about a microsecond per run.
result_of = inspect.unwrap(State.result)


class _Run:
    """What task runs and flow runs share: identity, state, history, timings, observers.

    ``state`` and ``history`` are its states; ``created``, ``start_time`` and
    ``end_time`` the ``time.time()`` it was made (Pending), first ran and ended.
    """

    __slots__ = (
        "_id_bits",
        "_uuid",
        "name",
        "parameters",
        "_state",
        "_history",
        "_prefix",
        "created",
        "start_time",
        "end_time",
        "tags",
        "_observers",
        "__weakref__",
    )

    def __init__(self, name: str, parameters: dict[str, Any], tags: frozenset[str]) -> None:
        self._id_bits = new_id_bits()  # the UUID object on first use (see _run_ids)
        self._uuid: uuid.UUID | None = None
        self.name = name
        self.parameters = parameters
        self.tags = tags
        # Pending from now on; its State is made when first read (see ``history``).
        self.created = time.time()
        self._prefix = 1
        self._state: State | None = None
        self._history: list[State] | None = None  # see _made_states
        self.start_time: float | None = None  # time.time() of the first RUNNING state
        self.end_time: float | None = None  # time.time() of the final state
        self._observers: tuple[Observer, ...] = ()

    @property
    def state(self) -> State:
        """The run's current state."""
        state = self._state
        return state if state is not None else self.history[-1]

    @state.setter
    def state(self, state: State) -> None:  # a record read back, or its values released
        self._made_history()  # first: the state set must not stand for the one it replaces
        self._state = state

    @property
    def state_type(self) -> StateType:
        """The current state's type, without making a state still recorded as its time
        (a display counts runs by it ten times a second)."""
        state = self._state
        if state is not None:
            return state.type
        prefix = self._prefix  # read after _state: 0 means made meanwhile
        if prefix:
            return _RUNNING if prefix == 2 else _PENDING
        return self.state.type

    @property
    def history(self) -> list[State]:
        """Every state the run has been in, in order.

        A run's first states, Pending as it is made and Running as its body starts
        (when nobody watches it), are recorded as their times (``created``,
        ``start_time``) and made into States here, when first asked for: every run has
        them, and most runs are never looked at state by state. Made once, under the
        run's lock, so that each is the same object ever after.
        """
        return self._made_history()

    @history.setter
    def history(self, history: list[State]) -> None:  # a record read back, or released
        self._prefix = 0
        self._history = history
        if history:  # a record read back was made when its first state says, not now
            self.created = history[0].timestamp

    def _made_history(self) -> list[State]:
        if self._prefix:
            with STRIPES[self._id_bits & 63]:
                self._make_prefix()
        return self._history  # type: ignore[return-value]  (made: a list)

    def _record_start(self) -> None:
        """Running from now, recorded as its time (``history``): for a run in its first
        Pending that nobody watches, with its lock held (``set_state``) or before any
        other thread can see it (a run made as its body starts)."""
        self.start_time = time.time()
        self._prefix = 2  # after its time: history_rows and state_type read without the lock

    def _make_prefix(self) -> None:
        """Make the States of the states recorded as times (with the run's lock held)."""
        if not self._prefix:
            return
        made = [_new_state(kind, name, None, None, at) for kind, name, at in self._unmade()]
        self._history = made + self._made_states()
        if self._state is None:
            self._state = made[-1]
        self._prefix = 0

    def _unmade(self) -> list[tuple[StateType, str, float]]:
        """The states still recorded as times, as ``(type, name, timestamp)``."""
        if not self._prefix:
            return []
        unmade = [(_PENDING, "Pending", self.created)]
        if self._prefix == 2:
            unmade.append((_RUNNING, "Running", self.start_time))
        return unmade

    def _made_states(self) -> list[State]:
        """The States after those still recorded as times. A run's first made State (a
        plain run's final one) is held as ``_state`` alone: the list begins with its
        second, or when the history is read, so most runs never have one."""
        if self._history is not None:
            return self._history
        return [] if self._state is None else [self._state]

    def holds(self, state: State) -> bool:
        """Whether ``state`` is one of this run's States (made ones only: a state still
        recorded as its time cannot be held by anyone)."""
        return self._state is state or any(held is state for held in self._history or ())

    def history_rows(self) -> list[tuple[StateType, str, str | None, float]]:
        """The history as ``(type, name, message, timestamp)``, without making the
        States of the states recorded as times (the run history writes every run)."""
        # Under the run's lock: a reader making the States meanwhile would otherwise have
        # them counted twice, as times and as made
        with STRIPES[self._id_bits & 63]:
            rows = [(kind, name, None, at) for kind, name, at in self._unmade()]
            rows += [(s.type, s.name, s.message, s.timestamp) for s in self._made_states()]
        return rows

    @property
    def id(self) -> uuid.UUID:
        run_id = self._uuid
        if run_id is None:
            run_id = self._uuid = uuid.UUID(int=self._id_bits)
        return run_id

    @property
    def duration(self) -> float | None:
        """Seconds from the first Running state to the final state (so far, if running)."""
        if self.start_time is None:
            return None
        return (self.end_time or time.time()) - self.start_time

    def _release_values(self) -> None:
        """Drop the values this record holds (results, errors, inputs), keep the rest."""
        self.parameters = {name: RELEASED for name in self.parameters}
        self.history = [s if s.data is None else s.without_data() for s in self.history]
        self.state = self.history[-1]

    def subscribe(self, observer: Observer) -> None:
        """Call ``observer(run, old, new)`` on each state change of this run only."""
        with stripe_lock(self._id_bits):
            self._observers = (*self._observers, observer)


_PENDING = StateType.PENDING
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED


def set_state(run: _Run, state: State | StateType) -> bool:
    """Move ``run`` to ``state``: the only place a run's state changes.

    ``state`` may be ``StateType.RUNNING`` alone, for a run whose body starts now: if
    the run is still in its first Pending and nobody watches it, the start is recorded
    as its time, and its State made when first read (``_Run.history``); else a plain
    ``Running()`` is made now.

    Returns:
        True if the run moved; False if it had already reached a final state elsewhere
        (a run cancelled by an interrupt whose abandoned thread finishes later).

    Raises:
        InvalidStateTransition: for any other transition the table forbids.
    """
    # acquire and release, not ``with``: half the cost, and every run passes here twice
    lock = STRIPES[run._id_bits & 63]
    lock.acquire()
    try:
        old = run._state
        observers = run._observers
        if state is _RUNNING:  # a start told by its type alone
            if old is None and run._prefix == 1 and not (observers or every_run.observers):
                run._record_start()  # from its first Pending, which the table allows
                return True
            state = Running()
        new = state.type
        if old is None:  # still in its states recorded as times
            allowed = TRANSITIONS[_RUNNING if run._prefix == 2 else _PENDING]
        else:
            allowed = TRANSITIONS[old.type]
        if new not in allowed:
            if old is not None and old.is_final():
                return False
            run._make_prefix()
            raise InvalidStateTransition(
                f"{type(run).__name__} {run.name!r} cannot move from {run._state.name} "
                f"to {state.name}."
            )
        watched = observers or every_run.observers
        if watched and old is None:  # observers are told of States
            run._make_prefix()
            old = run._state
        run._state = state
        history = run._history
        if history is not None:
            history.append(state)
        elif old is not None:  # its second made State: the list begins (_made_states)
            run._history = [old, state]
        if new is _RUNNING:
            if run.start_time is None:
                run.start_time = state.timestamp
        elif new in FINAL_TYPES:
            run.end_time = state.timestamp
    finally:
        lock.release()
    if new is _COMPLETED and type(run) is TaskRun:
        # Taken now, as it ends: a later step may change its inputs or result in place,
        # and a retry must not reuse what it changed (see _digests).
        run.digests = _digests.take(run.parameters, state.data)
    if watched:  # no call at all while nobody watches
        _events.notify(run, old, state, observers)
    return True


_NO_EDGES: dict[str, frozenset[uuid.UUID]] = {}  # shared: never mutated


class TaskRun(_Run):
    """The record of one run of a task.

    Attributes:
        task: The Task that ran.
        flow_run: The FlowRun it ran in, or None outside any flow.
        upstream: For each parameter (and ``"wait_for"``), the ids of the task runs it
            depends on, from futures passed in and from results passed by value.
        possible_upstream: For a parameter given a small shared value (a small int,
            None, a bool, a one-character string), which carries no lineage, the run
            that last returned an equal value in this flow run: it may have come from
            there. Drawn as a dotted edge; never counted as a dependency.
        map_index: The position in a ``.map()`` call, or None.
        map_group: An id shared by the runs of one ``.map()`` call, or None.
        worker: The name of the thread (or process) the run executed on.
        run_count: How many attempts have started (retries add to it).
        transaction: While the run is unfinished, the transaction it belongs to (its
            own, if its task has commit or rollback hooks); None after.
        digests: Once completed, the content digests of its inputs that could change
            and of its result (``_digests.take``), for ``FlowRun.retry()``.
        cache_key: Its cache lookup, if its task caches: where its result went in the
            result store, which the run history links it to.
    """

    __slots__ = (
        "task",
        "flow_run",
        "upstream",
        "possible_upstream",
        "map_index",
        "map_group",
        "worker",
        "run_count",
        "transaction",
        "digests",
        "cache_key",
    )

    def __init__(
        self,
        task: Any,
        name: str,
        parameters: dict[str, Any],
        flow_run: FlowRun | None,
        tags: frozenset[str],
        upstream: dict[str, frozenset[uuid.UUID]],
        map_index: int | None = None,
        map_group: int | None = None,
        transaction: Any = None,
        possible_upstream: dict[str, frozenset[uuid.UUID]] = _NO_EDGES,
        started: bool = False,
    ) -> None:
        """``started``: its body starts now, in this thread (a plain direct call). Unless
        someone watches (observers are told of the start by ``set_state``), the record
        is made Running, as ``set_state`` would record it, without its lock and call."""
        _Run.__init__(self, name, parameters, tags)  # not super(): a share of a trivial run
        if started and not every_run.observers:
            self._record_start()
        self.transaction = transaction
        self.task = task
        self.flow_run = flow_run
        self.upstream = upstream
        self.possible_upstream = possible_upstream
        self.map_index = map_index
        self.map_group = map_group
        self.worker: str | None = None
        self.run_count = 0
        self.digests: tuple[dict[str, str] | None, str] | None = None
        self.cache_key: Any = None  # a CacheLookup (its store, key and serializer)

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def flow_run_id(self) -> uuid.UUID | None:
        """The id of the flow run it ran in (Prefect's name); None outside any flow."""
        return None if self.flow_run is None else self.flow_run.id

    @property
    def upstream_ids(self) -> frozenset[uuid.UUID]:
        """Every task run this one depends on, over all parameters and ``wait_for``."""
        return frozenset().union(*self.upstream.values()) if self.upstream else frozenset()

    def __repr__(self) -> str:
        return f"TaskRun(name={self.name!r}, state={self.state!r})"


class FlowRun(_Run):
    """The record of one run of a flow: its task runs, subflow runs and their edges.

    Attributes:
        flow: The Flow that ran.
        parent: The FlowRun this one ran inside (a subflow), or None.
        task_runs: Task runs started in this flow run, in the order they were created.
        subflow_runs: Flow runs started inside this one, in order.
        upstream: For a subflow, the ids of the task runs its parameters came from.
        worker: The name of the thread the flow body ran on.
        asset_events: The assets its task runs read and materialized (``AssetEvent``s,
            in the order the runs ended; subflow runs keep their own).
        task_sources: Once ended, each task's source digest, for ``retry()``.
    """

    __slots__ = (
        "flow",
        "parent",
        "task_runs",
        "subflow_runs",
        "upstream",
        "worker",
        "asset_events",
        "_name_counters",
        "_result_links",
        "_small_results",
        "_map_groups",
        "retry_of",
        "task_sources",
        "_values_released",
    )

    def __init__(
        self,
        flow: Any,
        name: str,
        parameters: dict[str, Any],
        parent: FlowRun | None = None,
        upstream: dict[str, frozenset[uuid.UUID]] | None = None,
        tags: frozenset[str] = frozenset(),
    ) -> None:
        _Run.__init__(self, name, parameters, tags)  # not super(): a share of a trivial run
        self._observers = _events.flow_run_observers()
        self.flow = flow
        self.parent = parent
        self.task_runs: list[TaskRun] = []
        self.subflow_runs: list[FlowRun] = []
        self.upstream = upstream or {}
        self.worker: str | None = None
        self.asset_events: list[Any] = []  # AssetEvent: assets its task runs read or made
        self._name_counters: dict[str, itertools.count[int]] = {}
        # id(result object) -> the task (or subflow) run that returned it, so a result
        # passed by value into another task still draws an edge. The run's state holds
        # the object, so its id cannot be reused while this record lives.
        self._result_links: dict[int, TaskRun | FlowRun] = {}
        # (type, value) -> the run that last returned that small shared value, which
        # identity cannot trace (see ``TaskRun.possible_upstream``).
        self._small_results: dict[tuple[type, Any], TaskRun | FlowRun] = {}
        self._map_groups = itertools.count()
        self.retry_of: FlowRun | None = None  # the run this one retried (FlowRun.retry)
        self.task_sources: dict[str, str] | None = None  # task name -> source digest
        self._values_released = False

    @property
    def flow_name(self) -> str:
        return self.flow.name

    def next_run_number(self, task_name: str) -> int:
        """0, 1, 2... for each run of the same task in this flow run (for run names)."""
        counter = self._name_counters.get(task_name)
        if counter is None:
            counter = self._name_counters.setdefault(task_name, itertools.count())
        return next(counter)

    def next_map_group(self) -> int:
        return next(self._map_groups)

    def link_result(self, task_run: TaskRun | FlowRun, result: Any) -> None:
        """Remember that ``result`` (and its items, one level deep) came from ``task_run``
        (or from a subflow run)."""
        kind = type(result)
        if kind is int or result is None:  # the usual results of small tasks (as _linkable)
            if result is None or -5 <= result <= 256:  # shared by unrelated code: by value
                self._small_results[(kind, result)] = task_run
            else:
                self._result_links[id(result)] = task_run
            return
        links = self._result_links
        linkable = _linkable(result)
        if not linkable and type(result) in _SMALL_TYPES:
            self._small_results[(type(result), result)] = task_run
        elif linkable:
            links[id(result)] = task_run
            if isinstance(result, (list, tuple, set, frozenset)):
                items = result
            elif isinstance(result, dict):
                items = result.values()
            else:
                return
            for item in itertools.islice(items, 1000):
                if _linkable(item):
                    links[id(item)] = task_run

    def possible_producer_of(self, value: Any) -> uuid.UUID | None:
        """The run that last returned a small shared value equal to ``value`` (of its
        type) in this flow run: it may be where ``value`` came from."""
        small = self._small_results
        if not small or type(value) not in _SMALL_TYPES:
            return None
        producer = small.get((type(value), value))
        return producer.id if producer is not None else None

    def producer_of(self, value: Any) -> uuid.UUID | None:
        """The task run that returned ``value`` in this flow run, if one did."""
        producer = self._result_links.get(id(value)) if self._result_links else None
        return producer.id if producer is not None else None

    def retry(self) -> Any:
        """Run this flow run's flow again, with the same parameters and in the same way
        (an async flow gives an awaitable), reusing the results of its completed task
        runs whose task and inputs are unchanged; the rest runs (see
        ``kernelflow._engine.resume``). The retry is a new flow run, its ``retry_of``
        this one.

        Raises:
            RunValuesReleased: this run is too old: its results were released.
        """
        return _layer_hooks.retry_flow_run(self)

    def check_values_kept(self) -> None:
        """Raises RunValuesReleased if this run's values were released."""
        if self._values_released:
            raise RunValuesReleased(
                f"Flow run {self.name!r} is too old to retry from: its results were released "
                f"(kernelflow keeps the values of the latest {RUN_VALUES_KEPT} flow runs). "
                "Re-run the flow."
            )

    def release_values(self) -> None:
        """Drop the values of this finished run and its task runs and subflow runs
        (results, errors, inputs); names, states, times and edges stay."""
        if self._values_released or not self.state.is_final():
            return
        self._values_released = True
        for run in self.task_runs:
            run._release_values()
        for sub in self.subflow_runs:
            sub.release_values()
        self._result_links = {}
        self._small_results = {}
        self._release_values()

    def logs(self) -> Any:
        """Its log lines (its task runs' and subflows' included), from the run history:
        a list of ``(time, level, run name, message)``, shown as lines of text."""
        root = self
        while root.parent is not None:
            root = root.parent
        return _layer_hooks.run_logs(root)

    def timeline(self) -> Any:
        """Which worker ran which task run, and when: a chart in a notebook."""
        return _layer_hooks.run_timeline(self)

    def graph(self, expand_maps: bool = False) -> Any:
        """A ``graphviz.Digraph`` of what ran, nodes coloured by final state, with durations.

        Args:
            expand_maps: One node per mapped run instead of one per ``.map()`` call.
        """
        return _layer_hooks.run_graph(self, expand_maps)

    def __repr__(self) -> str:
        return f"FlowRun(name={self.name!r}, state={self.state!r}, task_runs={len(self.task_runs)})"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return _layer_hooks.rich_display("flow", self)


_SMALL_TYPES = frozenset({int, bool, str, bytes, type(None)})


def _linkable(value: Any) -> bool:
    # Singletons and cached small values are shared by unrelated code, so an identity
    # link through them would draw false edges (the seed engine makes the same cut).
    if value is None or value is Ellipsis or value is NotImplemented or isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -5 <= value <= 256
    if isinstance(value, (str, bytes)):
        return len(value) > 1
    return True

"""The cache steps of a task run: look up before the first attempt, store on success.

    lookup = yield from cache_lookup(task, run, parameters, flow_ctx)
        None          the task asks for no caching (or its key could not be computed)
        .state set    finish with it without running: Cached, or Failed (unsafe store)
        otherwise     run the attempts, then ``lookup.record(state)`` and ``release()``

Its first look (the key, the store, the entry) is ``first_look``, which takes no effect:
a direct call takes it before any lifecycle and settles a hit there (``cache_hits.py``),
and gives a miss to the lifecycle as ``looked``, which then only claims the key.

Only tasks whose ``Task.caches`` is true get here: a cache policy, ``cache_key_fn`` or
``result_storage_key`` asks for a key, and ``persist_result`` is not False. Options that
say where results go (``result_storage``, ``result_serializer``, ``persist_result=True``)
have nothing to do without a key.

Two identical runs in flight in one process run once: the first claims the key, the
second waits for the claim (``AwaitClaim``) and then finds the first one's result (see
``claims.py``). A claim held by sync code of the waiting thread itself (a task calling
itself) is never waited for; async runs on one loop wait for each other.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelflow._engine.claims import Claim
from kernelflow._engine.effects import AwaitClaim, Lifecycle, TakeClaim
from kernelflow._engine.streaming import StoppedEarly
from kernelflow._logging import run_logger
from kernelflow._results.keys import Part, combine, why_unhashable
from kernelflow._results.policies import KeyContext, KeyFnPolicy
from kernelflow._results.reasons import explain_miss
from kernelflow._results.serializers import get_serializer
from kernelflow._results.store import Store, store_for
from kernelflow._stored import StoredResult
from kernelflow._transactions import enclosing
from kernelflow.exceptions import UnsafeCacheDirectory
from kernelflow.states import Cached, Failed, State

if TYPE_CHECKING:
    from kernelflow._context import FlowRunContext
    from kernelflow._runs import TaskRun
    from kernelflow.tasks import Task


@dataclass(slots=True)
class CacheLookup:
    """The outcome of the lookup step, and what the store step needs."""

    store: Store | None = None
    key: str = ""
    task_id: str = ""
    parts: list[Part] = dataclasses.field(default_factory=list)
    reason: str = ""
    state: State | None = None
    claim: Claim | None = None
    serializer: Any = None  # the task's result_serializer, else its flow's

    def record(self, task: Task, run: TaskRun, state: State) -> State:
        """Store a completed run's result; the state, with why it ran as its message.

        Inside a transaction the entry is written when the outermost one commits, and
        never if it rolls back."""
        if not state.is_completed():
            return state
        if isinstance(state.data, StoppedEarly):
            return dataclasses.replace(state, message=f"{self.reason}; {_STOPPED_EARLY}")
        txn = enclosing(run)
        if txn is not None:
            txn.defer(functools.partial(self._save, task, run, state.data))
            return dataclasses.replace(state, message=self.reason)
        if not self._save(task, run, state.data):
            return dataclasses.replace(state, message=f"{self.reason}; result not cached")
        if task.cache_result_in_memory is False:  # the record keeps where it is, not it
            return dataclasses.replace(state, message=self.reason, data=self._stored())
        return dataclasses.replace(state, message=self.reason)

    def _stored(self) -> StoredResult:
        return StoredResult(self.store, self.key, self.serializer)

    def _save(self, task: Task, run: TaskRun, value: Any) -> bool:
        created = time.time()
        expiration = task.cache_expiration
        meta = {
            "task": task.name,
            "task_id": self.task_id,
            "created": created,
            "expires": created + expiration.total_seconds() if expiration else None,
        }
        try:
            self.store.save(self.key, value, get_serializer(self.serializer), meta)
            self.store.remember_parts(self.task_id, self.parts, persist=True)
        except Exception as error:
            if isinstance(error, (OSError, UnsafeCacheDirectory)):
                run_logger(task_run=run).warning("Result not cached: %r", error)
            else:  # Prefect's words for it
                run_logger(task_run=run).warning(
                    "Encountered an error while serializing result: %r. Result not cached; "
                    "the run goes on.",
                    error,
                )
            return False
        return True

    def release(self, cancelled: str | None = None) -> None:
        """Let identical runs waiting on this one go on (``cancelled``: why no result)."""
        if self.claim is not None:
            self.claim.release(cancelled)
            self.claim = None


# What a first look gives the lifecycle for a run that asks for no caching after all.
NOT_CACHED = CacheLookup()


def cache_lookup(
    task: Task,
    run: TaskRun,
    parameters: dict[str, Any],
    flow_ctx: FlowRunContext | None,
    looked: CacheLookup | None = None,
) -> Lifecycle[CacheLookup | None]:
    """Find the run's cached result, or claim its key so that an identical run waits.

    ``looked``: what ``first_look`` gave for this run already (a direct call takes its
    first look before any lifecycle, ``cache_hits.py``): a miss, or ``NOT_CACHED``."""
    lookup = first_look(task, run, parameters, flow_ctx) if looked is None else looked
    if lookup is None or lookup is NOT_CACHED:
        return None
    if lookup.state is not None:
        return lookup
    store = lookup.store
    deadline = flow_ctx.deadline if flow_ctx else None
    while True:
        claim_key = f"{store.root}/{lookup.key}"
        claim = yield TakeClaim(claim_key)
        if claim.owned:
            lookup.claim = claim
            why = Claim.why_missing(claim_key)
            if why is not None:
                lookup.reason = f"cache miss: {why}, so it runs again"
                run_logger(task_run=run).info("Running again: %s.", why)
            return lookup
        if not (yield AwaitClaim(claim, deadline)):
            return lookup  # not worth waiting (same thread, or out of time): just run
        found = _find(task, run, lookup)  # the other run has finished: look again
        if found is not None:
            lookup.state = found
            return lookup


def first_look(
    task: Task, run: TaskRun, parameters: dict[str, Any], flow_ctx: FlowRunContext | None
) -> CacheLookup | None:
    """The run's key, and what its store holds under it: ``.state`` set for a hit (or a
    Failed run, for an unsafe store), else why it missed as ``.reason``. None: the run
    is not cached (its key could not be computed, or the store cannot be used)."""
    lookup = _compute_key(task, run, parameters, flow_ctx)
    if lookup is None:
        return None
    run.cache_key = lookup  # the run history links the run to its entry in the store
    store = lookup.store
    try:
        store.prepare()
    except UnsafeCacheDirectory as error:
        lookup.state = Failed(error)
        return lookup
    except OSError as error:  # e.g. KERNELFLOW_HOME cannot be created: run uncached
        _warn_once(run, lookup.task_id, f"the result store is unusable ({error})")
        return None
    if lookup.parts[0][0] == "storage_key":  # the user's words: maybe no file name
        problem = store.key_problem(lookup.key)
        if problem is not None:
            why = f"result_storage_key {lookup.key!r} cannot name a file in the store ({problem})"
            _warn_once(run, lookup.task_id, why)
            return None
    if task.refresh_cache:
        lookup.reason = "cache refresh: refresh_cache=True"
    else:
        lookup.state = _find(task, run, lookup)
    return lookup


def _find(task: Task, run: TaskRun, lookup: CacheLookup) -> State | None:
    """The state to finish with (Cached; Failed for an unsafe store), or None for a miss,
    with the reason for the miss set."""
    store = lookup.store
    try:
        loaded = store.load(lookup.key, get_serializer(lookup.serializer))
    except UnsafeCacheDirectory as error:
        return Failed(error)
    if loaded.status == "hit":
        store.remember_parts(lookup.task_id, lookup.parts, persist=False)
        if task.cache_result_in_memory is False:
            return Cached(lookup._stored())
        return Cached(loaded.value)
    if loaded.status == "expired":
        lookup.reason = "cache miss: the cached result expired"
    elif loaded.status == "unreadable":
        run_logger(task_run=run).warning(
            "Cache entry %s could not be loaded (%s); running the task again, and its "
            "result will replace the entry.",
            store.path(lookup.key),
            loaded.detail,
        )
        lookup.reason = f"cache miss: the cached entry could not be loaded ({loaded.detail})"
    else:
        lookup.reason = explain_miss(
            store.miss_baseline(lookup.task_id, lookup.parts), lookup.parts, task.name
        )
    return None


def _compute_key(
    task: Task, run: TaskRun, parameters: dict[str, Any], flow_ctx: FlowRunContext | None
) -> CacheLookup | None:
    # The namespace was fixed when the task was made: a task whose fn is later replaced
    # by the same code finds its entries (as Prefect's task_key does).
    task_id = f"{task.name}|{task.cache_namespace}"
    flow = flow_ctx.flow if flow_ctx is not None else None
    # A task's own result options win; its flow's fill in those it left unset.
    storage = task.result_storage
    serializer = task.result_serializer
    if flow is not None:
        storage = storage if storage is not None else flow.result_storage
        serializer = serializer if serializer is not None else flow.result_serializer
    store = store_for(storage)
    if task.result_storage_key is not None:
        try:
            key = _storage_key(task, run, parameters, flow_ctx)
        except Exception as error:
            _warn_once(run, task_id, f"result_storage_key could not be formatted ({error!r})")
            return None
        return CacheLookup(store, key, task_id, [("storage_key", key)], serializer=serializer)
    policy = KeyFnPolicy(task.cache_key_fn) if task.cache_key_fn else task.cache_policy
    try:
        parts = policy.parts(KeyContext(task, run, parameters, flow_ctx))
    except Exception as error:
        _warn_once(run, task_id, f"its cache key could not be computed ({error!r})")
        return None
    if not parts:
        return None
    if None in map(_digest_of, parts):  # an unhashable part (no comprehension per run)
        unhashable = [label for label, value in parts if value is None]
        details = f". {why_unhashable(parameters)}" if "inputs" in unhashable else ""
        _warn_once(run, task_id, _UNHASHABLE.format(", ".join(unhashable)) + details)
        return None
    return CacheLookup(store, combine(task_id, parts), task_id, parts, serializer=serializer)


_digest_of = operator.itemgetter(1)  # of a key part (label, digest)


def _storage_key(task: Task, run: TaskRun, parameters: dict, flow_ctx: Any) -> str:
    flow_run = flow_ctx.flow_run if flow_ctx else None
    key = task.result_storage_key.format(
        **parameters, parameters=parameters, task_run=run, flow_run=flow_run
    )
    if key.startswith(("/", "\\")) or ".." in key.replace("\\", "/").split("/"):
        raise ValueError(f"result_storage_key {key!r} must be a relative path inside the store")
    return key


# Prefect's advice, worded as Prefect words it (ported code and readers know it).
_UNHASHABLE = (
    "cannot hash {} for its cache key. This often occurs when task inputs contain "
    "objects that cannot be cached like locks, file handles, or other system resources. "
    "To resolve this, you can: 1. Exclude these arguments by defining a custom "
    "`cache_key_fn`; 2. Disable caching by passing `cache_policy=NO_CACHE`"
)

_STOPPED_EARLY = "result not cached: the caller stopped iterating early"

_warned: set[tuple[str, str]] = set()


def _warn_once(run: TaskRun, task_id: str, problem: str) -> None:
    if (task_id, problem) not in _warned:
        _warned.add((task_id, problem))
        run_logger(task_run=run).warning("Not cached: %s.", problem)

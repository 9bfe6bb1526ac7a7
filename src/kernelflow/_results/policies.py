"""Cache policies: what goes into a task run's cache key.

A policy turns a run into key parts (see ``keys.Part``); the key is the hash of the
task's identity and all parts. A policy that gives no parts asks for no caching. Parts
combine with ``+``; ``INPUTS - "arg"`` leaves an argument out.

Every policy also has Prefect's ``compute_key(task_ctx, inputs, flow_parameters)``,
which gives its key alone (None: nothing to key on), so Prefect code that calls it on a
built-in policy, or builds its own policy on one, works. The engine uses the parts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kernelflow._context import TaskRunContext
from kernelflow._results.keys import Part, combine, hash_value
from kernelflow._results.source import source_parts


@dataclass(slots=True)
class KeyContext:
    """What a policy may read: the task, its run, the run's parameters, the flow context."""

    task: Any
    task_run: Any
    parameters: dict[str, Any]
    flow_ctx: Any = None


class CachePolicy:
    """Base class of cache policies; combine them with ``+``.

    A policy of your own defines, as in Prefect, ``compute_key(task_ctx, inputs,
    flow_parameters, **kwargs)`` returning a string key, or None for no caching.
    """

    def parts(self, context: KeyContext) -> list[Part]:
        flow_ctx = context.flow_ctx
        key = self.compute_key(
            TaskRunContext(context.task, context.task_run),
            context.parameters,
            flow_ctx.flow_run.parameters if flow_ctx is not None else {},
        )
        return [] if key is None else [("key_fn", str(key))]

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        raise NotImplementedError(f"{type(self).__name__} must define compute_key()")

    def __add__(self, other: CachePolicy) -> CachePolicy:
        """Both policies' keys: a compound policy, keeping the configuration of either
        (``configure``). NO_CACHE adds nothing, as in Prefect.

        Raises:
            ValueError: both are configured, differently.
        """
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(self, NoCache):
            return other
        if isinstance(other, NoCache):
            return self
        settings = {}
        for name, what in _SETTINGS:
            mine, theirs = getattr(self, name, None), getattr(other, name, None)
            if mine is not None and theirs is not None and mine != theirs:
                raise ValueError(f"Cannot add CachePolicies with different {what}.")
            settings[name] = mine if mine is not None else theirs
        compound = CompoundPolicy((*_members(self), *_members(other)))
        for name, value in settings.items():
            if value is not None:
                object.__setattr__(compound, name, value)
        return compound

    def __sub__(self, name: str) -> CachePolicy:
        """Leave parameter ``name`` out of the inputs hashed by this policy."""
        if not isinstance(name, str):
            return NotImplemented
        return self

    def configure(
        self,
        key_storage: Any = None,
        lock_manager: Any = None,
        isolation_level: Any = None,
    ) -> CachePolicy:
        """A copy of this policy whose tasks keep their results in ``key_storage``.

        ``key_storage`` is a directory (a path, or an object with a ``basepath`` such as
        Prefect's ``LocalFileSystem``): a task with this policy and no
        ``result_storage`` of its own stores there. kernelflow keeps a cache key and its
        result in one file, so this is where both go. ``lock_manager`` and
        ``isolation_level`` are accepted for Prefect code: two identical runs in one
        process already run once (the second waits for the first), which is what
        Prefect's SERIALIZABLE isolation gives; across processes the last writer wins.
        """
        from kernelflow import _options as check

        policy = copy.copy(self)
        if key_storage is not None:
            object.__setattr__(policy, "key_storage", check.storage("key_storage", key_storage))
        object.__setattr__(policy, "lock_manager", lock_manager)
        object.__setattr__(policy, "isolation_level", isolation_level)
        return policy

    def __eq__(self, other: object) -> bool:
        """Policies without fields are equal by kind (and configuration), as Prefect's
        dataclass policies are: ``RunId() == RunId()``."""
        if type(other) is not type(self):
            return NotImplemented
        return vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash(type(self))

    def __repr__(self) -> str:
        return type(self).__name__


_SETTINGS = (
    ("lock_manager", "lock implementations"),
    ("key_storage", "storage locations"),
    ("isolation_level", "isolation levels"),
)


def _members(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, CompoundPolicy) else (policy,)


@dataclass(frozen=True, slots=True, repr=False)
class CompoundPolicy(CachePolicy):
    """Several policies: the key changes when any of their parts changes.

    As Prefect's ``CompoundCachePolicy``: nested compounds are flattened, NO_CACHE
    members dropped, and several ``Inputs`` merged into one excluding what any of them
    excluded."""

    policies: tuple[CachePolicy, ...] = ()

    def __post_init__(self) -> None:
        flat = [member for policy in self.policies for member in _members(policy)]
        flat = [policy for policy in flat if not isinstance(policy, NoCache)]
        inputs = [policy for policy in flat if isinstance(policy, Inputs)]
        if len(inputs) > 1:
            merged = Inputs(frozenset().union(*(policy.exclude for policy in inputs)))
            at = next(i for i, policy in enumerate(flat) if isinstance(policy, Inputs))
            flat = [policy for policy in flat if not isinstance(policy, Inputs)]
            flat.insert(at, merged)
        object.__setattr__(self, "policies", tuple(flat))

    def parts(self, context: KeyContext) -> list[Part]:
        return [part for policy in self.policies for part in policy.parts(context)]

    def compute_key(
        self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any
    ) -> str | None:
        found = [
            (repr(policy), key)
            for policy in self.policies
            if (key := policy.compute_key(task_ctx, inputs, flow_parameters))
        ]
        return combine("compound", found) if found else None

    def __sub__(self, name: str) -> CachePolicy:
        changed = tuple(policy - name for policy in self.policies)
        if all(new is old for new, old in zip(changed, self.policies, strict=True)):
            return self  # no member hashes inputs: nothing to leave out
        policy = CompoundPolicy(changed)
        for name, value in vars(self).items():  # its configuration (copy.copy drops it)
            object.__setattr__(policy, name, value)
        return policy

    def __repr__(self) -> str:
        return " + ".join(repr(policy) for policy in self.policies)


@dataclass(frozen=True, slots=True, repr=False)
class Inputs(CachePolicy):
    """The run's parameters (less ``exclude``), hashed through JSON or cloudpickle."""

    exclude: frozenset[str] = frozenset()

    def __post_init__(self) -> None:  # Prefect passes a list: Inputs(exclude=["y"])
        object.__setattr__(self, "exclude", frozenset(self.exclude))

    def parts(self, context: KeyContext) -> list[Part]:
        return [("inputs", hash_value(self._kept(context.parameters)))]

    def compute_key(
        self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any
    ) -> str | None:
        return hash_value(self._kept(inputs or {}))

    def _kept(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if not self.exclude:
            return parameters
        return {k: v for k, v in parameters.items() if k not in self.exclude}

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(name, str):
            return NotImplemented
        return Inputs(self.exclude | {name})

    def __repr__(self) -> str:
        return f"INPUTS - {sorted(self.exclude)}" if self.exclude else "INPUTS"


class TaskSource(CachePolicy):
    """The task's code and its helpers' (see ``_results/source.py``)."""

    def parts(self, context: KeyContext) -> list[Part]:
        return source_parts(context.task.fn)

    def compute_key(
        self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any
    ) -> str | None:
        if task_ctx is None:
            return None
        task = task_ctx.task
        return combine("source", source_parts(getattr(task, "fn", task)))  # a Task, or a function

    def __repr__(self) -> str:
        return "TASK_SOURCE"


class _FlowRunPolicy(CachePolicy):
    """A policy over the enclosing flow run; it gives nothing outside any flow."""

    def parts(self, context: KeyContext) -> list[Part]:
        if context.flow_ctx is None:
            return []
        return [self.part(context.flow_ctx.flow_run)]

    def part(self, flow_run: Any) -> Part:
        raise NotImplementedError


class FlowParameters(_FlowRunPolicy):
    """The parameters of the flow run the task runs in."""

    def part(self, flow_run: Any) -> Part:
        return ("flow_parameters", hash_value(flow_run.parameters))

    def compute_key(
        self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any
    ) -> str | None:
        return hash_value(flow_parameters) if flow_parameters else None

    def __repr__(self) -> str:
        return "FLOW_PARAMETERS"


class RunId(_FlowRunPolicy):
    """The id of the flow run: results are reused only within one flow run."""

    def part(self, flow_run: Any) -> Part:
        return ("run_id", flow_run.id.hex)

    def compute_key(
        self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any
    ) -> str | None:
        """The flow run's id; outside a flow, the task run's own (as in Prefect)."""
        run = getattr(task_ctx, "task_run", None)
        if run is None:
            return None
        flow_run_id = getattr(run, "flow_run_id", None)
        return str(flow_run_id if flow_run_id is not None else run.id)

    def __repr__(self) -> str:
        return "RUN_ID"


class NoCache(CachePolicy):
    """No key at all: never cache."""

    def parts(self, context: KeyContext) -> list[Part]:
        return []

    def compute_key(
        self, task_ctx: Any, inputs: Any, flow_parameters: Any, **kwargs: Any
    ) -> str | None:
        return None

    def __repr__(self) -> str:
        return "NONE"


@dataclass(frozen=True, slots=True, repr=False)
class KeyFnPolicy(CachePolicy):
    """A user's ``cache_key_fn(context, parameters)``; None from it means no caching."""

    fn: Callable[..., str | None] | None = None

    def compute_key(
        self, task_ctx: Any, inputs: dict[str, Any], flow_parameters: dict[str, Any], **kwargs: Any
    ) -> str | None:
        return None if self.fn is None else self.fn(task_ctx, inputs)

    def __repr__(self) -> str:
        return f"cache_key_fn={getattr(self.fn, '__name__', self.fn)!r}"


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NONE = NoCache()
NO_CACHE = NONE  # Prefect's name for it
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID

"""Cache policies for ``@task(cache_policy=...)``: what a run's cache key is made of.

    INPUTS           the run's arguments (``INPUTS - "verbose"`` leaves one out)
    TASK_SOURCE      the task's code, its helper functions' code, closure values
    FLOW_PARAMETERS  the parameters of the enclosing flow run
    RUN_ID           the enclosing flow run's id (reuse within one flow run only)
    NONE, NO_CACHE   no key: never cache
    DEFAULT          INPUTS + TASK_SOURCE + RUN_ID, as in Prefect

Combine with ``+``: ``@task(cache_policy=INPUTS + TASK_SOURCE)`` reuses results across
cells, flow runs and kernel restarts until the inputs or the code change.

As in Prefect 3, only persisted results are cached, and any option about results turns
persistence on: a cache policy, ``cache_key_fn``, ``result_storage``,
``result_serializer``, ``result_storage_key`` or ``persist_result=True``. With
persistence on and no policy given, the policy is DEFAULT (``Task.cache_policy`` reads
DEFAULT even when nothing is cached). With no such option, nothing is cached. A
``cache_key_fn`` takes the place of ``cache_policy`` when both are given;
``persist_result=False`` turns caching off (the policy reads NO_CACHE). Keys are kept
apart per task (its name and qualified name), so two tasks with the same inputs never
share a result.
"""

from kernelflow._results.policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CachePolicy,
    CompoundPolicy,
    FlowParameters,
    Inputs,
    KeyFnPolicy,
    NoCache,
    RunId,
    TaskSource,
)

CompoundCachePolicy = CompoundPolicy  # Prefect's names: the class of a sum of policies,
_None = NoCache  # and of NO_CACHE

__all__ = [
    "CompoundCachePolicy",
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "NONE",
    "RUN_ID",
    "TASK_SOURCE",
    "CachePolicy",
    "CompoundPolicy",
    "FlowParameters",
    "Inputs",
    "KeyFnPolicy",
    "NoCache",
    "RunId",
    "TaskSource",
]

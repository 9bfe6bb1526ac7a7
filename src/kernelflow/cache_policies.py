"""Cache policies for ``@task(cache_policy=...)``: what a run's cache key is made of.

    INPUTS           the run's arguments (``INPUTS - "verbose"`` leaves one out)
    TASK_SOURCE      the task's code, its helper functions' code, closure values
    FLOW_PARAMETERS  the parameters of the enclosing flow run
    RUN_ID           the enclosing flow run's id (reuse within one flow run only)
    NONE             no key: never cache
    DEFAULT          INPUTS + TASK_SOURCE + RUN_ID, as in Prefect

Combine with ``+``: ``@task(cache_policy=INPUTS + TASK_SOURCE)`` reuses results across
cells, flow runs and kernel restarts until the inputs or the code change.

When no cache option is given, kernelflow computes no key and caches nothing. Prefect 3
behaves the same in effect: it only caches when results are persisted, which is off by
default and switched on by setting a cache policy or ``cache_key_fn``. A
``cache_key_fn`` takes the place of ``cache_policy`` when both are given;
``persist_result=False`` turns caching off.
"""

from kernelflow._results.policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
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

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
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

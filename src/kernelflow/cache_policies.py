"""Cache policies for ``@task(cache_policy=...)``: what a run's cache key is made of.

    INPUTS           the run's arguments (``INPUTS - "verbose"`` leaves one out)
    TASK_SOURCE      the task's code, its helper functions' code, closure values
    FLOW_PARAMETERS  the parameters of the enclosing flow run
    RUN_ID           the enclosing flow run's id (reuse within one flow run only)
    NONE             no key: never cache
    DEFAULT          INPUTS + TASK_SOURCE + RUN_ID, as in Prefect

Combine with ``+``: ``@task(cache_policy=INPUTS + TASK_SOURCE)`` reuses results across
cells, flow runs and kernel restarts until the inputs or the code change.

When no cache option is given, kernelflow computes no key and caches nothing. That is
what Prefect 3 does by default too: it caches only results it persists, and it persists
them only when a cache policy or ``cache_key_fn`` is set (or persistence is switched on
globally). A ``cache_key_fn`` takes the place of ``cache_policy`` when both are given;
``persist_result=False`` turns caching off. Keys are kept apart per task (its name and
qualified name), so two tasks with the same inputs never share a result.
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

"""Calling a run's state hooks, the same way for tasks and flows.

Each hook is called ``hook(task_or_flow, run, state)`` here in the session (a
``CallHook`` effect: async hooks are awaited), one after the other. A hook that raises
is logged and the rest still run; the run's state never changes because of a hook.
The log lines are Prefect's, so code and readers that look for them find them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from kernelflow._engine.effects import Lifecycle, call_hook
from kernelflow.states import State


def run_hooks(
    hooks: Sequence[Callable[..., Any]],
    definition: Any,
    run: Any,
    state: State,
    log: logging.Logger | logging.LoggerAdapter,
) -> Lifecycle[None]:
    """Call each hook in turn; log each start and end, and any error."""
    for hook in hooks:
        name = getattr(hook, "__name__", None) or repr(hook)
        log.info("Running hook %r in response to entering state %r", name, state.name)
        outcome = yield call_hook(hook, definition, run, state)
        if outcome.error is None:
            log.info("Hook %r finished running successfully", name)
        else:
            log.error(
                "An error was encountered while running hook %r; the run's state stays %s.",
                name,
                state.name,
                exc_info=outcome.error,
            )

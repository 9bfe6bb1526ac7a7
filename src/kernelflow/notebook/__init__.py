"""Live notebook displays of futures, future lists and flow runs.

A future, a ``.map()`` result or a FlowRun shown in a cell is a live widget (core
ipywidgets only) with ``text/html`` and ``text/plain`` snapshots beside it. A flow called
in a notebook shows its run as it goes; turn that off for a session with

    import kernelflow.notebook
    kernelflow.notebook.settings.display_flow_runs = False

or before the kernel starts with the environment variable ``KERNELFLOW_DISPLAY=0``.

The displays observe runs through ``kernelflow._events``; the engine knows nothing of
them. ipywidgets and IPython are imported only when something is displayed.

Imported in a kernel, this package also makes ``pause_flow_run`` ask in the paused cell:
a form for an awaited async flow, an input line for a sync one (see ``_pause_ui``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable

from kernelflow import _events

__all__ = ["settings"]

ENV_VAR = "KERNELFLOW_DISPLAY"


class Settings:
    """Session-wide display settings."""

    def __init__(self) -> None:
        self._unsubscribe: Callable[[], None] | None = None
        self._lock = threading.Lock()

    @property
    def display_flow_runs(self) -> bool:
        """Whether a top-level flow called in a kernel shows a live FlowRun display."""
        return self._unsubscribe is not None

    @display_flow_runs.setter
    def display_flow_runs(self, enabled: bool) -> None:
        # Subscribed to flow runs only: task runs' state changes never reach the display
        # (it reads their records on its own clock), and with the display off nothing does.
        from kernelflow.notebook._display import keep_logs, on_state_change

        with self._lock:
            if enabled and self._unsubscribe is None:
                self._unsubscribe = _events.subscribe_flow_runs(on_state_change)
            elif not enabled and self._unsubscribe is not None:
                self._unsubscribe()
                self._unsubscribe = None
            keep_logs(enabled)  # a displayed flow's log lines go into its display


settings = Settings()


def install() -> None:
    """Turn on the flow-run display in a kernel, unless ``KERNELFLOW_DISPLAY`` says no.

    Called by ``import kernelflow`` when ipykernel is loaded; harmless anywhere else.
    """
    from kernelflow.notebook._display import in_kernel, register

    if not in_kernel():
        return
    register()  # futures, lists and runs shown in cells: live, then static for keeps
    if os.environ.get(ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off"):
        settings.display_flow_runs = True


def _register_pause_waiter() -> None:
    # The engine's pauses wait on whatever waiter is registered; in a kernel, ours.
    from kernelflow.notebook._display import in_kernel

    if in_kernel():
        from kernelflow.notebook import _pause_ui

        _pause_ui.register()


_register_pause_waiter()

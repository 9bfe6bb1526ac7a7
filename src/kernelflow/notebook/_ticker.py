"""One event loop that refreshes every live display, at most ``1 / interval`` times a second.

Runs change state on worker threads, thousands of times a second; widgets must be
touched from one thread, and a frontend gains nothing from more than ~10 frames a
second. So views are never pushed by state changes: they are *watched*, and a tick on
the display loop copies each watched record's current state into its widgets, then
forgets the views whose runs are final.

The loop is kernelflow's own, on a daemon thread, not the kernel's: a sync flow called
in a cell runs in the kernel's loop thread and blocks that loop until the flow ends, so
updates scheduled there would only arrive when there is nothing left to watch.

Every callback runs in an empty ``contextvars.Context``. asyncio would otherwise run it
in a copy of the scheduling code's context, and ipykernel (7.x) keeps the parent
message in a context variable: every later widget update would then belong to the cell
that first displayed something, and frontends or nbclient that follow the current cell
would drop them. With no context, ipykernel falls back to its shell's current parent.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Protocol

_logger = logging.getLogger("kernelflow.notebook")

INTERVAL = 0.1  # seconds between refreshes: at most ~10 updates a second per display


class View(Protocol):
    def refresh(self) -> bool:
        """Copy the record's state into the widgets; False once there is nothing left to show."""


class Ticker:
    """Refreshes watched views on its own event loop, every ``interval`` seconds.

    Args:
        interval: Seconds between refreshes of a view.
    """

    def __init__(self, interval: float = INTERVAL) -> None:
        self.interval = interval
        self.ticks = 0  # how many refresh rounds ran (tests check the throttling with it)
        self._views: dict[View, None] = {}  # an ordered set, touched on the loop only
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start_lock = threading.Lock()

    def watch(self, view: View) -> None:
        """Refresh ``view`` every tick until it says it is done (safe from any thread)."""
        self._running_loop().call_soon_threadsafe(self._add, view, context=contextvars.Context())

    def refresh_now(self, view: View, timeout: float = 2.0) -> None:
        """Refresh a watched ``view`` on the loop at once and wait until it has.

        A flow run's last frame is sent this way from the thread that ended the run, so
        it leaves the kernel before the cell that called the flow finishes (and lands in
        that cell's saved widget state).
        """
        done = threading.Event()

        def refresh() -> None:
            try:
                if view in self._views and not view.refresh():
                    del self._views[view]
            except Exception:
                _logger.exception("A live display failed to refresh; it stops updating.")
                self._views.pop(view, None)
            finally:
                done.set()

        self._running_loop().call_soon_threadsafe(refresh, context=contextvars.Context())
        done.wait(timeout)

    def close(self) -> None:
        """Stop the loop and its thread (tests; a session's ticker lives as long as it)."""
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
            self._loop = None

    @property
    def watching(self) -> int:
        return len(self._views)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None:
            with self._start_lock:
                loop = self._loop
                if loop is None:
                    loop = self._loop = asyncio.new_event_loop()
                    thread = threading.Thread(
                        target=_run_forever, args=(loop,), name="kernelflow-display", daemon=True
                    )
                    thread.start()
        return loop

    def _add(self, view: View) -> None:
        self._views[view] = None
        if self._handle is None:
            self._schedule_tick()

    def _schedule_tick(self) -> None:
        self._handle = self._loop.call_later(
            self.interval, self._tick, context=contextvars.Context()
        )

    def _tick(self) -> None:
        self._handle = None
        self.ticks += 1
        for view in list(self._views):
            try:
                alive = view.refresh()
            except Exception:  # a broken view stops updating; the runs go on regardless
                _logger.exception("A live display failed to refresh; it stops updating.")
                alive = False
            if not alive:
                del self._views[view]
        if self._views and self._loop is not None:
            self._schedule_tick()


def _run_forever(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


# The session's ticker: cheap to make, its loop and thread start on the first watch.
_ticker = Ticker()


def ticker() -> Ticker:
    """The session's ticker."""
    return _ticker

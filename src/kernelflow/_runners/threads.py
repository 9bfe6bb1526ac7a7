"""The thread runner's runs: queued for pool threads, or asyncio tasks of an async flow.

``ThreadRun`` is a queued run that exactly one thread gets to carry out: a pool thread
when its turn comes, or a pool thread that must wait for it first, which runs it inline
rather than block (``run_inline_if_queued``): that is what keeps nested submission on a
bounded pool from deadlocking. ``RunQueue`` holds the queued runs and the pool jobs that run them.
``LoopRun`` is an async task's run in an async flow, an asyncio task on the flow's loop.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import logging
import threading
import time
from collections import deque
from typing import Any

from kernelflow._engine.drivers import drive_sync
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.plans import plain_call, plain_task, run_plain_handled
from kernelflow._engine.task_engine import task_lifecycle
from kernelflow._lazy_imports import asyncio
from kernelflow._runners.thread_pool import DaemonThreadPool
from kernelflow._scopes.scope import now
from kernelflow._scopes.timers import call_later

_logger = logging.getLogger("kernelflow.task_runner")


class _Worker(threading.local):
    """Marks the threads of a runner's pool, which may run queued work inline."""

    active = False


worker_thread = _Worker()


def mark_worker_thread() -> None:
    worker_thread.active = True


class ThreadRun(RunHandle):
    """A run waiting for, or running on, a pool thread."""

    __slots__ = (
        "_unclaimed",
        "_registry",
        "context",
        "_task",
        "_parameters",
        "_wait_for",
        "_upstream",
        "_flow_ctx",
    )

    def __init__(
        self,
        task: Any,
        run: Any,
        parameters: dict,
        wait_for: Any,
        upstream: Any,
        flow_ctx: Any,
        future: Any,
        registry: dict,
    ) -> None:
        # The lifecycle is made by the thread that runs it, from task_lifecycle's
        # arguments kept here: on a large map the submitting thread does as little as it
        # can (and every object it makes per run is garbage-collector work).
        super().__init__(run, None, future)  # type: ignore[arg-type]
        self._task = task
        self._parameters = parameters
        self._wait_for = wait_for
        self._upstream = upstream
        self._flow_ctx = flow_ctx
        # One token: whoever pops it runs (or cancels) the run. list.pop() is atomic,
        # so claiming needs no lock, which every worker would otherwise contend for.
        self._unclaimed = [True]
        self._registry = registry  # the runner's unfinished runs, left once finished
        self.context: contextvars.Context | None = None  # the submitter's, if queued

    def claim(self) -> bool:
        """True for exactly one caller: the one that gets to run (or cancel) this run."""
        try:
            return self._unclaimed.pop()
        except IndexError:
            return False

    def __call__(self) -> None:
        """The pool's entry point: run unless another thread already claimed it."""
        if self.claim():
            self.run_claimed()

    def run_claimed(self) -> None:
        task, flow_ctx = self._task, self._flow_ctx
        try:
            plain = task._plain
            if (plain or plain is None and plain_task(task)) and plain_call(
                task, self._upstream, self._wait_for, flow_ctx
            ):
                run_plain_handled(self, task, self._parameters, flow_ctx)  # the common case
                return
            self._lifecycle = task_lifecycle(
                task, self.run, self._parameters, self._wait_for, self._upstream, flow_ctx
            )
            drive_sync(self)
        except BaseException:
            # The handle has already given the run its final state (Crashed, or
            # Cancelled for an interrupt raised inside the task); the thread carrying
            # it out must live on to run the next one.
            _logger.debug("Run %r ended abnormally", self.run.name, exc_info=True)

    def run_inline_if_queued(self) -> None:
        if worker_thread.active and self.claim():
            self.run_claimed()

    def _closing(self) -> None:
        self.claim()  # a queued run never starts now: its lifecycle is never made

    def _finish(self) -> None:
        self._registry.pop(self.future, None)
        self.context = None
        super()._finish()


class LoopRun(RunHandle):
    """An async task's run as an asyncio task on its async flow's loop."""

    __slots__ = ("loop", "scheduled")
    stop_note = "its asyncio task was cancelled"

    def __init__(self, run: Any, lifecycle: Any, future: Any, loop: Any) -> None:
        super().__init__(run, lifecycle, future)
        self.loop = loop
        self.scheduled: cf.Future | None = None  # from asyncio.run_coroutine_threadsafe

    def _stop_body(self) -> None:
        if self.scheduled is not None:
            self.scheduled.cancel()  # thread-safe: cancels the asyncio task on its loop

    def runs_on_this_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False


# An unbounded runner starts one drainer for queued runs, and multiplies them by GROWTH
# at each look that finds its runs held up. A 100k map of trivial tasks then runs on one
# thread, the fastest under the GIL: a second thread taking runs too makes the two trade
# the GIL thousands of times a second (eight took 35% longer here). Runs that wait on
# I/O or sleep soon all run at once, as in Prefect: the first look comes
# FIRST_LOOK_SECONDS after the start, and so does the next one after a look that added
# threads (200 one-second sleeps all start within 20 ms); the others, every LOOK_SECONDS.
FIRST_DRAINERS = 1
GROWTH = 4
FIRST_LOOK_SECONDS = 0.005
LOOK_SECONDS = 0.02
# A process that used less than this share of one core since the last look was waiting
# (its runs wait on I/O, a lock or a sleep) rather than working.
IDLE_SHARE = 0.25
# No run finished for this long (and no thread was added meanwhile): long runs hold
# every drainer. Long enough that a garbage collection, which holds every thread for
# tens of ms, is not taken for that.
STALL_SECONDS = 0.04
# A look this much later than the last one measured a pause of the whole process.
LATE_SECONDS = 0.04
_cpu_seconds = time.process_time  # a module attribute, for tests to script


class RunQueue:
    """A runner's queued thread runs, and the pool jobs ("drainers") that run them.

    Each drainer runs queued runs, in order, until none is left; so a busy pool takes
    its next run without a pool job, a thread wake-up or a lock per run. At most
    ``limit`` drainers run at once. With no limit the runner grows: it starts
    ``FIRST_DRAINERS``, and while runs are queued it looks at them now and then
    (``FIRST_LOOK_SECONDS``, ``LOOK_SECONDS``) and multiplies the drainers by ``GROWTH`` (never
    past the queued runs) if its runs are held up (``_held_up``).
    """

    def __init__(self, pool: DaemonThreadPool, limit: int | None, unfinished: dict) -> None:
        self._pool = pool
        self._limit = limit
        self._unfinished = unfinished  # the runner's unfinished runs: progress, for growth
        self._queue: deque[ThreadRun] = deque()
        self._lock = threading.Lock()  # guards _drainers against a drainer leaving
        self._drainers = 0
        self._watching = False
        self._last_look = (0, 0.0, 0.0)  # taken when the watching starts: see _held_up
        self._progress_at = 0.0  # the last look that saw a run finish, or added threads

    def put(self, handle: ThreadRun, context: contextvars.Context) -> None:
        """Queue a run, to run in (a copy of) ``context``, the submitter's. Drainers already
        at work may take it; ``start()`` adds more."""
        handle.context = context
        self._queue.append(handle)

    def start(self) -> None:
        """Start drainers for the queued runs, up to the limit. With no limit: the first
        one, and the watch that adds more, even while drainers are at work (every one of
        them may be held up by an earlier run)."""
        if self._limit is None:
            if self._drainers < FIRST_DRAINERS or not self._watching:
                self._start(FIRST_DRAINERS)
        elif self._drainers < self._limit:  # else a look without the lock will do: _drain
            self._start(self._limit)

    def clear(self) -> None:
        self._queue.clear()

    def _start(self, wanted: int) -> None:
        with self._lock:
            more = max(0, min(wanted - self._drainers, len(self._queue)))
            self._drainers += more
            watch = self._limit is None and not self._watching and bool(self._queue)
            self._watching = self._watching or watch
        for _ in range(more):
            self._pool.submit(self._drain)
        if watch:
            self._last_look = self._look()
            self._progress_at = self._last_look[2]
            call_later(FIRST_LOOK_SECONDS, self._check)

    def _drain(self) -> None:
        queue = self._queue
        submitted = entered = None
        while True:
            try:
                handle = queue.popleft()
            except IndexError:
                with self._lock:
                    if queue:
                        continue
                    self._drainers -= 1
                # A run queued after the look above, by a start() that saw this drainer
                # still counted, would be left with none: look again, now it is not.
                if queue:
                    self.start()
                return
            context = handle.context
            if context is None:  # run already (by a thread that waited for it)
                continue
            if context is not submitted:  # a copy of its own (one Context cannot be
                # entered by two threads at once), kept while runs share it (a map's):
                # each run resets what it set.
                submitted, entered = context, context.copy()
            entered.run(handle)  # type: ignore[union-attr]

    def _check(self) -> None:
        held_up = self._held_up()
        with self._lock:
            self._watching = bool(self._queue)
            if not self._watching:
                return
            wanted = max(self._drainers * GROWTH, FIRST_DRAINERS) if held_up else self._drainers
        self._start(wanted)
        call_later(FIRST_LOOK_SECONDS if held_up else LOOK_SECONDS, self._check)

    def _look(self) -> tuple[int, float, float]:
        """Unfinished runs, the process's CPU seconds, and the time, for the next look."""
        return len(self._unfinished), _cpu_seconds(), now()

    def _held_up(self) -> bool:
        """Whether the runs are held up: the process was mostly idle since the last look
        (they wait on I/O or sleep, however many finish), or no run finished for
        ``STALL_SECONDS`` (long runs hold every drainer). A look that came late measured
        a pause of the whole process (the OS running other work, a long garbage
        collection), not the runs: it only starts the next window."""
        last_unfinished, last_cpu, last_at = self._last_look
        self._last_look = unfinished, cpu, at = self._look()
        elapsed = at - last_at
        if elapsed > LATE_SECONDS:
            self._progress_at = at
            return False
        if unfinished != last_unfinished:
            self._progress_at = at
        held_up = cpu - last_cpu < IDLE_SHARE * elapsed or at - self._progress_at >= STALL_SECONDS
        if held_up:  # the threads it adds get a stall's time of their own
            self._progress_at = at
        return held_up

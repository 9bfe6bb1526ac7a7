"""A pool of worker processes that knows which job each worker is running.

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its workers dies, every
pending future fails with ``BrokenProcessPool`` and the pool is unusable, so one task
that crashes its interpreter (or calls ``os._exit``) would take every other run of the
flow down with it. Here each worker has its own pipe and runs the jobs sent to it in
order, so when a worker's pipe closes, the first job it had not answered is the one
that was running: only that job fails (with ``CrashedRun``), the others go to the
remaining workers, and a replacement worker starts.

A worker says when it starts a job (``started``), so the parent knows which jobs run
and which only wait in a worker's pipe. A job cancelled before it starts is skipped by
its worker (the parent sends the job's id on the same pipe; the worker's reading thread
sees it before the job's turn); one cancelled after it started has its worker killed.

Workers are started with ``spawn``: a notebook kernel has threads, and forking a
process with threads can deadlock the child. Everything a job needs travels as bytes.
The frames on the pipes are described in ``pool_worker.py``.
"""

from __future__ import annotations

import multiprocessing
import selectors
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import CancelledError
from multiprocessing.connection import Connection
from typing import Any

from kernelflow._runners.frames import FrameReader
from kernelflow._runners.pool_worker import (
    _HEADER,
    _ID,
    _NEXT,
    REPLY,
    STARTED,
    TIME,
    worker_main,
)
from kernelflow.exceptions import CrashedRun

# Jobs sent to one worker at a time: one running, one already in its pipe, so a worker
# never idles waiting for the next job to cross.
PREFETCH = 2


class Job:
    """One call: the packed function and arguments; then its reply bytes or its error.

    Lighter than a ``concurrent.futures.Future``: one callback, settled exactly once.
    """

    __slots__ = (
        "id",
        "fn_blob",
        "arguments",
        "worker",
        "reply",
        "error",
        "done",
        "started",
        "on_started",
        "ended_at",
        "_callback",
        "_lock",
    )

    def __init__(
        self,
        job_id: int,
        fn_blob: bytes,
        arguments: bytes,
        on_started: Callable[..., None] | None = None,
    ) -> None:
        self.id = job_id
        self.fn_blob = fn_blob
        self.arguments = arguments
        self.on_started = on_started  # called with the worker's name when it starts
        self.started = False
        self.ended_at: float | None = None  # when the body ended, by the worker's clock
        self.worker: _Worker | None = None
        self.reply: bytes | None = None
        self.error: BaseException | None = None
        self.done = False
        self._callback: Callable[[], None] | None = None
        self._lock = threading.Lock()

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once settled: now if it already is, else in the settling thread."""
        with self._lock:
            if not self.done:
                self._callback = callback
                return
        callback()

    def settle(self, reply: bytes | None = None, error: BaseException | None = None) -> None:
        """Record the outcome (the first one wins) and call the callback."""
        with self._lock:
            if self.done:
                return
            self.reply, self.error, self.done = reply, error, True
            callback, self._callback = self._callback, None
        if callback is not None:
            callback()

    def result(self) -> bytes:
        if self.error is not None:
            raise self.error
        return self.reply  # type: ignore[return-value]


class _Worker:
    def __init__(self, context: Any, index: int, initializer: bytes | None = None) -> None:
        ours, theirs = context.Pipe()
        self.process = context.Process(
            target=worker_main, args=(theirs, initializer), name=f"kernelflow-process-{index}"
        )
        self.process.start()
        theirs.close()
        self.conn: Connection = ours
        self.fd = ours.fileno()
        self.frames = FrameReader(self.fd)  # read by the pool's reading thread only
        self.jobs: deque[Job] = deque()  # assigned and not answered, in the order sent
        self.outbox: deque[Job] = deque()  # assigned and not yet written to the pipe
        self.ready = False  # it said hello: its interpreter started and imported kernelflow
        self._send_lock = threading.Lock()

    def send_cancel(self, job: Job) -> None:
        """Tell the worker to skip ``job`` (it has not started it)."""
        with self._send_lock:
            try:
                self.conn.send_bytes(_ID.pack(job.id))
            except OSError:
                pass  # the worker died; its jobs are handed on, this one is settled

    def flush(self) -> None:
        """Write the outbox to the pipe, in order (whichever thread gets here first)."""
        with self._send_lock:
            while self.outbox:
                job = self.outbox.popleft()
                try:
                    self.conn.send_bytes(
                        _HEADER.pack(job.id, len(job.fn_blob)) + job.fn_blob + job.arguments
                    )
                except OSError:
                    return  # the worker died; the reader thread hands its jobs on


class ProcessPool:
    """``max_workers`` spawned worker processes, fed through one pipe each."""

    def __init__(self, max_workers: int, initializer: bytes | None = None) -> None:
        self.max_workers = max_workers
        self._initializer = initializer  # packed (fn, args), called in each new worker
        self._context = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()
        self._pending: deque[Job] = deque()
        self._closed = False
        self._ids = iter(range(1, 2**63))
        self._started = 0
        self._failed_starts = 0  # workers in a row that died before saying hello
        self._broken: str | None = None
        self._workers = [self._start_worker() for _ in range(max_workers)]
        self._workers_changed = 0  # counts changes to _workers, for the reading thread
        self._wake_reader, self._waker = self._context.Pipe(duplex=False)
        self._reader = threading.Thread(
            target=self._read_replies, name="kernelflow-process-pool", daemon=True
        )
        self._reader.start()

    def submit(
        self, fn_blob: bytes, arguments: bytes, on_started: Callable[..., None] | None = None
    ) -> Job:
        with self._lock:
            if self._closed or self._broken:
                raise RuntimeError(self._broken or "The process pool is shut down.")
            job = Job(next(self._ids), fn_blob, arguments, on_started)
            self._pending.append(job)
            ready = self._assign()
        for worker in ready:
            worker.flush()
        return job

    def cancel(self, job: Job) -> None:
        """Drop a job: a queued one never starts (its worker skips it); if a worker is
        running it, that worker is killed (a new one starts)."""
        with self._lock:
            if job in self._pending:
                self._pending.remove(job)
            worker = job.worker
            sent = worker is not None and job in worker.jobs
            running = sent and job.started
        job.settle(error=CancelledError())
        if running:
            worker.process.kill()
        elif sent:
            worker.send_cancel(job)

    def close(self, timeout: float = 2.0) -> None:
        """Stop the workers (killing any still busy after ``timeout`` s) and the reader."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers, self._workers = self._workers, []
            self._workers_changed += 1
            dropped = list(self._pending)
            self._pending.clear()
        for job in dropped:
            job.settle(error=CancelledError())
        for worker in workers:
            try:
                worker.conn.send_bytes(b"")
            except OSError:
                pass
        for worker in workers:
            worker.process.join(timeout)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join(timeout)
            worker.conn.close()
        self._waker.send_bytes(b"")
        self._reader.join(timeout)

    @property
    def usable(self) -> bool:
        """False once closed, or given up because its workers cannot start."""
        return not (self._closed or self._broken)

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [worker.process.pid for worker in self._workers]

    # --- inside the lock ---------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        self._started += 1
        return _Worker(self._context, self._started, self._initializer)

    def _assign(self) -> set[_Worker]:
        """Give pending jobs to the least busy workers; the workers to flush."""
        ready = set()
        for depth in range(PREFETCH):
            for worker in self._workers:
                if not self._pending:
                    return ready
                if len(worker.jobs) == depth:
                    job = self._pending.popleft()
                    job.worker = worker
                    worker.jobs.append(job)
                    worker.outbox.append(job)
                    ready.add(worker)
        return ready

    # --- the reader thread -------------------------------------------------------------

    def _read_replies(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self._wake_reader, selectors.EVENT_READ)
        watched: set[_Worker] = set()
        seen = -1  # the count of changes to the workers when last looked
        while True:
            if self._closed or seen != self._workers_changed:  # (a cheap look first)
                with self._lock:
                    if self._closed:
                        selector.close()
                        return
                    current, seen = set(self._workers), self._workers_changed
                for worker in watched - current:
                    try:
                        selector.unregister(worker.fd)
                    except (KeyError, ValueError, OSError):
                        pass
                for worker in current - watched:
                    selector.register(worker.fd, selectors.EVENT_READ, worker)
                watched = current
            for key, _ in selector.select():
                if key.data is None:
                    self._wake_reader.recv_bytes()
                    continue
                self._read_from(key.data, selector)

    def _read_from(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        try:
            frames = worker.frames.read()
        except OSError:
            frames = None
        if frames is None:
            self._lost(worker, selector)
            return
        for frame in frames:
            if frame:
                self._answered(worker, frame)
            else:
                worker.ready = True

    def _answered(self, worker: _Worker, frame: bytes) -> None:
        (job_id,) = _ID.unpack_from(frame)
        kind = frame[8:9]
        if kind == STARTED:
            self._job_started(worker, job_id, TIME.unpack_from(frame, 9)[0])
            return
        with self._lock:
            job = worker.jobs.popleft()
            ready = self._assign()
        assert job.id == job_id, "a worker answered out of order"
        for other in ready:
            other.flush()  # first, so workers get busy while the reply is handled
        if kind == REPLY:
            job.ended_at = TIME.unpack_from(frame, 9)[0]
            next_id, next_at = _NEXT.unpack_from(frame, 9 + TIME.size)
            job.settle(reply=frame[9 + TIME.size + _NEXT.size :])
            if next_id:  # the worker started its next job as it sent this reply
                self._job_started(worker, next_id, next_at)

    def _job_started(self, worker: _Worker, job_id: int, at: float) -> None:
        with self._lock:
            job = worker.jobs[0]
            assert job.id == job_id, "a worker started a job out of order"
            job.started = True
        if job.done:  # cancelled as it started: it must not run on
            worker.process.kill()
        elif job.on_started is not None:
            job.on_started(f"process-{worker.process.pid}", at)

    def _lost(self, worker: _Worker, selector: selectors.BaseSelector) -> None:
        """A worker's pipe closed: its running job crashed, its queued ones move on."""
        selector.unregister(worker.fd)  # before its fd is closed, and maybe reused
        worker.process.join(1.0)
        with self._lock:
            if worker not in self._workers:
                return
            self._workers.remove(worker)
            self._workers_changed += 1
            # A worker that died before saying hello never started a job: blame none.
            crashed = [worker.jobs.popleft()] if worker.ready and worker.jobs else []
            self._pending.extendleft(reversed([job for job in worker.jobs if not job.done]))
            worker.jobs.clear()
            worker.outbox.clear()
            self._failed_starts = 0 if worker.ready else self._failed_starts + 1
            if self._failed_starts >= 3 and not self._closed:
                self._broken = _start_failure_message(worker.process)
            failed = self._give_up() if self._broken else []
            ready = set()
            if not self._closed and not self._broken:
                self._workers.append(self._start_worker())
                ready = self._assign()
        worker.conn.close()
        for job in crashed:
            job.settle(error=CrashedRun(_death_message(worker.process)))
        for job in failed:
            job.settle(error=CrashedRun(self._broken))
        for other in ready:
            other.flush()

    def _give_up(self) -> list[Job]:
        """Worker processes cannot start: once none is left, fail whatever waits."""
        if self._workers:
            return []
        failed = list(self._pending)
        self._pending.clear()
        return failed


def _how_it_ended(process: Any) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def _start_failure_message(process: Any) -> str:
    return (
        "kernelflow's worker processes die before they start (the last one: "
        f"{_how_it_ended(process)}). In a script, call the flow under "
        "`if __name__ == '__main__':` (spawned workers import the main script); also check "
        "that `python -c 'import kernelflow'` works in this environment, and that the "
        "runner's initializer (if any) does not raise. The pool is given up."
    )


def _death_message(process: Any) -> str:
    how = _how_it_ended(process)
    return (
        f"The worker process running this task (pid {process.pid}) died ({how}): the task "
        "may have called os._exit(), crashed the interpreter, run out of memory, or been "
        "killed. Other runs carried on; a new worker process took its place."
    )

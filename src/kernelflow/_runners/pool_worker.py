"""The worker side of the process pool (``pool.py``): one spawned process's loop.

Frames, parent to worker: a job (``_HEADER`` + function + arguments), a cancel (the
job id alone), stop (empty). Worker to parent: hello (empty), then per job its id and
one byte: ``S`` + start time, ``R`` + end time + next start + reply, or ``X`` skipped
(cancelled before it started). Times are the worker's ``time.time()``: the run's record
shows when the body ran, however late the parent's reading thread gets to the frame.

A reply's "next start" (``_NEXT``: a job id and its start time, or id 0) says that the
worker has started its next job, which it already held: on a busy pool every job's
start then travels with the previous job's reply, one frame (one write here, one
wake-up of the parent's reading thread) per job instead of two. A job that was not
already waiting gets its own ``S`` frame.
"""

from __future__ import annotations

import os
import queue
import signal
import struct
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

_HEADER = struct.Struct("!QI")  # job id, length of the packed function
_ID = struct.Struct("!Q")
STARTED, REPLY, SKIPPED = b"S", b"R", b"X"
TIME = struct.Struct("!d")  # when the body started or ended, by the worker's clock
_NEXT = struct.Struct("!Qd")  # in a reply: the job started next and when (id 0: none)
NO_NEXT = _NEXT.pack(0, 0.0)


def worker_main(conn: Connection, initializer: bytes | None = None) -> None:
    """A worker process: run jobs from the pipe in order, answer each on the same pipe.

    ``initializer``: the runner's packed ``(initializer, initargs)``, called once before
    the worker says hello (an initializer that raises stops the worker, as in
    ``concurrent.futures.ProcessPoolExecutor``).

    A thread reads the pipe all the time, so the parent's writes never wait on a busy
    worker. The parent stops a worker with an empty message, or by closing its pipe.
    Interrupts are the parent's business: the kernel cancels runs by killing workers.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    jobs: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    cancelled: set[int] = set()  # ids of jobs to skip; set.add and discard are atomic

    def receive() -> None:
        while True:
            try:
                frame = conn.recv_bytes()
            except (EOFError, OSError):
                frame = b""
            if not frame:
                jobs.put(None)
                return
            if len(frame) == _ID.size:
                cancelled.add(_ID.unpack(frame)[0])
            else:
                jobs.put(frame)

    threading.Thread(target=receive, name="kernelflow-receive", daemon=True).start()
    from kernelflow._runners.wire import run_packed

    if initializer is not None:
        import cloudpickle

        fn, args = cloudpickle.loads(initializer)
        fn(*args)
    conn.send_bytes(b"")  # hello: this interpreter started and can run jobs
    frame = jobs.get()
    announced = False  # whether this job's start went out with the previous reply
    try:
        while frame is not None:
            job_id, fn_length = _HEADER.unpack_from(frame)
            if not announced:
                if job_id in cancelled:
                    cancelled.discard(job_id)
                    conn.send_bytes(_ID.pack(job_id) + SKIPPED)
                    frame = jobs.get()
                    continue
                conn.send_bytes(_ID.pack(job_id) + STARTED + TIME.pack(time.time()))
            start = _HEADER.size
            reply = run_packed(frame[start : start + fn_length], frame[start + fn_length :])
            ended = TIME.pack(time.time())
            frame, next_start = _next_job(jobs, cancelled)
            announced = next_start is not NO_NEXT
            conn.send_bytes(_ID.pack(job_id) + REPLY + ended + next_start + reply)
            if frame is _WAIT:
                frame = jobs.get()
    except OSError:
        pass
    os._exit(0)  # skip interpreter teardown: abandoned task threads must not delay exit


_WAIT: Any = object()  # no job was waiting: block for the next one


def _next_job(
    jobs: queue.SimpleQueue[bytes | None], cancelled: set[int]
) -> tuple[bytes | None, bytes]:
    """The next job if one is already waiting, and the ``_NEXT`` field of the reply
    about to go out: that job's start now, unless it was cancelled (its ``X`` frame
    then goes out on its own, after the reply)."""
    try:
        frame = jobs.get_nowait()
    except queue.Empty:
        return _WAIT, NO_NEXT
    if frame is None:
        return None, NO_NEXT
    job_id = _HEADER.unpack_from(frame)[0]
    if job_id in cancelled:
        return frame, NO_NEXT
    return frame, _NEXT.pack(job_id, time.time())

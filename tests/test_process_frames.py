"""The process pool's wire: frames read in bulk, and a job's start sent with the reply
before it (pool.py, pool_worker.py, frames.py)."""

from __future__ import annotations

import multiprocessing
import os
import struct

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow._runners.frames import CHUNK, FrameReader
from kernelflow._runners.remote import close_warm_backends
from kernelflow.states import StateType
from kernelflow.task_runners import ProcessPoolTaskRunner


@pytest.fixture
def pipe():
    read_end, write_end = os.pipe()
    yield FrameReader(read_end), write_end
    for fd in (read_end, write_end):
        try:
            os.close(fd)
        except OSError:  # closed by the test
            pass


def framed(payload: bytes) -> bytes:
    return struct.pack("!i", len(payload)) + payload


def test_one_read_gives_every_whole_frame_it_brings(pipe):
    reader, write_end = pipe
    os.write(write_end, framed(b"first") + framed(b"") + framed(b"third"))
    assert reader.read() == [b"first", b"", b"third"]


def test_a_frame_cut_across_reads_comes_out_whole_once_complete(pipe):
    reader, write_end = pipe
    whole = framed(b"a" * 10) + framed(b"b" * 7)
    os.write(write_end, whole[:2])  # not even the whole length yet
    assert reader.read() == []
    os.write(write_end, whole[2:9])
    assert reader.read() == []
    os.write(write_end, whole[9:17])
    assert reader.read() == [b"a" * 10]
    os.write(write_end, whole[17:])
    assert reader.read() == [b"b" * 7]


def test_the_long_length_form_is_understood(pipe):
    reader, write_end = pipe
    os.write(write_end, struct.pack("!i", -1) + struct.pack("!Q", 5) + b"hello" + framed(b"x"))
    assert reader.read() == [b"hello", b"x"]


def test_the_closed_end_reads_as_none(pipe):
    reader, write_end = pipe
    os.write(write_end, framed(b"last"))
    assert reader.read() == [b"last"]
    os.close(write_end)
    assert reader.read() is None


def test_frames_from_connection_send_bytes_read_back_the_same():
    ours, theirs = multiprocessing.get_context("spawn").Pipe()
    reader = FrameReader(ours.fileno())
    big = os.urandom(3 * CHUNK + 123)  # arrives over several reads
    sent = [b"", b"small", big, b"after"]
    for payload in sent:
        theirs.send_bytes(payload)
    theirs.close()
    received: list[bytes] = []
    while (frames := reader.read()) is not None:
        received.extend(frames)
    ours.close()
    assert received == sent


@task
def echo(x):
    return x


def test_every_run_of_a_busy_pool_is_running_on_a_worker_before_it_completes():
    # Most of these starts travel inside the previous run's reply frame.
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def busy():
        return echo.map(range(300)).result()

    try:
        assert busy() == list(range(300))
        runs = kernelflow.last_run().task_runs
        for run in runs:
            assert [state.type for state in run.history] == [
                StateType.PENDING,
                StateType.RUNNING,
                StateType.COMPLETED,
            ]
            assert run.worker.startswith("process-")
            assert run.start_time <= run.end_time
    finally:
        close_warm_backends()


def test_a_result_larger_than_one_read_comes_back_whole():
    payload = os.urandom(5 * CHUNK + 1)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def large():
        return echo.map([payload, b"small", payload]).result()

    try:
        assert large() == [payload, b"small", payload]
    finally:
        close_warm_backends()

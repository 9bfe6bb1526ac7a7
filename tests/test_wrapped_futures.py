"""Prefect's future classes (``kernelflow._wrapped_futures``): futures that code builds
itself around a ``concurrent.futures.Future``, and how ``wait``, ``as_completed`` and
``PrefectFutureList`` take them alongside kernelflow's own."""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import Future

import pytest

from kernelflow import flow, task
from kernelflow.futures import (
    PrefectConcurrentFuture,
    PrefectFuture,
    PrefectFutureList,
    PrefectWrappedFuture,
    TaskFuture,
    as_completed,
    resolve_futures_to_results,
    resolve_futures_to_states,
    wait,
)
from kernelflow.states import Completed, Failed


def _later(future: Future, delay: float, value) -> threading.Thread:
    def finish():
        time.sleep(delay)
        future.set_result(value)

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_a_concurrent_future_gives_its_final_states_data_or_a_plain_value():
    wrapped = Future()
    future = PrefectConcurrentFuture(uuid.uuid4(), wrapped)
    assert future.state.is_pending() and not future.wait(timeout=0.01)
    wrapped.set_result(Completed(data=42))
    assert future.result() == 42 and future.state.is_completed()

    plain = Future()
    plain.set_result("value")
    assert PrefectConcurrentFuture(uuid.uuid4(), plain).result() == "value"

    failed = Future()
    failed.set_result(Failed(data=ValueError("oops")))
    future = PrefectConcurrentFuture(uuid.uuid4(), failed)
    with pytest.raises(ValueError, match="oops"):
        future.result()
    assert isinstance(future.result(raise_on_failure=False), ValueError)


def test_a_concurrent_future_times_out_with_its_run_id():
    run_id = uuid.uuid4()
    future = PrefectConcurrentFuture(run_id, Future())
    with pytest.raises(TimeoutError, match=f"Task run {run_id} did not complete within 0.01"):
        future.result(timeout=0.01)


def test_done_callbacks_get_the_prefect_future():
    wrapped = Future()
    future = PrefectConcurrentFuture(uuid.uuid4(), wrapped)
    seen = []
    future.add_done_callback(seen.append)
    assert seen == []
    wrapped.set_result(Completed(data=1))
    assert seen == [future]


def test_wait_watches_every_future_at_once_and_says_which_are_not_done():
    slow = PrefectConcurrentFuture(uuid.uuid4(), Future())
    fast = [PrefectConcurrentFuture(uuid.uuid4(), Future()) for _ in range(3)]
    for i, future in enumerate(fast):
        _later(future.wrapped_future, 0.01 * (i + 1), Completed(data=i))
    done, not_done = wait([slow, *fast], timeout=2)
    assert done == set(fast) and not_done == {slow}
    assert sorted(f.state.result() for f in done) == [0, 1, 2]


def test_negative_timeouts_are_refused():
    futures = [PrefectConcurrentFuture(uuid.uuid4(), Future())]
    for call in (
        lambda: wait(futures, timeout=-1),
        lambda: as_completed(futures, timeout=-1),
        lambda: PrefectFutureList(futures).result(timeout=-1),
    ):
        with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
            call()


def test_as_completed_yields_done_ones_first_and_counts_the_unfinished():
    ready = Future()
    ready.set_result(Completed(data=1))
    done = PrefectConcurrentFuture(uuid.uuid4(), ready)
    hanging = PrefectConcurrentFuture(uuid.uuid4(), Future())
    seen = []
    with pytest.raises(TimeoutError) as raised:
        for future in as_completed([hanging, done, done], timeout=0.05):
            seen.append(future)
    assert seen == [done]  # once, although given twice
    assert raised.value.args[0] == "1 (of 2) futures unfinished"
    # a zero timeout still yields what is already done
    assert [f.result() for f in as_completed([done], timeout=0)] == [1]


def test_future_list_results_keep_order_fail_fast_and_time_out_clearly():
    first, second = Future(), Future()
    second.set_result(Completed(data="second"))
    futures = [PrefectConcurrentFuture(uuid.uuid4(), f) for f in (first, second)]
    _later(first, 0.05, Completed(data="first"))
    assert PrefectFutureList(futures + futures[:1]).result() == ["first", "second", "first"]

    slow, failing = Future(), Future()
    failing.set_exception(ValueError("fast fail"))
    thread = _later(slow, 0.5, Completed(data=1))
    started = time.monotonic()
    with pytest.raises(ValueError, match="fast fail"):
        PrefectFutureList(
            [PrefectConcurrentFuture(uuid.uuid4(), f) for f in (slow, failing)]
        ).result()
    assert time.monotonic() - started < 0.4  # did not wait for the slow one first
    thread.join()

    hanging = PrefectFutureList([PrefectConcurrentFuture(uuid.uuid4(), Future())])
    with pytest.raises(TimeoutError, match="within 0.05 seconds"):
        hanging.result(timeout=0.05)


class _Ready(PrefectWrappedFuture):
    """A future of one's own: done from the start, as Prefect's tests build them."""

    def __init__(self, data):
        super().__init__(uuid.uuid4(), Future())
        self._final_state = Completed(data=data)

    def wait(self, timeout=None):
        pass

    def result(self, timeout=None, raise_on_failure=True):
        return self._final_state.result()


def test_futures_of_ones_own_resolve_and_map_like_kernelflows():
    mine = _Ready([1, 2, 3])
    assert resolve_futures_to_states({"a": [mine]}) == {"a": [mine.state]}
    assert resolve_futures_to_results((mine, "x")) == ([1, 2, 3], "x")
    assert wait([mine]).done == {mine}

    @task
    def double(x):
        return 2 * x

    @flow
    def pipeline():
        return double.map(_Ready([1, 2, 3])).result()  # mapped over its result

    assert pipeline() == [2, 4, 6]


def test_kernelflows_futures_are_prefect_futures_with_a_wrapped_future():
    @task
    def one():
        return 1

    @flow
    def pipeline():
        future = one.submit()
        future.note = "code may keep its own attributes on a future"
        assert isinstance(future, TaskFuture) and isinstance(future, PrefectFuture)
        return future.wrapped_future.result(), future.note

    state, note = pipeline()
    assert state.is_completed() and state.result() == 1 and note.startswith("code")

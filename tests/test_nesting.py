"""Deep nesting that plain Python handles: subflows inside subflows, deeply nested data.

Python allows about a thousand nested plain calls; kernelflow's own frames between a
flow call and its body must not cut that to a seventh, and walking arguments for futures
must not recurse without bound.
"""

from __future__ import annotations

import sys
import threading

from kernelflow import flow, task
from kernelflow._engine.inputs import MAX_SEARCH_DEPTH


@flow
def nest(n: int) -> int:
    return n if n == 0 else nest(n - 1) + 1


def test_subflows_nest_as_deep_as_plain_calls_almost_do():
    limit = sys.getrecursionlimit()
    assert nest(600) == 600  # was a RecursionError at about 140
    assert sys.getrecursionlimit() == limit  # the extra room is given back


def test_deep_subflows_in_threads_leave_the_limit_as_it_was():
    limit = sys.getrecursionlimit()
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(nest(300))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [300, 300, 300]
    assert sys.getrecursionlimit() == limit


@task
def depth_of(value) -> int:
    depth = 0
    while isinstance(value, list):
        value, depth = value[0], depth + 1
    return depth


def _nested(depth: int, leaf=0):
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


def test_a_deeply_nested_argument_is_passed_as_it_is():
    @flow
    def measure() -> tuple[int, int]:
        return depth_of(_nested(5000)), depth_of.submit(_nested(5000)).result()

    assert measure() == (5000, 5000)


def test_futures_are_found_inside_containers_up_to_the_search_depth():
    @task
    def one() -> int:
        return 1

    @task
    def leaf(value):
        while isinstance(value, list):
            value = value[0]
        return value

    @flow
    def nested_future() -> tuple[int, object]:
        shallow = leaf(_nested(MAX_SEARCH_DEPTH - 1, one.submit()))
        deep = leaf.submit(_nested(MAX_SEARCH_DEPTH + 5, one.submit())).result()
        return shallow, type(deep).__name__

    shallow, deep = nested_future()
    assert shallow == 1  # resolved to its value
    assert deep == "TaskFuture"  # beyond the search depth: passed as it is

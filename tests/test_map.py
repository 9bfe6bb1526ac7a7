"""Task.map with the seed's TaskRunner.map semantics."""

import pytest

import kernelflow
from kernelflow import allow_failure, flow, quote, task, unmapped
from kernelflow.exceptions import MappingError, MappingLengthMismatch, MappingMissingIterable


@task
def combine(x, y=100, *, z=0):
    return (x, y, z)


def run_in_flow(fn):
    @flow
    def wrapper():
        return fn()

    return wrapper()


def test_iterables_are_mapped_and_statics_repeated():
    result = run_in_flow(lambda: combine.map([1, 2], 5, z=[7, 8]).result())
    assert result == [(1, 5, 7), (2, 5, 8)]


def test_defaults_apply_per_call():
    assert run_in_flow(lambda: combine.map([1, 2]).result()) == [(1, 100, 0), (2, 100, 0)]


def test_unmapped_passes_an_iterable_whole():
    result = run_in_flow(lambda: combine.map([1, 2], unmapped([9, 9])).result())
    assert result == [(1, [9, 9], 0), (2, [9, 9], 0)]


def test_strings_and_bytes_are_not_mapped_over():
    result = run_in_flow(lambda: combine.map([1, 2], "ab").result())
    assert result == [(1, "ab", 0), (2, "ab", 0)]


def test_missing_iterable_is_an_error():
    with pytest.raises(MappingMissingIterable, match="at least one iterable"):
        run_in_flow(lambda: combine.map(1, 2))


def test_length_mismatch_is_an_error_naming_the_lengths():
    with pytest.raises(MappingLengthMismatch, match="'x': 2, 'y': 3"):
        run_in_flow(lambda: combine.map([1, 2], [1, 2, 3]))


def test_an_endless_iterator_is_refused_quickly_and_a_long_generator_is_fine():
    import itertools
    import time
    import tracemalloc

    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(MappingError, match="'x' of .map.. gave more than 1,000,000 items"):
        run_in_flow(lambda: combine.map(itertools.count()))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 200_000_000  # bounded (it was 2.9 GB and counting)
    assert time.perf_counter() - started < 30
    assert len(run_in_flow(lambda: combine.map(i for i in range(2000)).result())) == 2000


def test_var_keyword_arguments_are_expanded_for_mapping():
    @task
    def kw(a, **options):
        return (a, options)

    result = run_in_flow(lambda: kw.map([1, 2], color=["r", "g"], size=3).result())
    assert result == [
        (
            1,
            {"color": "r", "size": 3},
        ),
        (2, {"color": "g", "size": 3}),
    ]


def test_a_future_is_resolved_to_its_data_before_mapping():
    @task
    def numbers():
        return [1, 2, 3]

    @task
    def square(x):
        return x * x

    @flow
    def chained():
        return square.map(numbers.submit()).result()

    assert chained() == [1, 4, 9]
    run = kernelflow.last_run()
    producer = run.task_runs[0]
    mapped = [r for r in run.task_runs if r.task.name == "square"]
    assert [r.map_index for r in mapped] == [0, 1, 2]
    assert len({r.map_group for r in mapped}) == 1
    assert all(r.upstream == {"x": frozenset({producer.id})} for r in mapped)


def test_a_list_of_futures_maps_one_future_per_run_with_its_own_edge():
    @task
    def inc(x):
        return x + 1

    @flow
    def twice():
        return inc.map(inc.map([1, 2])).result()

    assert twice() == [3, 4]
    runs = kernelflow.last_run().task_runs
    first, second = runs[:2], runs[2:]
    assert [r.upstream["x"] for r in second] == [frozenset({r.id}) for r in first]


def test_map_with_wait_for_and_annotations():
    order = []

    @task
    def first():
        order.append("first")

    @task
    def failing():
        raise ValueError("bad")

    @task
    def consume(x, upstream):
        order.append(x)
        return type(upstream).__name__

    @flow
    def annotated():
        gate = first.submit()
        bad = failing.submit()
        return consume.map([1, 2], allow_failure(unmapped(bad)), wait_for=[gate]).result()

    assert annotated() == ["ValueError", "ValueError"]
    assert order[0] == "first"


def test_quote_passes_a_value_untouched():
    from kernelflow.futures import TaskFuture

    @task
    def produce():
        return 1

    @task
    def kind(x, holder):
        return isinstance(holder, TaskFuture), x

    @flow
    def quoted():
        future = produce.submit()
        # quote: the future reaches the task as a future, not resolved to its value;
        # and as in the seed, quote() does not stop mapping: unmapped() does that.
        return kind.map(quote([1, 2]), unmapped(quote(future))).result()

    assert quoted() == [(True, 1), (True, 2)]


def test_map_return_state():
    result = run_in_flow(lambda: [s.name for s in combine.map([1, 2], return_state=True)])
    assert result == ["Completed", "Completed"]

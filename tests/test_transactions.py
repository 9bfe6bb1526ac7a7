"""Transactions: commit and rollback hooks, nesting, values for the hooks, hook errors."""

import asyncio
import warnings

import pytest

import kernelflow.cache
from kernelflow import flow, task, transaction
from kernelflow.cache_policies import INPUTS
from kernelflow.transactions import TransactionHookWarning, current_transaction


def make_tasks(log, **options):
    """``write(name)`` keeps the path it "wrote" in its own transaction; its hooks log it."""

    @task(**options)
    def write(name):
        txn = current_transaction()  # the run's own: write has commit/rollback hooks
        txn.set("path", f"/tmp/{name}")
        log.append(("ran", name))
        return name

    @write.on_commit
    def announce(txn):
        log.append(("commit", txn.get("path")))

    @write.on_rollback
    def undo(txn):
        log.append(("undo", txn.get("path")))

    @task
    def explode():
        raise ValueError("third task fails")

    return write, explode


def test_a_failing_third_task_rolls_back_the_first_two_in_reverse_order_caching_nothing():
    log = []
    write, explode = make_tasks(log, cache_policy=INPUTS)

    @flow
    def pipeline():
        with transaction() as txn:
            write("a")
            write("b")
            explode()
        return txn

    with pytest.raises(ValueError, match="third task fails"):
        pipeline()
    assert log == [("ran", "a"), ("ran", "b"), ("undo", "/tmp/b"), ("undo", "/tmp/a")]
    assert kernelflow.cache.entries() == []  # the two cache records were never written


def test_a_successful_transaction_commits_its_cache_records_and_runs_commit_hooks_at_the_end():
    log = []
    write, _ = make_tasks(log, cache_policy=INPUTS)

    @flow
    def pipeline():
        with transaction() as txn:
            write("a")
            write.submit("b").wait()
            log.append(("body done", txn.state, len(kernelflow.cache.entries())))
        return txn.state

    assert pipeline() == "COMMITTED"
    assert log == [
        ("ran", "a"),
        ("ran", "b"),
        ("body done", "ACTIVE", 0),  # 0: staged
        ("commit", "/tmp/a"),
        ("commit", "/tmp/b"),
    ]
    assert [e.task for e in kernelflow.cache.entries()] == ["write", "write"]
    log.clear()
    assert pipeline() == "COMMITTED"
    # Both runs are cache hits now: they did no work, so there is nothing to commit.
    assert log == [("body done", "ACTIVE", 2)]


def test_nested_transactions_commit_with_their_parent():
    log = []
    write, explode = make_tasks(log)

    @flow
    def pipeline(fail_outer: bool):
        with transaction():
            write("a")
            with transaction() as inner:
                write("b")
            log.append(("inner", inner.state))
            if fail_outer:
                explode()
        return inner.state

    assert pipeline(False) == "COMMITTED"
    assert log == [
        ("ran", "a"),
        ("ran", "b"),
        ("inner", "ACTIVE"),  # open until its parent commits it, as in Prefect
        ("commit", "/tmp/a"),
        ("commit", "/tmp/b"),
    ]
    log.clear()
    with pytest.raises(ValueError):
        pipeline(True)
    # The inner block was left to the outer one, so both runs are undone, newest first.
    assert log == [
        ("ran", "a"),
        ("ran", "b"),
        ("inner", "ACTIVE"),
        ("undo", "/tmp/b"),
        ("undo", "/tmp/a"),
    ]


def test_a_nested_block_that_raises_rolls_back_its_parent_too_even_if_the_error_is_handled():
    # Prefect's rule: a nested transaction that ends rolled back rolls its parent back.
    log = []
    write, explode = make_tasks(log)

    @flow
    def pipeline():
        with transaction() as outer:
            write("a")
            try:
                with transaction() as inner:
                    write("b")
                    raise KeyError("inner only")
            except KeyError:
                pass
        return outer.state, inner.state

    assert pipeline() == ("ROLLED_BACK", "ROLLED_BACK")
    assert log == [("ran", "a"), ("ran", "b"), ("undo", "/tmp/b"), ("undo", "/tmp/a")]


def test_a_task_run_inside_a_task_with_hooks_joins_that_runs_transaction():
    log = []
    write, _ = make_tasks(log)

    @task
    def parent():
        current_transaction().set("batch", 7)
        write("child")

    @parent.on_commit
    def parent_done(txn):
        log.append(("parent commit", txn.get("batch")))

    @flow
    def pipeline():
        parent()

    pipeline()
    # The child committed into its parent's run transaction, which commits on completion.
    assert log == [("ran", "child"), ("commit", "/tmp/child"), ("parent commit", 7)]


def test_a_task_with_hooks_that_fails_undoes_the_runs_completed_in_its_body():
    log = []
    write, _ = make_tasks(log)

    @task
    def parent():
        write("child")
        raise RuntimeError("parent fails after its child wrote")

    @parent.on_rollback
    def never(txn):
        log.append("a failed run has nothing of its own to undo")

    with pytest.raises(RuntimeError):
        parent()
    assert log == [("ran", "child"), ("undo", "/tmp/child")]


def test_outside_a_transaction_a_run_commits_as_soon_as_it_completes():
    log = []
    write, _ = make_tasks(log)
    write("solo")
    assert log == [("ran", "solo"), ("commit", "/tmp/solo")]


def test_the_run_transaction_is_visible_in_the_body_and_sees_enclosing_values():
    seen = []

    @task
    def hooked():
        txn = current_transaction()
        seen.append((txn.key, txn.task_run.name, txn.get("batch")))

    @hooked.on_rollback
    def never(txn):
        pass

    @task
    def plain():
        seen.append(current_transaction())  # no hooks: no transaction of its own

    with transaction() as outer:
        outer.set("batch", 3)
        hooked()
        plain()
    assert seen == [("hooked-0", "hooked-0", 3), outer]
    plain()
    assert seen[-1] is None


@pytest.mark.parametrize("how", ["call", "submit"])
def test_async_tasks_get_their_own_transaction_too(how):
    log = []

    @task
    async def fetch(n):
        current_transaction().set("n", n)
        if n == 3:
            raise ValueError("no 3")
        return n

    @fetch.on_commit
    async def done(txn):
        log.append(("commit", txn.get("n")))

    @fetch.on_rollback
    def undo(txn):
        log.append(("undo", txn.get("n")))

    @flow
    async def pipeline(last):
        async with transaction() as txn:
            if how == "call":  # asyncio tasks on the flow's loop
                await asyncio.gather(fetch(1), fetch(2), fetch(last), return_exceptions=True)
            else:  # submitted to the flow's loop: the block awaits them at its end
                [fetch.submit(n) for n in (1, 2, last)]
        return txn.state

    assert asyncio.run(pipeline(2)) == "COMMITTED"
    assert sorted(log) == [("commit", 1), ("commit", 2), ("commit", 2)]
    log.clear()
    assert asyncio.run(pipeline(3)) == "ROLLED_BACK"
    assert sorted(log) == [("undo", 1), ("undo", 2)]


def test_commit_hook_errors_are_logged_kept_and_warned_about(kf_logs):
    @task
    def t():
        return 1

    @t.on_commit
    def broken(txn):
        raise RuntimeError("commit hook bug")

    with pytest.warns(TransactionHookWarning, match=r"broken \(RuntimeError: commit hook bug\)"):
        with transaction() as txn:
            t()
    assert txn.state == "COMMITTED"
    assert [type(e) for _, e in txn.hook_errors] == [RuntimeError]
    logged = [r for r in kf_logs if "broken" in r.getMessage()]
    assert logged and logged[0].task_run_name == "t-0"

    with pytest.warns(TransactionHookWarning, match="broken"):
        assert t() == 1  # outside any transaction: the run commits, and warns, at once


def test_rollback_hook_errors_are_noted_on_the_error_that_rolled_back(kf_logs):
    @task
    def t():
        return 1

    @t.on_rollback
    def broken_undo(txn):
        raise OSError("cannot delete")

    @task
    def explode():
        raise ValueError("boom")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # reported on the exception, not as a warning
        with pytest.raises(ValueError, match="boom") as raised:
            with transaction() as txn:
                t()
                explode()
    assert txn.state == "ROLLED_BACK"
    assert [type(e) for _, e in txn.hook_errors] == [OSError]
    assert any("broken_undo (OSError: cannot delete)" in note for note in raised.value.__notes__)


def test_get_reads_enclosing_values_and_missing_names_are_clear():
    with transaction() as outer:
        outer.set("x", 1)
        with transaction() as inner:
            assert inner.get("x") == 1
            assert inner.get("y", None) is None
            with pytest.raises(KeyError, match="'y'"):
                inner.get("y")


# --- Prefect's transaction options ---------------------------------------------------------


def test_get_returns_a_copy_so_a_nested_change_never_leaks_into_the_parent():
    from kernelflow.exceptions import MissingTransactionValue

    with transaction() as outer:
        outer.set("config", {"x": [42]})
        with transaction() as inner:
            value = inner.get("config")
            value["x"].append(43)
            assert outer.get("config") == {"x": [42]}
            inner.set("config", value)
            assert inner.get("config") == {"x": [42, 43]}
        assert outer.get("config") == {"x": [42]}
        with pytest.raises(MissingTransactionValue, match="unknown key 'nothing'") as caught:
            outer.get("nothing")
        assert isinstance(caught.value, KeyError) and isinstance(caught.value, ValueError)
        assert outer.get("nothing", None) is None


def test_atransaction_is_the_async_form():
    from kernelflow.transactions import atransaction

    async def main():
        async with atransaction(key="a") as txn:
            txn.set("x", 1)
            return txn

    txn = asyncio.run(main())
    assert txn.state == "COMMITTED" and txn.key == "a"


def _undoable(log):
    @task
    def write(name):
        return name

    @write.on_commit
    def committed(txn):
        log.append("commit")

    @write.on_rollback
    def rolled_back(txn):
        log.append("rollback")

    return write


def test_an_eager_nested_transaction_commits_when_its_block_ends():
    from kernelflow.transactions import CommitMode

    log = []
    write = _undoable(log)
    with pytest.raises(RuntimeError):
        with transaction():
            with transaction(commit_mode=CommitMode.EAGER) as inner:
                write("a")
            assert log == ["commit"] and inner.state == "COMMITTED"
            raise RuntimeError("the outer block fails after the eager commit")
    assert log == ["commit"]  # committed work is not rolled back

    log.clear()
    with transaction():
        with transaction(commit_mode="LAZY"):
            write("b")
        assert log == []  # a lazy one waits for its parent
    assert log == ["commit"]


def test_commit_mode_off_rolls_back_unless_committed_in_the_block():
    log = []
    write = _undoable(log)
    with transaction(commit_mode="OFF") as txn:
        write("a")
    assert txn.is_rolled_back() and log == ["rollback"]
    with transaction(commit_mode="OFF") as txn:
        write("b")
        txn.commit()
    assert txn.is_committed() and log == ["rollback", "commit"]


def test_nested_transactions_take_their_parents_commit_mode():
    log = []
    write = _undoable(log)
    with transaction(commit_mode="EAGER"):
        with transaction() as inner:
            write("a")
        assert inner.is_committed() and log == ["commit"]


def test_commit_mode_off_and_write_on_commit_false_write_no_cache_entries():
    @task(cache_policy=INPUTS)
    def cached(x):
        return x

    with transaction(commit_mode="OFF"):
        cached(1)
    with transaction(write_on_commit=False):
        cached(2)
    with transaction(isolation_level="SERIALIZABLE") as txn:
        cached(3)
    assert txn.isolation_level.value == "SERIALIZABLE"
    assert len(kernelflow.cache.entries()) == 1
    with pytest.raises(ValueError, match="commit_mode"):
        transaction(commit_mode="SOMETIMES")


def test_in_an_eager_transaction_a_cached_run_is_written_as_it_ends():
    from kernelflow.transactions import IsolationLevel

    @task(cache_policy=INPUTS)
    def double(x):
        return 2 * x

    @flow
    def pipeline():
        with transaction(commit_mode="EAGER") as txn:
            states = double(4, return_state=True), double(4, return_state=True)
            assert txn.isolation_level is IsolationLevel.READ_COMMITTED
        return states

    first, second = pipeline()
    assert (first.name, second.name) == ("Completed", "Cached")
    with transaction(isolation_level=IsolationLevel.SERIALIZABLE):
        with transaction() as inner:
            assert inner.isolation_level is IsolationLevel.SERIALIZABLE


def test_every_rollback_hook_runs_even_after_one_raises_system_exit():
    undone = []

    def make(name, error=None):
        @task(name=name)
        def step():
            return name

        @step.on_rollback
        def undo(txn):
            undone.append(name)
            if error is not None:
                raise error

        return step

    first, exits, stops = make("first"), make("exits", SystemExit(3)), make("stops", SystemExit(4))
    last = make("last")
    with pytest.raises(SystemExit) as raised:  # the first one raised, once all have run
        with transaction():
            first()
            stops()
            exits()
            last()
            raise ValueError("roll back")
    assert raised.value.code == 3
    assert undone == ["last", "exits", "stops", "first"]


def test_a_block_that_raises_waits_for_its_runs_in_flight_then_rolls_them_back():
    import threading

    log = []
    started = threading.Event()

    @task
    def slow_write():
        started.set()
        threading.Event().wait(0.5)
        log.append("written")
        return "row"

    @slow_write.on_rollback
    def remove(txn):
        log.append("removed")

    @flow
    def pipeline():
        with transaction() as txn:
            slow_write.submit()
            started.wait(5)
            raise ValueError("after submitting")
        return txn

    with pytest.raises(ValueError, match="after submitting"):
        pipeline()
    assert log == ["written", "removed"]  # waited for the run, then undid it

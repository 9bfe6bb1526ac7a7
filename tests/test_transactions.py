"""Transactions: commit and rollback hooks, nesting, values for the hooks."""

import pytest

from kernelflow import flow, task, transaction


def make_tasks(log):
    @task
    def write(name):
        from kernelflow._transactions import current_transaction

        txn = current_transaction()  # None outside any `with transaction()`
        if txn is not None:
            txn.set(f"path:{name}", f"/tmp/{name}")
        log.append(("ran", name))
        return name

    @write.on_commit
    def announce(txn):
        log.append(("commit", txn.key))

    @write.on_rollback
    def undo(txn):
        log.append(("undo", txn.key))

    @task
    def explode():
        raise ValueError("third task fails")

    return write, explode


def test_a_failing_third_task_rolls_back_the_first_two_in_reverse_order():
    log = []
    write, explode = make_tasks(log)
    seen = {}

    @task
    def first():
        log.append(("ran", "first"))

    @first.on_rollback
    def undo_first(txn):
        seen["path"] = txn.get("path:b")
        log.append(("undo", "first"))

    @flow
    def pipeline():
        with transaction(key="etl"):
            first()
            write("b")
            explode()

    with pytest.raises(ValueError, match="third task fails"):
        pipeline()
    assert log == [("ran", "first"), ("ran", "b"), ("undo", "etl"), ("undo", "first")]
    assert seen["path"] == "/tmp/b"


def test_a_successful_transaction_commits_and_runs_commit_hooks_once_at_the_end():
    log = []
    write, _ = make_tasks(log)

    @flow
    def pipeline():
        with transaction(key="ok") as txn:
            write("a")
            write.submit("b").wait()
            log.append(("body done", txn.state))
        return txn.state

    assert pipeline() == "committed"
    assert log == [("ran", "a"), ("ran", "b"), ("body done", "active"),
                   ("commit", "ok"), ("commit", "ok")]


def test_a_failed_submitted_run_rolls_back_even_if_the_block_did_not_raise():
    log = []
    write, explode = make_tasks(log)

    @flow
    def pipeline():
        with transaction(key="quiet") as txn:
            write("a")
            explode.submit()  # fails in the background; nobody looks at it
        return txn.state

    assert pipeline() == "rolled_back"
    assert ("undo", "quiet") in log and ("commit", "quiet") not in log


def test_nested_transactions_commit_with_their_parent():
    log = []
    write, explode = make_tasks(log)

    @flow
    def pipeline(fail_outer: bool):
        with transaction(key="outer"):
            write("a")
            with transaction(key="inner") as inner:
                write("b")
            log.append(("inner", inner.state))
            if fail_outer:
                explode()

    pipeline(False)
    assert log[-2:] == [("commit", "outer"), ("commit", "outer")]
    log.clear()
    with pytest.raises(ValueError):
        pipeline(True)
    # The inner block had committed into the outer one, so both runs are undone, newest first.
    assert log == [("ran", "a"), ("ran", "b"), ("inner", "committed"),
                   ("undo", "outer"), ("undo", "outer")]


def test_outside_a_transaction_a_run_commits_as_soon_as_it_completes():
    log = []
    write, _ = make_tasks(log)
    write("solo")
    assert log == [("ran", "solo"), ("commit", None)]


def test_hook_errors_are_logged_and_kept(kf_logs):
    @task
    def t():
        return 1

    @t.on_commit
    def broken(txn):
        raise RuntimeError("commit hook bug")

    with transaction() as txn:
        t()
    assert txn.state == "committed"
    assert [type(e) for _, e in txn.hook_errors] == [RuntimeError]
    assert any("broken" in r.getMessage() for r in kf_logs)


def test_get_reads_enclosing_values_and_missing_names_are_clear():
    with transaction() as outer:
        outer.set("x", 1)
        with transaction() as inner:
            assert inner.get("x") == 1
            assert inner.get("y", None) is None
            with pytest.raises(KeyError, match="'y'"):
                inner.get("y")

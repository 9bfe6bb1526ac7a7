"""The on-disk store: format, atomic writes, damage, expiry, privacy, several processes."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

import kernelflow.cache
from kernelflow._results.serializers import CloudpickleSerializer, JSONSerializer
from kernelflow._results.store import Store, store_for
from kernelflow.exceptions import UnsafeCacheDirectory
from tests.cache_support import home, run_pythons

META = {"task": "t", "task_id": "t|m.t", "created": 0.0, "expires": None}


def fresh(root: Path) -> Store:
    """A Store with nothing remembered, as in another process."""
    return Store(root, (root,))


def test_default_store_is_created_private_under_kernelflow_home():
    home = Path(os.environ["KERNELFLOW_HOME"])
    store = store_for(None)
    store.prepare()
    assert store.root == home / "results"
    for directory in (home, home / "results"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700


def test_save_then_load_in_this_and_a_fresh_store(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("k1", {"a": [1, 2]}, CloudpickleSerializer, META)
    assert store.load("k1", CloudpickleSerializer).value == {"a": [1, 2]}
    assert fresh(tmp_path / "s").load("k1", CloudpickleSerializer).value == {"a": [1, 2]}
    assert store.load("other", CloudpickleSerializer).status == "missing"
    assert not [p for p in (tmp_path / "s").iterdir() if p.name.startswith(".tmp-")]


def test_hits_return_a_fresh_copy(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("k", [1], CloudpickleSerializer, META)
    store.load("k", CloudpickleSerializer).value.append(2)
    assert store.load("k", CloudpickleSerializer).value == [1]


def test_remembered_entry_is_checked_against_disk(tmp_path):
    one, two = fresh(tmp_path / "s"), fresh(tmp_path / "s")
    one.prepare()
    one.save("k", "old", JSONSerializer, META)
    assert one.load("k", JSONSerializer).value == "old"
    two.save("k", "new", JSONSerializer, META)  # another process rewrites the entry
    assert one.load("k", JSONSerializer).value == "new"
    os.unlink(one.path("k"))  # ... or clears it
    assert one.load("k", JSONSerializer).status == "missing"


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip", "header"])
def test_damaged_entries_are_unreadable_not_errors(tmp_path, damage):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("k", list(range(100)), CloudpickleSerializer, META)
    path = Path(store.path("k"))
    data = path.read_bytes()
    damaged = {
        "truncate": data[: len(data) - 10],
        "garbage": b"\x00not a cache entry at all" * 3,
        "empty": b"",
        "flip": data[:-1] + bytes([data[-1] ^ 0xFF]),
        "header": data[:12] + b"x" + data[13:],  # the meta JSON starts at byte 12
    }[damage]
    path.write_bytes(damaged)
    loaded = fresh(tmp_path / "s").load("k", CloudpickleSerializer)
    assert loaded.status == "unreadable" and loaded.detail
    store.save("k", "fixed", CloudpickleSerializer, META)
    assert fresh(tmp_path / "s").load("k", CloudpickleSerializer).value == "fixed"


def test_expiry_is_checked_on_read(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("k", 1, JSONSerializer, {**META, "expires": time.time() + 0.6})
    assert store.load("k", JSONSerializer).status == "hit"
    time.sleep(0.7)
    assert store.load("k", JSONSerializer).status == "expired"
    assert fresh(tmp_path / "s").load("k", JSONSerializer).status == "expired"


def test_refuses_a_directory_others_can_write(tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    os.chmod(root, 0o777)
    with pytest.raises(UnsafeCacheDirectory, match="chmod 700"):
        fresh(root).prepare()


def test_refuses_to_load_once_the_directory_became_writable_by_others(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("k", 1, JSONSerializer, META)
    os.chmod(tmp_path / "s", 0o777)
    with pytest.raises(UnsafeCacheDirectory, match="other users can write"):
        fresh(tmp_path / "s").load("k", JSONSerializer)


def test_refuses_an_entry_others_can_write(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("k", 1, JSONSerializer, META)
    os.chmod(store.path("k"), 0o666)
    with pytest.raises(UnsafeCacheDirectory, match="chmod 600"):
        fresh(tmp_path / "s").load("k", JSONSerializer)


def test_entries_and_clear(tmp_path):
    store = store_for(None)
    store.prepare()
    store.save("a", 1, JSONSerializer, {**META, "task": "load", "created": 1.0})
    store.save(
        "b", "xyz", JSONSerializer, {**META, "task": "clean", "created": 2.0, "expires": 3.0}
    )
    listed = kernelflow.cache.entries()
    assert [(e.task, e.key, e.size) for e in listed] == [("load", "a", 1), ("clean", "b", 5)]
    assert listed[0].expires is None and listed[1].expires.timestamp() == 3.0
    assert kernelflow.cache.clear("clean") == 1
    assert [e.task for e in kernelflow.cache.entries()] == ["load"]
    assert kernelflow.cache.clear() == 1
    assert kernelflow.cache.entries() == []
    assert store.load("a", JSONSerializer).status == "missing"


WRITER = """
import sys, time
from kernelflow._results.serializers import CloudpickleSerializer as S
from kernelflow._results.store import Store
from pathlib import Path
root = Path({root!r})
me = int(sys.argv[1])
store = Store(root, (root,))
value = [me] * 20000  # big enough that a torn read would be likely, were writes not atomic
bad = hits = 0
deadline = time.monotonic() + 2.0
while time.monotonic() < deadline:
    store.save("shared", value, S, {{"task": "t", "created": 0.0, "expires": None}})
    loaded = Store(root, (root,)).load("shared", S)
    if loaded.status != "hit" or len(set(loaded.value)) != 1 or len(loaded.value) != 20000:
        bad += 1
    hits += 1
print(bad, hits)
"""


def test_four_processes_writing_one_key_never_tear_a_read(tmp_path):
    root = tmp_path / "s"
    fresh(root).prepare()
    outputs = run_pythons(WRITER.format(root=str(root)), home(), tmp_path, count=4)
    results = [out.split() for out in outputs]
    assert [int(bad) for bad, _ in results] == [0, 0, 0, 0]
    assert all(int(hits) > 0 for _, hits in results)
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]


def test_a_kernelflow_home_deleted_during_the_session_comes_back_private(kf_logs, monkeypatch):
    """Issue 17, item 4: with a umask of 022, a re-created home used to be 0755."""
    import shutil

    # The run history's writer would write into the home while rmtree empties it.
    monkeypatch.setenv("KERNELFLOW_HISTORY", "off")

    from kernelflow import flow, task
    from kernelflow.cache_policies import INPUTS

    home_dir = Path(os.environ["KERNELFLOW_HOME"])
    calls = []

    @task(cache_policy=INPUTS)
    def double(x):
        calls.append(x)
        return 2 * x

    @flow
    def pipeline(x):
        return double(x)

    old_umask = os.umask(0o022)
    try:
        assert pipeline(1) == 2
        shutil.rmtree(home_dir)
        assert pipeline(2) == 4  # written into a home made again
    finally:
        os.umask(old_umask)
    for directory in (home_dir, home_dir / "results"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert pipeline(2) == 4 and calls == [1, 2]  # and read back from it: a hit
    assert not [r for r in kf_logs if "not cached" in r.getMessage().lower()]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only directories")
def test_a_read_only_store_says_which_entry_could_not_be_written(tmp_path, kf_logs):
    from kernelflow import task
    from kernelflow.cache_policies import INPUTS

    storage = tmp_path / "ro"
    storage.mkdir(mode=0o700)

    @task(result_storage=storage, cache_policy=INPUTS)
    def one(x):
        return x

    os.chmod(storage, 0o500)
    try:
        assert one(1) == 1
    finally:
        os.chmod(storage, 0o700)
    messages = [r.getMessage() for r in kf_logs if "Result not cached" in r.getMessage()]
    assert messages and str(storage) in messages[0]


def test_a_failed_write_names_the_entry_path(tmp_path):
    """The store's own error (what 'Result not cached' shows) carries the path."""
    store = fresh(tmp_path / "s")
    store.prepare()
    (tmp_path / "s" / "sub").write_text("a file where a directory is needed")
    with pytest.raises(OSError) as caught:
        store.save("sub/k", 1, CloudpickleSerializer, META)
    assert str(tmp_path / "s" / "sub") in str(caught.value)


def _in_thread(fn, timeout=5.0):
    """``fn()``'s result, or fail if it is still blocked after ``timeout`` seconds."""
    import threading

    out = []
    worker = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    worker.start()
    worker.join(timeout)
    return worker.is_alive(), out


def _unblock(fifo):
    """Release a reader stuck opening ``fifo`` (the old code), so the test process ends."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs")
def test_a_fifo_in_the_store_never_blocks_a_lookup_or_the_listing(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("real", 1, JSONSerializer, META)
    os.mkfifo(store.path("k"), 0o600)
    os.makedirs(tmp_path / "s" / ".tasks", mode=0o700)
    os.mkfifo(store._parts_path("t|m.t"), 0o600)
    try:
        stuck, out = _in_thread(lambda: store.load("k", JSONSerializer))
        assert not stuck, "a lookup blocked on a FIFO"
        assert out[0].status == "unreadable" and "not a regular file" in out[0].detail
        stuck, out = _in_thread(lambda: kernelflow.cache.entries(storage=tmp_path / "s"))
        assert not stuck, "kernelflow.cache.entries() blocked on a FIFO"
        assert [entry.key for entry in out[0]] == ["real"]
        stuck, out = _in_thread(lambda: store.last_parts("t|m.t"))
        assert not stuck and out == [None]
    finally:
        _unblock(store.path("k"))
        _unblock(store._parts_path("t|m.t"))


def test_an_entry_that_is_a_symbolic_link_is_not_followed(tmp_path):
    store = fresh(tmp_path / "s")
    store.prepare()
    store.save("real", 1, JSONSerializer, META)
    os.symlink(store.path("real"), store.path("k"))
    loaded = store.load("k", JSONSerializer)
    assert loaded.status == "unreadable" and "symbolic link" in loaded.detail


def test_an_entry_records_its_key_and_a_swapped_one_is_a_miss_with_a_warning(kf_logs):
    from kernelflow import task

    calls = []

    @task(result_storage_key="team/{x}")
    def price(x):
        calls.append(x)
        return 100 * x

    assert (price(1), price(2)) == (100, 200)
    team = home() / "results" / "team"
    os.rename(team / "1", team / "tmp")
    os.rename(team / "2", team / "1")
    os.rename(team / "tmp", team / "2")
    assert price(2) == 200  # not price(1)'s result
    assert calls == [1, 2, 2]
    warnings = [
        r.getMessage()
        for r in kf_logs
        if r.levelname == "WARNING" and "records the key 'team/1'" in r.getMessage()
    ]
    assert len(warnings) == 1 and "not 'team/2'" in warnings[0]


@pytest.mark.parametrize("how", ["writable", "foreign"])
def test_a_subfolder_of_the_store_is_checked_as_the_root_is(how, kf_logs):
    from kernelflow import task

    calls = []

    @task(result_storage_key="team/{x}")
    def price(x):
        calls.append(x)
        return 100 * x

    assert price(1) == 100
    team = home() / "results" / "team"
    assert stat.S_IMODE(team.stat().st_mode) == 0o700
    if how == "writable":
        os.chmod(team, 0o777)
    elif os.geteuid() == 0:
        os.chown(team, 12345, 12345)
    else:
        pytest.skip("only root can give a folder to another user")
    store_for(None).forget()  # as in another process: nothing remembered
    state = price(1, return_state=True)
    assert state.is_failed() and calls == [1]  # never loaded from it
    with pytest.raises(UnsafeCacheDirectory, match=str(team)):
        state.result()
    assert price(2) == 200 and calls == [1, 2]  # a new entry is not written there either
    assert not (team / "2").exists()
    assert any("Result not cached" in r.getMessage() for r in kf_logs)


@pytest.mark.parametrize("key", ["a" * 300, "x\0y", "deep/" * 900 + "k", "folder/"])
def test_a_storage_key_the_os_refuses_runs_uncached_with_one_warning(key, kf_logs):
    from kernelflow import task

    calls = []

    @task(result_storage_key="{name}")
    def named(name):
        calls.append(name)
        return len(name)

    assert named(key) == len(key)
    assert named(key) == len(key)
    assert len(calls) == 2
    warnings = [r.getMessage() for r in kf_logs if "Not cached" in r.getMessage()]
    assert len(warnings) == 1 and "cannot name a file in the store" in warnings[0]


def test_a_shared_folder_is_refused_without_advising_to_chmod_it(tmp_path, monkeypatch):
    shared = tmp_path / "tmp"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp is
    monkeypatch.setenv("KERNELFLOW_HOME", str(shared))
    with pytest.raises(UnsafeCacheDirectory) as refused:
        store_for(None).prepare()
    message = str(refused.value)
    assert "chmod" not in message
    assert f"mkdir -m 700 {shared}/kernelflow-$USER" in message


def test_a_relative_kernelflow_home_is_resolved_once(tmp_path, monkeypatch):
    from kernelflow import task
    from kernelflow.cache_policies import INPUTS

    calls = []

    @task(cache_policy=INPUTS)
    def double(x):
        calls.append(x)
        return 2 * x

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    monkeypatch.setenv("KERNELFLOW_HOME", "relative-home")
    assert double(1) == 2
    monkeypatch.chdir(tmp_path / "b")  # a notebook's os.chdir
    assert double(1) == 2 and calls == [1]
    assert not (tmp_path / "b" / "relative-home").exists()
    assert [e.path.parent for e in kernelflow.cache.entries()] == [
        tmp_path / "a" / "relative-home" / "results"
    ]


def test_the_default_store_follows_kernelflow_home_as_it_changes(tmp_path, monkeypatch):
    first = store_for(None)
    monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "other"))
    other = store_for(None)
    assert other.root == tmp_path / "other" / "results" and other is not first
    monkeypatch.delenv("KERNELFLOW_HOME")
    assert store_for(None).root == Path("~/.kernelflow/results").expanduser()
    monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "other"))
    assert store_for(None) is other


@pytest.mark.parametrize(
    ("before", "after", "same"),
    [
        ([("inputs", "a"), ("source", "s")], [("inputs", "b"), ("source", "s")], True),
        ([("source", "s"), ("inputs", "a")], [("source", "s"), ("inputs", "b")], True),
        ([("inputs", "a"), ("source", "s")], [("inputs", "a"), ("source", "t")], False),
        ([("inputs", "a"), ("source", "s")], [("source", "s"), ("inputs", "a")], True),
        ([("inputs", "a"), ("source", "s")], [("key_fn", "k"), ("source", "s")], True),
        ([("inputs", "a"), ("source", "s")], [("run_id", "r"), ("source", "s")], False),
        ([("source", "s")], [("source", "s"), ("global:N", "1")], False),
    ],
)
def test_whether_two_runs_had_the_same_code_ignores_their_inputs(before, after, same):
    from kernelflow._results.store import _code_parts, _same_code

    assert _same_code(before, after) is same
    assert same is (_code_parts(before) == _code_parts(after))

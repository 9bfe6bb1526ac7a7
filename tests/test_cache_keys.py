"""Key parts: value hashing, task_input_hash, cache policies, and TASK_SOURCE."""

from __future__ import annotations

import dataclasses
import enum
import os
import subprocess
import sys
import threading
import tracemalloc

import pytest

from kernelflow import task
from kernelflow._context import TaskRunContext
from kernelflow._results.keys import encode, hash_value
from kernelflow._results.policies import KeyContext
from kernelflow._results.source import function_digest, source_parts
from kernelflow.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CachePolicy,
)
from kernelflow.exceptions import InvalidOptionError
from kernelflow.tasks import task_input_hash
from tests.cache_support import SRC, Notebook


def test_hash_value_is_stable_and_distinguishes():
    assert hash_value({"a": 1, "b": [1, 2]}) == hash_value({"b": [1, 2], "a": 1})
    assert hash_value({"a": 1}) != hash_value({"a": 2})
    assert hash_value({1, 2, 3}) == hash_value({3, 2, 1})
    assert hash_value(b"xy") != hash_value("xy")


def test_hash_value_falls_back_to_cloudpickle_then_none():
    class Point:
        def __init__(self, x):
            self.x = x

    assert hash_value(Point(1)) is not None
    assert hash_value(threading.Lock()) is None


def test_set_hash_is_the_same_in_processes_with_other_hash_seeds():
    code = "from kernelflow._results.keys import hash_value; print(hash_value(set('abcdef')))"
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONPATH": SRC, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outs) == 1


def test_task_input_hash_follows_inputs_and_task():
    @task
    def add(x, y):
        return x + y

    @task
    def sub(x, y):
        return x - y

    ctx = TaskRunContext(add, None)
    key = task_input_hash(ctx, {"x": 1, "y": 2})
    assert isinstance(key, str)
    assert key == task_input_hash(ctx, {"y": 2, "x": 1})
    assert key != task_input_hash(ctx, {"x": 1, "y": 3})
    assert key != task_input_hash(TaskRunContext(sub, None), {"x": 1, "y": 2})


def test_task_input_hash_is_none_for_unhashable_arguments():
    @task
    def locked(lock):
        return 1

    assert task_input_hash(TaskRunContext(locked, None), {"lock": threading.Lock()}) is None


def test_policies_combine_and_exclude():
    assert isinstance(DEFAULT, CachePolicy)
    assert repr(DEFAULT) == "INPUTS + TASK_SOURCE + RUN_ID"
    assert repr(INPUTS + TASK_SOURCE + FLOW_PARAMETERS) == "INPUTS + TASK_SOURCE + FLOW_PARAMETERS"

    @task
    def f(x, verbose=False):
        return x

    def parts(policy, **params):
        return policy.parts(KeyContext(f, None, params))

    assert parts(INPUTS, x=1, verbose=True) != parts(INPUTS, x=1, verbose=False)
    assert parts(INPUTS - "verbose", x=1, verbose=True) == parts(INPUTS - "verbose", x=1)
    assert parts(DEFAULT - "verbose", x=1, verbose=True) == parts(DEFAULT - "verbose", x=1)
    assert parts(NONE, x=1) == []
    assert parts(RUN_ID + FLOW_PARAMETERS, x=1) == []  # outside a flow they say nothing


def test_cache_policy_is_checked_at_decoration():
    with pytest.raises(InvalidOptionError, match="cache_policy"):
        task(cache_policy="inputs")(lambda: 1)


def test_comment_blank_line_and_docstring_edits_keep_the_source_digest():
    nb = Notebook()
    nb.run("""
        def work(x):
            return x + 1
    """)
    before = function_digest(nb["work"])
    nb.run('''
        def work(x):
            """Add one."""
            # a comment

            return (x
                    + 1)  # another
    ''')
    assert function_digest(nb["work"]) == before
    nb.run("""
        def work(x):
            return x + 2
    """)
    assert function_digest(nb["work"]) != before


def test_helpers_are_hashed_transitively_and_rebinding_is_noticed():
    nb = Notebook()
    nb.run("""
        def clean(x):
            return deep(x)

        def deep(x):
            return x.strip()

        def work(x):
            return clean(x)
    """)
    first = dict(source_parts(nb["work"]))
    assert {"source", "helper:clean", "helper:deep"} <= set(first)
    assert source_parts(nb["work"]) == list(first.items())  # remembered, unchanged
    nb.run("""
        def deep(x):
            return x.strip().lower()
    """)
    second = dict(source_parts(nb["work"]))
    assert second["helper:deep"] != first["helper:deep"]
    assert second["source"] == first["source"] and second["helper:clean"] == first["helper:clean"]


def test_closure_values_and_scalar_globals_are_part_of_the_source():
    nb = Notebook()
    nb.run("""
        THRESHOLD = 5

        def make(scale):
            def work(x):
                return x * scale > THRESHOLD
            return work
    """)
    two, three = nb["make"](2), nb["make"](3)
    assert dict(source_parts(two))["closure:scale"] != dict(source_parts(three))["closure:scale"]
    before = dict(source_parts(two))["global:THRESHOLD"]
    nb.run("THRESHOLD = 6")
    assert dict(source_parts(two))["global:THRESHOLD"] != before


def test_variables_a_task_rebinds_are_its_state_not_its_definition():
    nb = Notebook()
    nb.run("""
        RUNS = 0

        def make():
            count = 0

            def work(x):
                global RUNS
                nonlocal count
                count += 1
                RUNS += 1
                return x

            return work
    """)
    work = nb["make"]()
    before = source_parts(work)
    work(1)
    assert source_parts(work) == before
    assert not [label for label, _ in before if label in ("closure:count", "global:RUNS")]


def test_library_functions_are_not_helpers():
    import json

    nb = Notebook(json=json)
    nb.run("""
        def work(x):
            return json.dumps(len(x))
    """)
    assert [label for label, _ in source_parts(nb["work"])] == ["source"]


def test_functions_without_source_hash_their_code():
    work = eval("lambda x: x + 1")
    assert function_digest(work) == function_digest(eval("lambda x: x + 1"))
    assert function_digest(work) != function_digest(eval("lambda x: x + 2"))


class Level(enum.IntEnum):
    LOW = 1


class Name(str):
    """A str subclass: equal to its str, but not the same input."""


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((1, 2), [1, 2]),
        ({1: "x"}, {"1": "x"}),
        (Level.LOW, 1),
        (Name("a"), "a"),
        (1, 1.0),
        (1, True),
        ({"k": (1,)}, {"k": [1]}),
        (frozenset({1}), {1}),
    ],
)
def test_inputs_that_differ_in_type_never_share_a_cached_result(first, second):
    calls = []

    @task(cache_policy=INPUTS)
    def echo(value):
        calls.append(value)
        return type(value).__name__, repr(value)

    assert echo(first) == (type(first).__name__, repr(first))
    assert echo(second) == (type(second).__name__, repr(second))
    assert len(calls) == 2
    assert echo(first) == (type(first).__name__, repr(first))  # a hit, of its own
    assert len(calls) == 2


def test_the_encoding_keeps_types_and_ignores_dict_and_set_order():
    assert encode({"b": 1, "a": 2}) == encode({"a": 2, "b": 1})
    assert encode({(1, 2), (3, 4)}) == encode({(3, 4), (1, 2)})
    assert encode({1: [1], "1": (1,)}) == encode({"1": (1,), 1: [1]})
    assert len({encode(v) for v in ([1], (1,), {1}, frozenset({1}), {1: None})}) == 5
    assert hash_value(Level.LOW) != hash_value(1)


def test_a_list_that_contains_itself_is_hashed_through_cloudpickle():
    looped: list = [1]
    looped.append(looped)
    assert hash_value(looped) is not None
    assert hash_value(looped) == hash_value(looped)


def test_an_open_file_is_hashed_by_path_size_and_mtime_never_read(tmp_path):
    path = tmp_path / "data.bin"
    with open(path, "wb") as file:
        file.truncate(64 << 20)  # 64 MB, sparse: instant to make, costly to read
    with open(path, "rb") as file:
        tracemalloc.start()
        first = hash_value({"file": file})
        inside = hash_value(Box(file))  # inside an object: by identity too
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert first is not None and inside is not None
        assert peak < 1 << 20, f"hashing the file allocated {peak} bytes: it was read"
        assert file.tell() == 0
        assert encode(file).startswith(b"file")
    os.utime(path, ns=(1, 1))
    with open(path, "rb") as file:
        assert hash_value({"file": file}) != first  # changed on disk: a new key


def test_an_open_file_without_a_path_is_unhashable():
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe:
        assert hash_value(pipe) is None
    os.close(write_end)


@dataclasses.dataclass
class Box:
    content: object


def test_compute_key_on_the_built_in_policies_as_prefect_code_calls_it():
    from kernelflow.cache_policies import Inputs

    def key(policy, **arguments):
        return policy.compute_key(**{"task_ctx": None, "flow_parameters": None, **arguments})

    assert key(INPUTS, inputs={"x": 42}) != key(INPUTS, inputs={"y": 42})
    assert key(INPUTS, inputs={"x": 42}) != key(INPUTS, inputs=None)
    assert key(Inputs(exclude=["y"]), inputs={"x": 1, "y": 2}) == key(INPUTS, inputs={"x": 1})
    assert key(NONE, inputs={"x": 1}) is None
    assert key(FLOW_PARAMETERS, inputs=None, flow_parameters={"a": 1}) != key(
        FLOW_PARAMETERS, inputs=None, flow_parameters={"a": 2}
    )
    assert key(TASK_SOURCE, inputs=None) is None and key(RUN_ID, inputs=None) is None

    @task
    def f(x):
        return x

    ctx = TaskRunContext(f, None)
    assert key(TASK_SOURCE, task_ctx=ctx, inputs=None) is not None
    both = key(INPUTS + TASK_SOURCE, task_ctx=ctx, inputs={"x": 1})
    assert both is not None and both != key(INPUTS + TASK_SOURCE, task_ctx=ctx, inputs={"x": 2})
    assert key(NONE + TASK_SOURCE, inputs=None) is None


def test_a_policy_of_your_own_combines_with_the_built_in_ones():
    calls = []

    class ByLength(CachePolicy):
        def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
            return str(len(inputs["text"]))

    @task(cache_policy=ByLength() + FLOW_PARAMETERS)  # TASK_SOURCE would hash `calls`
    def shout(text):
        calls.append(text)
        return text.upper()

    assert shout("abc") == "ABC"
    assert shout("xyz") == "ABC"  # same length: the policy says same key
    assert shout("long") == "LONG" and calls == ["abc", "long"]


def test_compound_policies_flatten_drop_no_cache_and_merge_inputs_as_prefects():
    from kernelflow.cache_policies import (
        NO_CACHE,
        CompoundCachePolicy,
        Inputs,
        NoCache,
        RunId,
        TaskSource,
    )

    assert NO_CACHE + INPUTS is INPUTS and INPUTS + NoCache() is INPUTS
    nested = CompoundCachePolicy(
        policies=[CompoundCachePolicy(policies=[Inputs(), TASK_SOURCE]), NO_CACHE, RunId()]
    )
    assert len(nested.policies) == 3 and NO_CACHE not in nested.policies
    assert RunId() in nested.policies and TaskSource() == TASK_SOURCE != RunId()
    merged = CompoundCachePolicy(
        policies=[Inputs(), TaskSource(), Inputs(exclude=["x"]), Inputs(exclude=["y"])]
    )
    assert merged.policies[0] == Inputs(exclude=["x", "y"]) and len(merged.policies) == 2
    assert CompoundCachePolicy(policies=[NO_CACHE, NoCache()]).compute_key(None, {}, {}) is None
    only_run = RunId() + TaskSource()
    assert only_run - "x" is only_run  # nothing there hashes inputs


def test_configured_policies_add_up_and_refuse_conflicts(tmp_path):
    from kernelflow.cache_policies import TaskSource

    configured = TaskSource().configure(key_storage=tmp_path, isolation_level="SERIALIZABLE")
    policy = INPUTS + configured
    assert policy.key_storage == tmp_path and policy.isolation_level == "SERIALIZABLE"
    assert (policy - "x").key_storage == tmp_path
    with pytest.raises(ValueError, match="different storage locations"):
        policy + TaskSource().configure(key_storage=tmp_path / "other")
    with pytest.raises(ValueError, match="different isolation levels"):
        policy + TaskSource().configure(isolation_level="READ_COMMITTED")

    @task(cache_policy=policy)
    def double(x):
        return 2 * x

    from kernelflow.cache import entries

    assert double(2) == 4 and len(entries(tmp_path)) == 1  # stored where configured


def test_task_source_and_run_id_keys_from_a_plain_task_context():
    from dataclasses import dataclass

    from kernelflow.cache_policies import DEFAULT

    @dataclass
    class Run:
        id: str
        flow_run_id: str | None = None

    @dataclass
    class Context:
        task_run: Run
        task: object

    def one():
        return 1

    def two():
        return 2

    keys = {
        DEFAULT.compute_key(Context(Run(run_id, flow_id), fn), None, None)
        for run_id, flow_id, fn in [
            ("a", "f", one),
            ("b", "g", one),
            ("c", None, one),
            ("a", "f", two),
        ]
    }
    assert len(keys) == 4  # the flow run (else the task run) and the code each change it


def test_combine_joins_str_parts_and_formats_keys_of_other_types():
    from kernelflow._results.keys import combine, digest

    parts = [("inputs", "ab"), ("source", "cd")]
    assert combine("t|m.t", parts) == digest(b"t|m.t\0inputs=ab\0source=cd")
    # a compute_key of the user's may give an int: formatted as before, not refused
    assert combine("compound", [("BY_LENGTH", 3)]) == digest(b"compound\0BY_LENGTH=3")


def test_a_run_s_parameters_encode_as_any_dict_of_theirs_would():
    from kernelflow._results.keys import _encode

    for value in ({"x": 1, "y": "a"}, {}, {"x": [1]}, {1: "a"}, {"x": Level.LOW}):
        out: list[bytes] = []
        _encode(value, out, set())
        assert encode(value) == b"".join(out)
    assert encode({"x": 1}) != encode({"x": 1.0}) != encode({"x": True})


def test_a_path_is_keyed_by_its_text_whether_or_not_pathlib_was_loaded_first():
    import pathlib

    assert encode(pathlib.PurePosixPath("data/a.csv")) == encode(
        pathlib.PurePosixPath("data") / "a.csv"
    )
    assert b"PurePosixPath'data/a.csv'" in encode(pathlib.PurePosixPath("data/a.csv"))
    assert encode(pathlib.PurePosixPath("a")) != encode(pathlib.PurePosixPath("b"))
    # The first @task loads the keys without pathlib (and urllib): start-up time.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, kernelflow\n"
            "@kernelflow.task\n"
            "def one(): return 1\n"
            "import kernelflow._results.keys\n"
            "print('pathlib' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "False"

"""kernelflow.utilities: collections (flat dicts), hashing, callables (parameter schema)."""

from __future__ import annotations

from collections import OrderedDict

from kernelflow import flow
from kernelflow.utilities.collections import dict_to_flatdict, flatdict_to_dict
from kernelflow.utilities.hashing import file_hash


def test_flat_dicts_round_trip():
    nested = {"a": {"b": 1, "c": {"d": 2}}, "e": 3, "empty": {}}
    flat = dict_to_flatdict(nested)
    assert flat == {("a", "b"): 1, ("a", "c", "d"): 2, ("e",): 3, ("empty",): {}}
    assert flatdict_to_dict(flat) == nested
    assert type(flatdict_to_dict(OrderedDict(flat))) is OrderedDict


def test_a_flows_default_version_is_its_files_hash():
    assert flow(flatdict_to_dict).version == file_hash(flatdict_to_dict.__globals__["__file__"])

"""Content digests of a task run's inputs and result, taken the moment it completes.

``FlowRun.retry()`` reuses a completed run's result only if nothing changed it since:
a later step may append to a list an upstream returned, or a caller may change a flow's
list parameter in place before retrying. Identity and ``==`` cannot see that (the
object is still "the same"), so the content is digested when the run ends and again
at the retry.

Values that cannot change in place (numbers, strings, tuples of them...) need no
digest, so a map over ints costs a type check per run. A value too large to digest
cheaply, or one pickle refuses, gets ``NOT_CHECKED``: a retry still reuses it by
identity, and says that it did not check it. The same digests go into the run history,
where a retry in a later session matches inputs by them.
"""

from __future__ import annotations

from typing import Any

from kernelflow._lazy_imports import blake2b, pickle
from kernelflow._stored import StoredResult

UNCHANGEABLE = "-"  # nothing to check: the value cannot change in place
NOT_CHECKED = "?"  # too large (or not picklable) to digest: reused unchecked

# Past these, digesting costs more than a retry should (a 1 GB array is read whole).
MAX_ITEMS = 100_000
MAX_BYTES = 16 * 2**20

_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None), range, type(...)})
_NOTHING_CAN_CHANGE: tuple[None, str] = (None, UNCHANGEABLE)  # shared, never mutated


def content_digest(value: Any) -> str:
    """A digest of the value's content: a hex string, or NOT_CHECKED."""
    nbytes = getattr(value, "nbytes", None)  # arrays, tensors: their size without a copy
    if isinstance(nbytes, int) and nbytes > MAX_BYTES:
        return NOT_CHECKED
    try:
        if len(value) > MAX_ITEMS:
            return NOT_CHECKED
    except Exception:  # no len(): not a container
        pass
    try:
        data = pickle.dumps(value, protocol=5)
    except Exception:  # a lock, a generator...: identity is all there is
        return NOT_CHECKED
    if len(data) > MAX_BYTES:
        return NOT_CHECKED
    return blake2b(data, digest_size=16).hexdigest()


def change_digest(value: Any) -> str:
    """UNCHANGEABLE for a value that cannot change in place, else its content digest."""
    kind = type(value)
    if kind in _ATOMS:
        return UNCHANGEABLE
    if (kind is tuple or kind is frozenset) and all(type(v) in _ATOMS for v in value):
        return UNCHANGEABLE
    if kind is StoredResult:  # the record keeps where the value is on disk, not it
        return UNCHANGEABLE
    return content_digest(value)


def take(parameters: dict[str, Any], result: Any) -> tuple[dict[str, str] | None, str]:
    """The digests of a completed run: of each input that could change, and its result.

    Returns:
        ``(inputs, output)``: ``inputs`` holds only the inputs that could change (None
        if none could); ``output`` is UNCHANGEABLE, NOT_CHECKED or a digest.
    """
    inputs = None
    for name, value in parameters.items():
        if type(value) in _ATOMS:
            continue
        digest = change_digest(value)
        if digest != UNCHANGEABLE:
            if inputs is None:
                inputs = {}
            inputs[name] = digest
    output = UNCHANGEABLE if type(result) in _ATOMS else change_digest(result)
    if inputs is None and output == UNCHANGEABLE:
        return _NOTHING_CAN_CHANGE  # the usual for small values: no new object per run
    return inputs, output


def changed(recorded: str, value: Any) -> bool | None:
    """Whether ``value``'s content differs from the ``recorded`` digest: True, False, or
    None when it was not checked (too large when recorded, or now)."""
    if recorded == UNCHANGEABLE:
        return False
    if recorded == NOT_CHECKED:
        return None
    now = content_digest(value)
    if now == NOT_CHECKED:
        return None
    return now != recorded

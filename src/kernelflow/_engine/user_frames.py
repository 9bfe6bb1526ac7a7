"""Tracebacks that show the user's code, not kernelflow's.

IPython and pytest leave out frames marked ``__tracebackhide__``, except a traceback's
last frame, which they always show. An error kernelflow raises on the user's behalf
(an upstream that failed, a Stop) would end in kernelflow's frames; these give it the
user's frames instead, so its last frame is the user's line.
"""

from __future__ import annotations

from types import TracebackType


def _ours(tb: TracebackType) -> bool:
    return tb.tb_frame.f_globals.get("__name__", "").startswith("kernelflow.")


def from_user_code(tb: TracebackType | None) -> TracebackType | None:
    """``tb`` from its first frame outside kernelflow (a traceback that starts in the
    machinery that resolved inputs or called a body starts at the user's code)."""
    while tb is not None and _ours(tb):
        tb = tb.tb_next
    return tb


def user_code_only(tb: TracebackType | None) -> TracebackType | None:
    """A traceback of ``tb``'s frames outside kernelflow, in order (None if none is)."""
    frames = []
    while tb is not None:
        if not _ours(tb):
            frames.append(tb)
        tb = tb.tb_next
    rebuilt = None
    for old in reversed(frames):
        rebuilt = TracebackType(rebuilt, old.tb_frame, old.tb_lasti, old.tb_lineno)
    return rebuilt

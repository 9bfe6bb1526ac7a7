"""``Deadline``: the one way flow and task timeouts are worked out.

A flow run's ``timeout_seconds`` becomes a Deadline when its body starts; a task
attempt's becomes one when a worker starts its body (never at submit: queue time is not
run time). Waits inside a flow run are bounded by the flow's Deadline, and an attempt by
the earlier of its own and its flow's.
"""

from __future__ import annotations

import time


class Deadline:
    """A point in ``time.monotonic()`` time, and the limit in seconds it came from.

    Attributes:
        at: The monotonic time at which it passes.
        seconds: The limit that set it (for messages).
        what: What times out ("Task run", "Flow run"), for messages.
    """

    __slots__ = ("at", "seconds", "what")

    def __init__(self, at: float, seconds: float, what: str = "The run") -> None:
        self.at = at
        self.seconds = seconds
        self.what = what

    @classmethod
    def after(cls, seconds: float | None, what: str = "The run") -> Deadline | None:
        """A deadline ``seconds`` from now; None for no limit."""
        if seconds is None:
            return None
        return cls(time.monotonic() + seconds, seconds, what)

    def remaining(self) -> float:
        """Seconds left (0 once passed)."""
        return max(0.0, self.at - time.monotonic())

    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def error(self) -> TimeoutError:
        """The TimeoutError a run that reached this deadline ends with."""
        return TimeoutError(  # Prefect's wording, which ported code may look for
            f"{self.what} exceeded timeout of {self.seconds:g} second(s) "
            f"(timeout_seconds={self.seconds:g})."
        )

    def __repr__(self) -> str:
        return f"Deadline({self.what}: {self.seconds:g}s, {self.remaining():.3g}s left)"


def earliest(*deadlines: Deadline | None) -> Deadline | None:
    """The deadline that comes first; None if there is none."""
    found = None
    for deadline in deadlines:
        if deadline is not None and (found is None or deadline.at < found.at):
            found = deadline
    return found


def remaining(deadline: Deadline | None) -> float | None:
    """Seconds left before ``deadline``, or None for no deadline (for ``timeout=`` args)."""
    return None if deadline is None else deadline.remaining()

"""``StateGroup``: counts over a collection of States (``kernelflow.states.StateGroup``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from kernelflow._state_types import StateType

if TYPE_CHECKING:
    from kernelflow.states import State


class StateGroup:
    """Counts over a collection of states (how many failed, whether all are final...)."""

    def __init__(self, states: Iterable[State]) -> None:
        self.states = list(states)
        self.type_counts: dict[StateType, int] = {}
        for state in self.states:
            self.type_counts[state.type] = self.type_counts.get(state.type, 0) + 1

    @property
    def fail_count(self) -> int:
        return self.type_counts.get(StateType.FAILED, 0) + self.type_counts.get(
            StateType.CRASHED, 0
        )

    def all_completed(self) -> bool:
        return self.type_counts.get(StateType.COMPLETED, 0) == len(self.states)

    def any_cancelled(self) -> bool:
        return StateType.CANCELLED in self.type_counts

    def any_failed(self) -> bool:
        return self.fail_count > 0

    def any_paused(self) -> bool:
        return StateType.PAUSED in self.type_counts

    def all_final(self) -> bool:
        return all(state.is_final() for state in self.states)

    def counts_message(self) -> str:
        """e.g. "total=4 not_final=1 'FAILED'=1 'COMPLETED'=2" (the non-final part only
        when some are not final)."""
        parts = [f"total={len(self.states)}"]
        not_final = sum(not state.is_final() for state in self.states)
        if not_final:
            parts.append(f"not_final={not_final}")
        parts += [f"{kind.value!r}={count}" for kind, count in self.type_counts.items()]
        return " ".join(parts)

    def __repr__(self) -> str:
        return f"StateGroup({self.counts_message()})"

"""How busy the rest of the machine was while a benchmark ran (Linux; elsewhere unknown).

The machine is shared, and a figure taken while another process kept a core busy is
not one taken on a quiet machine: benchmarks print this next to their figures, so a
reader can tell which it was.
"""

from __future__ import annotations

import multiprocessing
import os
import time

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _machine_busy() -> float:
    """CPU seconds the whole machine's processes kept its CPUs busy: user, nice,
    system, irq and softirq (not idle, I/O wait, or time the hypervisor took)."""
    with open("/proc/stat") as stat:
        fields = [int(value) for value in stat.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / _TICK


def _process_busy(pid: int | str) -> float:
    """CPU seconds of one process so far (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # ended meanwhile
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _ours() -> float:
    """This process and its live child processes (worker pools), CPU seconds."""
    children = multiprocessing.active_children()
    return _process_busy("self") + sum(_process_busy(child.pid) for child in children)


class OtherLoad:
    """``with OtherLoad() as load: ...``, then ``load.cores``: how many cores, on
    average, processes other than this one and its children kept busy meanwhile
    (None where /proc cannot tell). Children that end inside the block count as other."""

    cores: float | None = None

    def __enter__(self) -> OtherLoad:
        try:
            self._start = (_machine_busy(), _ours(), time.monotonic())
        except OSError:
            self._start = None
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._start is None:
            return
        machine, ours, started = self._start
        elapsed = time.monotonic() - started
        other = (_machine_busy() - machine) - (_ours() - ours)
        self.cores = max(0.0, other / elapsed) if elapsed > 0 else None

    def __str__(self) -> str:
        if self.cores is None:
            return "the rest of the machine's load: unknown"
        return f"other processes kept {self.cores:.2f} of {os.cpu_count()} cores busy meanwhile"

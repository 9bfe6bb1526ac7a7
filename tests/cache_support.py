"""Shared pieces of the cache tests: notebook-like cells, and running a script in a
fresh Python process."""

from __future__ import annotations

import linecache
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

SRC = str(Path(__file__).resolve().parents[1] / "src")


def home() -> Path:
    """This test's KERNELFLOW_HOME (conftest.py gives every test its own)."""
    return Path(os.environ["KERNELFLOW_HOME"])


class Notebook:
    """A namespace that runs code the way IPython runs cells: each cell's source is put
    in ``linecache`` under its own file name, and functions belong to ``__module__``
    ``notebook``."""

    def __init__(self, **names: Any) -> None:
        self.ns: dict[str, Any] = {"__name__": "notebook", **names}
        self.cells = 0

    def run(self, source: str) -> None:
        source = textwrap.dedent(source)
        self.cells += 1
        filename = f"<kernelflow-test-cell-{id(self)}-{self.cells}>"
        lines = source.splitlines(keepends=True)
        linecache.cache[filename] = (len(source), None, lines, filename)
        exec(compile(source, filename, "exec"), self.ns)

    def __getitem__(self, name: str) -> Any:
        return self.ns[name]


def run_python(script: str, home: Path, cwd: Path, timeout: float = 60) -> str:
    """Run ``script`` in a new interpreter with this checkout's kernelflow; its stdout."""
    return run_pythons(script, home, cwd, 1, timeout)[0]


def run_pythons(script: str, home: Path, cwd: Path, count: int, timeout: float = 60) -> list[str]:
    """Run ``script`` in ``count`` interpreters at once (argv[1] is 0, 1, ...); stdouts."""
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "KERNELFLOW_HOME": str(home), "PYTHONPATH": SRC}
    procs = [
        subprocess.Popen(
            [sys.executable, str(path), str(n)],
            cwd=cwd,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for n in range(count)
    ]
    outputs = [proc.communicate(timeout=timeout) for proc in procs]
    for proc, (_, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, stderr
    return [stdout for stdout, _ in outputs]

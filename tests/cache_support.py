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
    path = cwd / "script.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "KERNELFLOW_HOME": str(home), "PYTHONPATH": SRC}
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

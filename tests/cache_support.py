"""Shared pieces of the cache tests: a private KERNELFLOW_HOME per test, notebook-like
cells, and running a script in a fresh Python process."""

from __future__ import annotations

import linecache
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(autouse=True)
def kf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every cache test gets its own store: the real ~/.kernelflow is never touched."""
    home = tmp_path / "kfhome"
    monkeypatch.setenv("KERNELFLOW_HOME", str(home))
    monkeypatch.setenv("KERNELFLOW_LOGGING_LEVEL", "WARNING")
    yield home


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


class LogCapture:
    """Records of the ``kernelflow`` loggers (they do not propagate to the root logger)."""

    def __init__(self) -> None:
        import logging

        self.records: list[logging.LogRecord] = []
        handler = logging.Handler()
        handler.emit = self.records.append  # type: ignore[method-assign]
        self.handler = handler

    @property
    def messages(self) -> list[str]:
        return [record.getMessage() for record in self.records]


@pytest.fixture
def kf_logs() -> Iterator[LogCapture]:
    import logging

    capture = LogCapture()
    logger = logging.getLogger("kernelflow")
    logger.addHandler(capture.handler)
    try:
        yield capture
    finally:
        logger.removeHandler(capture.handler)

"""Fixtures for the graph tests: the real ``dot`` binary, and a call log."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


@pytest.fixture(scope="session")
def dot_binary() -> str:
    """Graphviz's ``dot``, installed with apt-get (as root) where it is missing."""
    if shutil.which("dot") is None and hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "graphviz"], env=env, check=False)
    path = shutil.which("dot")
    if path is None:
        pytest.fail("These tests need Graphviz's dot: apt-get install graphviz (make test does)")
    return path


@pytest.fixture
def calls() -> list:
    """A call log: tasks append to it, so a test can prove no task body ran."""
    return []

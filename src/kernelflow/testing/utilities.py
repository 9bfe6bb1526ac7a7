"""Test helpers under Prefect's module path (``prefect.testing.utilities``).

``prefect_test_harness()`` gives a block of code a world of its own: an empty
``KERNELFLOW_HOME`` (cached results, transaction records, concurrency limits) and an
empty run history (``kernelflow.runs()``, ``kernelflow.last_run()``), both put back as
they were afterwards. Prefect's harness starts a temporary server and database; kernelflow
keeps all that state in those two places, so isolating them is the whole job::

    @pytest.fixture(autouse=True, scope="session")
    def kernelflow_test_fixture():
        with prefect_test_harness():
            yield
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator

from kernelflow import _run_history

__all__ = ["prefect_test_harness"]


@contextlib.contextmanager
def prefect_test_harness(server_startup_timeout: int | None = 30) -> Iterator[None]:
    """Run the block with a fresh, temporary ``KERNELFLOW_HOME`` and an empty run history.

    ``server_startup_timeout`` is accepted for Prefect's signature; there is no server.
    """
    home = tempfile.mkdtemp(prefix="kernelflow-test-harness-")
    old_home = os.environ.get("KERNELFLOW_HOME")
    with _run_history._history_lock:
        old_history = list(_run_history._history)
        _run_history._history.clear()
    os.environ["KERNELFLOW_HOME"] = home
    try:
        yield
    finally:
        if old_home is None:
            os.environ.pop("KERNELFLOW_HOME", None)
        else:
            os.environ["KERNELFLOW_HOME"] = old_home
        with _run_history._history_lock:
            _run_history._history.clear()
            _run_history._history.extend(old_history)
        shutil.rmtree(home, ignore_errors=True)

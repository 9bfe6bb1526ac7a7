import logging

import pytest


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Every test gets its own KERNELFLOW_HOME: nothing touches the real ~/.kernelflow."""
    monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "kernelflow-home"))


class _ListHandler(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def kf_logs():
    """The log records kernelflow emits during the test (its logger does not propagate)."""
    from kernelflow._logging import run_logger

    run_logger()  # kernelflow's own handler and level first, as in any process that logs
    handler = _ListHandler()
    logger = logging.getLogger("kernelflow")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)

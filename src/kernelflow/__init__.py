"""kernelflow: Prefect-3-style flows and tasks that run right inside Jupyter notebooks.

The public names are re-exported here from private modules; ``tests/test_public_api.py``
keeps this list from drifting. Heavy or optional pieces (pydantic models, graphviz,
ipywidgets, Dask) load only when first used, so ``import kernelflow`` stays fast.
"""

from kernelflow import _wiring
from kernelflow._annotations import allow_failure, quote, unmapped
from kernelflow._context import tags
from kernelflow._logging import get_run_logger
from kernelflow._run_history import last_run, runs
from kernelflow._runs import FlowRun, TaskRun
from kernelflow.flows import Flow, flow
from kernelflow.states import State, StateType
from kernelflow.tasks import Task, materialize, task

__version__ = "0.1.0"


def _install_notebook_display() -> None:
    # In a Jupyter kernel, flow calls show a live display (kernelflow.notebook observes
    # runs; nothing in the engine knows). Elsewhere nothing extra is imported.
    import sys

    if "ipykernel" in sys.modules:
        from kernelflow.notebook import install

        install()


_wiring.install()  # what the lower layers' hooks (kernelflow._layer_hooks) call up to
_install_notebook_display()

__all__ = [
    "Asset",
    "Flow",
    "FlowRun",
    "State",
    "StateType",
    "Task",
    "TaskRun",
    "allow_failure",
    "assets",
    "cancel_flow_run",
    "flow",
    "get_run_logger",
    "last_run",
    "materialize",
    "pause_flow_run",
    "paused_runs",
    "quote",
    "resume_flow_run",
    "runs",
    "tags",
    "task",
    "transaction",
    "unmapped",
]

# Names whose modules load on first use: attribute name -> module that defines it.
_LAZY = {
    "pause_flow_run": "kernelflow._pause",
    "resume_flow_run": "kernelflow._pause",
    "cancel_flow_run": "kernelflow._pause",
    "paused_runs": "kernelflow._pause",
    "transaction": "kernelflow._transactions",
    "Asset": "kernelflow._assets",
    "assets": "kernelflow._assets",
}


# Submodules reachable as attributes after a plain ``import kernelflow`` (as Prefect's
# ``prefect.runtime``), loaded on first access.
_LAZY_MODULES = frozenset({"runtime", "concurrency", "context", "states", "futures"})


def __getattr__(name: str):  # noqa: ANN202
    import importlib

    if name in _LAZY_MODULES:
        return importlib.import_module(f"kernelflow.{name}")
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module 'kernelflow' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value

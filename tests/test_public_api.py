"""The public surface of DESIGN.md section 1: it imports, and it does not drift."""

import os
import subprocess
import sys

import pytest

import kernelflow


def test_design_section_1_names_import():
    import kernelflow.cache
    from kernelflow import (  # noqa: F401
        Asset,
        Flow,
        State,
        Task,
        allow_failure,
        assets,
        flow,
        get_run_logger,
        last_run,
        materialize,
        pause_flow_run,
        quote,
        resume_flow_run,
        runs,
        tags,
        task,
        transaction,
        unmapped,
    )
    from kernelflow.cache_policies import (  # noqa: F401
        DEFAULT,
        FLOW_PARAMETERS,
        INPUTS,
        NONE,
        RUN_ID,
        TASK_SOURCE,
    )
    from kernelflow.exceptions import (  # noqa: F401
        MappingLengthMismatch,
        MappingMissingIterable,
        ParameterTypeError,
        UpstreamTaskError,
    )
    from kernelflow.futures import as_completed, wait  # noqa: F401
    from kernelflow.runtime import flow_run, task_run  # noqa: F401
    from kernelflow.task_runners import TaskRunner, ThreadPoolTaskRunner  # noqa: F401
    from kernelflow.tasks import (  # noqa: F401
        MaterializingTask,
        exponential_backoff,
        task_input_hash,
    )

    assert callable(kernelflow.cache.entries) and callable(kernelflow.cache.clear)


def test_all_lists_exactly_the_public_names():
    public = {name for name in dir(kernelflow) if not name.startswith("_")}
    modules = {
        "exceptions",
        "flows",
        "futures",
        "runtime",
        "states",
        "task_runners",
        "tasks",
        "cache",
        "cache_policies",
        "transactions",
    }
    # Prefect's module paths (kernelflow.assets is also the callable assets())
    modules |= {"logging", "context", "flow_runs", "artifacts", "filesystems", "utilities"}
    modules |= {"concurrency", "testing", "input", "client", "results", "locking"}
    modules.add("viz")  # the graph drawing package, loaded by visualize()/graph()
    modules.add("notebook")  # the live displays, loaded in a kernel or when shown
    assert set(kernelflow.__all__) - public <= set(kernelflow._LAZY)
    assert public - set(kernelflow.__all__) - modules == set()


def test_transactions_module_has_prefects_names():
    from kernelflow.transactions import Transaction, get_transaction, transaction

    assert transaction is kernelflow.transaction and callable(get_transaction)
    with transaction(key="t") as txn:
        assert isinstance(txn, Transaction) and get_transaction() is txn


def test_prefect_future_names_are_aliases_for_porting():
    from kernelflow.futures import PrefectFuture, PrefectFutureList, TaskFuture, TaskFutureList

    assert issubclass(TaskFuture, PrefectFuture)  # Prefect's base; TaskFuture is one
    assert PrefectFutureList is TaskFutureList


def test_import_stays_light():
    code = (
        "import sys, kernelflow\n"
        "heavy = [m for m in ('graphviz', 'ipywidgets', 'distributed', 'pydantic', 'IPython',"
        " 'nest_asyncio2', 'cloudpickle') if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


# What a first synchronous flow does not use, so neither it nor `import kernelflow` may
# import it (benchmarks/overhead.py times the two in a new process).
NOT_IMPORTED_BY_A_FIRST_FLOW = (
    "asyncio",  # an async flow, task or wait; with it, these four:
    "ssl",
    "subprocess",
    "socket",
    "selectors",
    "ctypes",  # a deadline or cancel raising in another thread
    "signal",  # a deadline on the main thread
    "uuid",  # a run's id, read (with it, platform)
    "platform",
    "pickle",  # a digest of a value that can change in place
    "datetime",  # options and look-ups given as datetimes
    "hashlib",  # with OpenSSL: a flow file's md5 (the other digests are _blake2's)
    "json",  # why a value has no cache key
    "kernelflow._results.policies",  # a task's cache policy, read
)


def test_a_first_flow_imports_none_of_what_it_does_not_use(tmp_path):
    code = (
        "import sys, kernelflow\n"
        "@kernelflow.task\n"
        "def one(): return 1\n"
        "@kernelflow.flow\n"
        "def first(): return one()\n"
        "assert first() == 1\n"
        f"print(','.join(m for m in {NOT_IMPORTED_BY_A_FIRST_FLOW!r} if m in sys.modules))"
    )
    # The run history's writer thread, which imports what writing needs, is off: what
    # it loads after a run ended would race with this look.
    env = {**os.environ, "KERNELFLOW_HISTORY": "off", "KERNELFLOW_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == ""


def test_prefects_module_paths_have_kernelflow_twins():
    """Porting is changing the prefix ``prefect`` to ``kernelflow`` (issue 14, group 13)."""
    from kernelflow.artifacts import create_markdown_artifact  # noqa: F401
    from kernelflow.assets import Asset, materialize  # noqa: F401
    from kernelflow.cache_policies import NO_CACHE, NONE
    from kernelflow.client.schemas.objects import FlowRun, TaskRun  # noqa: F401
    from kernelflow.concurrency.asyncio import concurrency, rate_limit  # noqa: F401
    from kernelflow.concurrency.sync import concurrency, rate_limit  # noqa: F401, F811
    from kernelflow.context import TagsContext, get_run_context, tags, with_context  # noqa: F401  # noqa: F401
    from kernelflow.exceptions import (  # noqa: F401
        FailedRun,
        MissingContextError,
        ParameterBindError,
        PrefectException,
    )
    from kernelflow.filesystems import LocalFileSystem  # noqa: F401
    from kernelflow.flow_runs import pause_flow_run, resume_flow_run  # noqa: F401
    from kernelflow.futures import resolve_futures_to_results, resolve_futures_to_states  # noqa: F401
    from kernelflow.input import RunInput  # noqa: F401
    from kernelflow.logging import (  # noqa: F401
        disable_run_logger,  # noqa: F401
        get_logger,
        get_run_logger,
    )
    from kernelflow.logging.loggers import flow_run_logger, task_run_logger  # noqa: F401
    from kernelflow.states import StateGroup, raise_state_exception  # noqa: F401
    from kernelflow.testing.utilities import prefect_test_harness  # noqa: F401
    from kernelflow.transactions import atransaction  # noqa: F401
    from kernelflow.utilities.annotations import allow_failure, quote, unmapped  # noqa: F401
    from kernelflow.utilities.callables import parameter_schema  # noqa: F401

    assert isinstance(kernelflow.assets(), list)  # still callable as the module
    assert NO_CACHE is NONE and PrefectException is kernelflow.exceptions.KernelflowError
    assert get_logger("x").name == "kernelflow.x"


def test_get_run_context_inside_and_outside_runs():
    from kernelflow import flow, task
    from kernelflow.context import get_run_context
    from kernelflow.exceptions import MissingContextError

    @task
    def which():
        return get_run_context().task_run.name

    @flow
    def pipeline():
        return get_run_context().flow_run.name, which()

    flow_name, task_name = pipeline()
    assert flow_name.startswith("pipeline-") and task_name == "which-0"
    with pytest.raises(MissingContextError, match="inside a flow or task run"):
        get_run_context()

"""The public surface of DESIGN.md section 1: it imports, and it does not drift."""

import subprocess
import sys

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

    assert PrefectFuture is TaskFuture
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

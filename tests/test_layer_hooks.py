"""The hooks through which lower layers ask upper ones for work (kernelflow._layer_hooks)."""

import subprocess
import sys

import pytest

from kernelflow import _layer_hooks
from kernelflow._layer_hooks import Hook


def test_a_hook_calls_what_was_installed_with_its_arguments():
    calls = []
    hook = Hook("Thing.do()")
    hook.install(lambda *args, **kwargs: calls.append((args, kwargs)) or "done")
    assert hook(1, two=2) == "done"
    assert calls == [((1,), {"two": 2})]


def test_a_hook_with_nothing_installed_names_itself_and_the_fix():
    with pytest.raises(
        RuntimeError, match=r"Thing\.do\(\) has nothing installed.*import kernelflow"
    ):
        Hook("Thing.do()")()


def test_import_kernelflow_installs_every_hook():
    hooks = [value for value in vars(_layer_hooks).values() if isinstance(value, Hook)]
    assert len(hooks) == 9
    assert all(hook._serve is not None for hook in hooks)


def test_records_reach_presentation_only_when_asked():
    # A flow run, its state's details and its plain repr load no graph or display code;
    # asking for its graph loads viz through the hook.
    code = """
import sys
import kernelflow
from kernelflow import flow, task

@task
def one():
    return 1

@flow
def f():
    return one()

f()
run = kernelflow.last_run()
assert run.state.state_details.flow_run_id == run.id
repr(run)
assert "kernelflow.viz" not in sys.modules and "kernelflow.notebook._display" not in sys.modules
run.graph()
assert "kernelflow.viz" in sys.modules
"""
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)

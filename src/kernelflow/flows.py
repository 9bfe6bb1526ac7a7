"""Flows: functions that orchestrate task runs, each run recorded as a FlowRun.

``@flow`` makes a ``Flow``. Calling it runs the body in the calling thread (a notebook
cell's, for a sync flow) with its own task runner, waits for every task run the body
started, and returns the body's value, or raises the exception that failed it. A flow
called inside another flow is a subflow: its own run, with its own runner.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kernelflow import _layer_hooks
from kernelflow import _options as check
from kernelflow._context import visualize_tracker
from kernelflow._definitions import (
    Definition,
    advertise_options,
    check_name,
    check_reserved,
    file_version,
    function_name,
    hook_decorator,
    with_options,
)
from kernelflow._logging import run_logger
from kernelflow._subflow_retries import record, subflow_call
from kernelflow._validation import ParameterValidator
from kernelflow.task_runners import TaskRunner, ThreadPoolTaskRunner
from kernelflow.tasks import format_run_name

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Flow", "flow"]


_HOOKS = ("on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running")


class Flow(Definition, Generic[P, R]):
    """A function whose runs kernelflow orchestrates. Made by ``@flow``; options there."""

    _kind = "flow"

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        version: str | None = None,
        flow_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | None = None,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        description: str | None = None,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_serializer: Any = None,
        cache_result_in_memory: bool = True,
        log_prints: bool | None = None,
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
        on_cancellation: list[Callable[..., Any]] | None = None,
        on_crashed: list[Callable[..., Any]] | None = None,
        on_running: list[Callable[..., Any]] | None = None,
    ) -> None:
        fn = self._take_function(fn, locals())
        self.name = check_name("name", name) or _default_name(fn)
        check_reserved(self.signature.signature, "flow", self.name)
        self.description = check.optional_str("description", description) or inspect.getdoc(fn)
        self.version = check.optional_str("version", version) or file_version(fn)
        self.flow_run_name = check.run_name_template(
            "flow_run_name",
            flow_run_name,
            self.signature.signature.parameters,
            open_kwargs=self.signature.var_keyword is not None,
        )
        self.task_runner = _check_task_runner(task_runner)
        if not isinstance(validate_parameters, bool):
            raise check.fail("validate_parameters", validate_parameters, "True or False")
        self.validate_parameters = validate_parameters
        self.retries = check.non_negative_int("retries", retries)
        self.retry_delay_seconds = check.seconds("retry_delay_seconds", retry_delay_seconds)
        self.timeout_seconds = check.timeout("timeout_seconds", timeout_seconds)
        self.log_prints = check.optional_bool("log_prints", log_prints)
        # Defaults for the results of the flow's tasks (as in Prefect, a task's own
        # options win); setting a storage or serializer turns persistence on.
        self.result_storage = check.storage("result_storage", result_storage)
        self.result_serializer = check.serializer(result_serializer)
        self.persist_result = check.optional_bool("persist_result", persist_result)
        if self.persist_result is None and (result_storage, result_serializer) != (None, None):
            self.persist_result = True
        self.cache_result_in_memory = check.optional_bool(
            "cache_result_in_memory", cache_result_in_memory
        )
        for option in _HOOKS:
            hooks = check.hooks(option, self._options[option], kind="flow")
            setattr(self, f"{option}_hooks", list(hooks))
        self._validator = ParameterValidator(fn, self.name) if validate_parameters else None
        self._read_as(fn)

    def __call__(
        self, *args: P.args, return_state: bool = False, wait_for: Any = None, **kwargs: P.kwargs
    ) -> Any:
        """Run the flow and return its value (or its final State with ``return_state=True``).

        ``wait_for``: futures (or values) to wait for first; if one of them did not
        complete, the flow run fails with ``UpstreamTaskError`` without running.

        Raises:
            The exception that failed the flow: a task's own exception, a
            ``ParameterTypeError`` for parameters that fail validation, a ``TimeoutError``.
            An async flow returns an awaitable instead.
        """
        __tracebackhide__ = True
        tracker = visualize_tracker.get()
        if tracker is not None:
            return tracker.record_subflow_call(self, args, kwargs, return_state)
        from kernelflow._engine.flow_engine import run_flow_async, run_flow_sync

        if self.isgenerator and not return_state and not self.isasync:
            from kernelflow._engine.streaming import stream_run  # items come as made

            return stream_run(lambda: run_flow_sync(self, args, kwargs, wait_for))
        # In a flow run that may retry, a subflow call that completed in an earlier
        # attempt is not run again (as in Prefect): its state stands for this call.
        call = subflow_call(self, args, kwargs)
        if call is not None and call.reused is not None:
            run_logger(flow_run=call.parent).info(
                "Reusing the completed subflow run of %r from an earlier attempt", self.name
            )
            state = call.reused
            if self.isasync:
                return _awaitable_result(_ready(state), return_state)
            return state if return_state else state.result()
        if self.isasync:
            return _awaitable_result(
                _booked(run_flow_async(self, args, kwargs, wait_for), call), return_state
            )
        state = run_flow_sync(self, args, kwargs, wait_for)
        if call is not None:
            record(call, state)
        return state if return_state else state.result()

    @property
    def body(self) -> Callable[..., Any]:
        """What a run calls: ``fn``, or for a generator flow the wrapper that hands its
        items to the caller inside the run (so retries and the timeout cover them)."""
        if self.isgenerator:
            from kernelflow._engine.streaming import generator_body

            return generator_body(self.fn)
        return self.fn

    def visualize(self, *args: Any, **kwargs: Any) -> Any:
        """Draw the flow's task graph without running any task; returns a ``graphviz.Digraph``.

        The flow body runs with a tracker active: every task call, ``.submit()``,
        ``.map()`` and subflow call records a node and returns a placeholder (holding
        the task's ``viz_return_value`` if it has one) instead of running. Flow code
        that is not a task still runs, so keep side effects inside tasks; code that
        needs a placeholder's value (``if value > 3:``) raises ``PlaceholderValueError``
        naming the task, whose ``viz_return_value`` then fixes it. Parameters not given
        are drawn as unknown inputs. In a notebook the graph displays as SVG; elsewhere
        (a script, a terminal) it is also written to
        ``$KERNELFLOW_HOME/graphs/<flow name>.svg`` and a log line says where.

        Args:
            *args: The flow's parameters, as for a call.
            expand_maps: Draw each mapped run as its own node (up to 100 per map)
                instead of one node per ``.map()`` call. A flow with its own parameter
                named ``expand_maps`` gets the value instead.
            **kwargs: The flow's parameters, as for a call.
        """
        expand_maps = False
        if "expand_maps" not in self.signature.signature.parameters:
            expand_maps = bool(kwargs.pop("expand_maps", False))
        return _layer_hooks.visualize_flow(self, args, kwargs, expand_maps)

    def generate_mermaid_graph(self, *args: Any, **kwargs: Any) -> str:
        """The flow's task graph as Mermaid ``flowchart TD`` text, traced as
        ``visualize()`` traces it (no task runs; the same parameters)."""
        return _layer_hooks.mermaid_graph(self, args, kwargs)

    @property
    def parameters(self) -> Any:
        """The JSON schema of the flow's parameters, as Prefect's ``ParameterSchema``
        (a pydantic model: ``.properties``, ``.required``, ``.model_dump()``); each
        parameter's description comes from the docstring's ``Args:`` section."""
        from kernelflow.utilities.callables import parameter_schema

        return parameter_schema(self.fn)

    def make_run_name(self, parameters: dict[str, Any]) -> str:
        """The run's name: from ``flow_run_name`` (a template over the parameters, or a
        callable), else ``<flow name>-<6 hex digits>``.

        Raises:
            InvalidOptionError (a TypeError): ``flow_run_name`` is not a string or
                callable, or the callable returned no string.
        """
        if self.flow_run_name is not None:
            return format_run_name(self.flow_run_name, parameters, "flow_run_name")
        return f"{self.name}-{random.getrandbits(24):06x}"  # 6 random hex digits, no UUID

    def serialize_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """The parameters as JSON values; one that JSON cannot hold becomes ``"<Type>"``."""
        import json

        serialized = {}
        for name, value in parameters.items():
            try:
                serialized[name] = json.loads(json.dumps(value))
            except (TypeError, ValueError, RecursionError):
                serialized[name] = f"<{type(value).__name__}>"
        return serialized

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Parameters checked and coerced against the annotations (``ParameterTypeError``)."""
        return self._validator(parameters) if self._validator else parameters

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A new flow with the same function and these options changed."""
        return with_options(self, options, _HOOKS)

    on_completion = hook_decorator("on_completion")
    on_failure = hook_decorator("on_failure")
    on_cancellation = hook_decorator("on_cancellation")
    on_crashed = hook_decorator("on_crashed")
    on_running = hook_decorator("on_running")

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


def _default_name(fn: Any) -> str:
    name = function_name(fn)
    if name == "<lambda>":
        return "unknown-lambda"  # Prefect's name for it: "<" and ">" are banned in names
    return name.replace("_", "-")


async def _ready(state: Any) -> Any:
    return state


async def _booked(running: Any, call: Any) -> Any:
    state = await running
    if call is not None:
        record(call, state)
    return state


async def _awaitable_result(running: Any, return_state: bool) -> Any:
    __tracebackhide__ = True
    state = await running
    return state if return_state else state.result()


def _check_task_runner(value: Any) -> TaskRunner:
    if value is None:
        return ThreadPoolTaskRunner()
    if isinstance(value, type) and issubclass(value, TaskRunner):
        return value()
    if isinstance(value, TaskRunner):
        return value
    raise check.fail(
        "task_runner", value, "a TaskRunner such as ThreadPoolTaskRunner(max_workers=4)"
    )


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...
@overload
def flow(**options: Any) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(__fn: Any = None, **options: Any) -> Any:
    """Make a function a flow: ``@flow`` or ``@flow(task_runner=..., retries=1, ...)``.

    Options (checked now): name, version (default: a hash of the function's file),
    flow_run_name (a template over the parameters, or a callable), retries,
    retry_delay_seconds, task_runner (default: a new ThreadPoolTaskRunner), description,
    timeout_seconds, validate_parameters (pydantic, on by default), persist_result,
    result_storage, result_serializer, cache_result_in_memory, log_prints, and the hook
    lists on_completion, on_failure, on_cancellation, on_crashed, on_running (each also
    a decorator: ``@my_flow.on_failure``).

    A sync flow's timeout is enforced at its task calls and waits: code in the body that
    runs a long time without calling or waiting on a task finishes before the flow fails.
    """
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)


advertise_options(Flow, flow)

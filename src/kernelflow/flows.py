"""Flows: functions that orchestrate task runs, each run recorded as a FlowRun.

``@flow`` makes a ``Flow``. Calling it runs the body in the calling thread (a notebook
cell's, for a sync flow) with its own task runner, waits for every task run the body
started, and returns the body's value, or raises the exception that failed it. A flow
called inside another flow is a subflow: its own run, with its own runner.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, Generic, ParamSpec, TypeVar, overload

from kernelflow import _options as check
from kernelflow._context import visualize_tracker
from kernelflow._engine.inputs import Signature
from kernelflow._validation import ParameterValidator
from kernelflow.task_runners import TaskRunner, ThreadPoolTaskRunner

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["Flow", "flow"]


class Flow(Generic[P, R]):
    """A function whose runs kernelflow orchestrates. Made by ``@flow``; options there."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        task_runner: TaskRunner | type[TaskRunner] | None = None,
        validate_parameters: bool = True,
        retries: int | None = None,
        retry_delay_seconds: float | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@flow decorates a function, not {fn!r}.")
        self._options = {k: v for k, v in locals().items() if k not in ("self", "fn", "__class__")}
        self.fn = fn
        self.isasync = inspect.iscoroutinefunction(fn)
        self.signature = Signature(fn)
        self.name = check.name("name", name) or fn.__name__.replace("_", "-")
        self.description = check.optional_str("description", description) or inspect.getdoc(fn)
        self.version = check.optional_str("version", version)
        self.task_runner = _check_task_runner(task_runner)
        if not isinstance(validate_parameters, bool):
            raise check.fail("validate_parameters", validate_parameters, "True or False")
        self.validate_parameters = validate_parameters
        self.retries = check.non_negative_int("retries", retries)
        self.retry_delay_seconds = check.non_negative_number(
            "retry_delay_seconds", retry_delay_seconds
        )
        self.timeout_seconds = check.timeout("timeout_seconds", timeout_seconds)
        self.log_prints = check.optional_bool("log_prints", log_prints)
        self.on_completion_hooks = list(check.hooks("on_completion", on_completion))
        self.on_failure_hooks = list(check.hooks("on_failure", on_failure))
        self._validator = ParameterValidator(fn, self.name) if validate_parameters else None
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", None)  # type: ignore[assignment]
        self.__wrapped__ = fn

    def __call__(self, *args: P.args, return_state: bool = False, **kwargs: P.kwargs) -> Any:
        """Run the flow and return its value (or its final State with ``return_state=True``).

        Raises:
            The exception that failed the flow: a task's own exception, a
            ``ParameterTypeError`` for parameters that fail validation, a ``TimeoutError``.
            An async flow returns an awaitable instead.
        """
        tracker = visualize_tracker.get()
        if tracker is not None:
            return tracker.record_subflow_call(self, args, kwargs, return_state)
        from kernelflow._engine.flow_engine import run_flow_async, run_flow_sync

        if self.isasync:
            return _awaitable_result(run_flow_async(self, args, kwargs), return_state)
        state = run_flow_sync(self, args, kwargs)
        return state if return_state else state.result()

    def visualize(self, *args: Any, **kwargs: Any) -> Any:
        """Draw the flow's task graph without running any task; returns a ``graphviz.Digraph``.

        The flow body runs with a tracker active: every task call, ``.submit()``,
        ``.map()`` and subflow call records a node and returns a placeholder (holding
        the task's ``viz_return_value`` if it has one) instead of running. Flow code
        that is not a task still runs, so keep side effects inside tasks; code that
        needs a placeholder's value (``if value > 3:``) raises ``PlaceholderValueError``
        naming the task, whose ``viz_return_value`` then fixes it. Parameters not given
        are drawn as unknown inputs. In a notebook the graph displays as SVG.

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
        from kernelflow.viz import visualize_flow

        return visualize_flow(self, args, kwargs, expand_maps=expand_maps)

    def bind_parameters(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """Call arguments as a parameters dict, defaults applied (TypeError if they don't fit)."""
        return self.signature.bind(args, kwargs)

    def validate(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Parameters checked and coerced against the annotations (``ParameterTypeError``)."""
        return self._validator(parameters) if self._validator else parameters

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A new flow with the same function and these options changed."""
        unknown = set(options) - set(self._options)
        if unknown:
            raise TypeError(f"with_options() got unknown option(s): {', '.join(sorted(unknown))}")
        current = {
            **self._options,
            "on_completion": self.on_completion_hooks,
            "on_failure": self.on_failure_hooks,
        }
        return type(self)(self.fn, **{**current, **options})

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r})"


async def _awaitable_result(running: Any, return_state: bool) -> Any:
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

    Options (checked now): name, description, version, task_runner (default: a new
    ThreadPoolTaskRunner), validate_parameters (pydantic, on by default), retries,
    retry_delay_seconds, timeout_seconds, log_prints, on_completion, on_failure.

    A sync flow's timeout is enforced at its task calls and waits: code in the body that
    runs a long time without calling or waiting on a task finishes before the flow fails.
    """
    if __fn is not None:
        return Flow(__fn, **options)
    return lambda fn: Flow(fn, **options)

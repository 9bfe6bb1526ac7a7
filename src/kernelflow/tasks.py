"""Tasks: functions whose runs kernelflow records, retries, times out, caches and maps.

``@task`` makes a ``Task``. Calling it runs the function now (blocking) and returns its
value; ``.submit()`` returns a future at once; ``.map()`` submits one run per element.
Inside a flow they use the flow's runner; outside any flow, calls run directly and
submissions go to a session-wide background runner.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from kernelflow import _options as check
from kernelflow._context import flow_run_context, visualize_tracker
from kernelflow._definitions import (
    DEFAULT_POLICY,
    Definition,
    advertise_options,
    caching_options,
    check_reserved,
    function_name,
    hook_decorator,
    read_source,
    task_key,
    with_options,
)
from kernelflow._engine.direct_calls import call_task, check_deadline
from kernelflow._options import exponential_backoff
from kernelflow.exceptions import InvalidOptionError

if TYPE_CHECKING:
    from kernelflow._runs import FlowRun
    from kernelflow.futures import TaskFuture, TaskFutureList
    from kernelflow.states import State
    from kernelflow.task_runners import TaskRunner

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger("kernelflow.tasks")

# Names after "exponential_backoff" load on first use through the module __getattr__.
__all__ = [  # noqa: F822
    "Task",
    "task",
    "exponential_backoff",
    "MaterializingTask",
    "materialize",
    "task_input_hash",
]


_NOT_SET: Any = type("NotSet", (), {"__repr__": lambda self: "NotSet"})()
_HOOKS = ("on_completion", "on_failure", "on_running", "on_commit", "on_rollback")


class Task(Definition, Generic[P, R]):
    """A function whose runs kernelflow tracks. Made by ``@task``; see its options there."""

    def __init__(
        self,
        fn: Callable[P, R],
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        cache_policy: Any = _NOT_SET,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: Any = None,
        task_run_name: str | Callable[..., str] | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | list[float] | Callable[[int], list[float]] | None = None,
        retry_jitter_factor: float | None = None,
        persist_result: bool | None = None,
        result_storage: Any = None,
        result_storage_key: str | None = None,
        result_serializer: Any = None,
        cache_result_in_memory: bool = True,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        refresh_cache: bool | None = None,
        on_completion: list[Callable[..., Any]] | None = None,
        on_failure: list[Callable[..., Any]] | None = None,
        on_running: list[Callable[..., Any]] | None = None,
        on_commit: list[Callable[..., Any]] | None = None,
        on_rollback: list[Callable[..., Any]] | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        viz_return_value: Any = None,
        asset_deps: list[Any] | None = None,
    ) -> None:
        fn = self._take_function(fn, locals())
        self.name = check.name("name", name) or function_name(fn)
        check_reserved(self.signature.signature, "task", self.name)
        self.description = check.optional_str("description", description) or inspect.getdoc(fn)
        self.tags = set(check.tags(tags))
        self.version = check.optional_str("version", version)
        self.task_key = task_key(fn)
        # Where the task's cache entries live, fixed now (``fn`` may be swapped later).
        # Not task_key: that holds the file and line, which change with every edit of
        # a notebook cell and every kernel restart, and would lose every cached result.
        self.cache_namespace = (
            f"{getattr(fn, '__module__', None)}.{getattr(fn, '__qualname__', type(fn).__name__)}"
        )
        self.retries = check.non_negative_int("retries", retries)
        self.retry_delay_seconds = retry_delay_seconds
        self.retry_delays = check.retry_delays(retry_delay_seconds, self.retries)
        self.retry_jitter_factor = check.non_negative_number(
            "retry_jitter_factor", retry_jitter_factor
        )
        self.retry_condition_fn = check.optional_callable("retry_condition_fn", retry_condition_fn)
        self.timeout_seconds = check.timeout("timeout_seconds", timeout_seconds)
        self.log_prints = check.optional_bool("log_prints", log_prints)
        self.task_run_name = check.run_name_template(
            "task_run_name",
            task_run_name,
            self.signature.signature.parameters,
            open_kwargs=self.signature.var_keyword is not None,
        )
        for option in _HOOKS:
            setattr(self, f"{option}_hooks", list(check.hooks(option, self._options[option])))
        # Caching options are checked here; the result store gives them their meaning.
        self.cache_key_fn = check.optional_callable("cache_key_fn", cache_key_fn)
        self.cache_expiration = check.expiration(cache_expiration)
        self.result_storage = check.storage("result_storage", result_storage)
        self.result_storage_key = check.optional_str("result_storage_key", result_storage_key)
        self.result_serializer = check.serializer(result_serializer)
        self.refresh_cache = check.optional_bool("refresh_cache", refresh_cache)
        self.cache_result_in_memory = check.optional_bool(
            "cache_result_in_memory", cache_result_in_memory
        )
        # As in Prefect: an option about results turns persistence on, and only persisted
        # results are cached; persist_result=False turns caching off.
        caching_options(self, self._options, _NOT_SET)
        if self.result_storage is None and self._cache_policy is not DEFAULT_POLICY:
            # a policy's configure(key_storage=...)
            self.result_storage = getattr(self.cache_policy, "key_storage", None)
        self.viz_return_value = viz_return_value
        self.asset_deps = _assets("asset_deps", asset_deps)
        self.has_assets = bool(self.asset_deps)  # runs record asset events (cheap check)
        self._outside_flow_runs = itertools.count()
        self._plain: bool | None = None  # what its options ask of a run (_engine/plans.py)
        self._read_as(fn)

    @property
    def cache_policy(self) -> Any:
        """The task's cache policy (DEFAULT when it set none; see ``caching_options``)."""
        if self._cache_policy is DEFAULT_POLICY:
            from kernelflow._results.policies import DEFAULT

            self._cache_policy = DEFAULT
        return self._cache_policy

    @cache_policy.setter
    def cache_policy(self, policy: Any) -> None:
        self._cache_policy = policy

    # --- running --------------------------------------------------------------------

    def __call__(
        self,
        *args: P.args,
        return_state: bool = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: P.kwargs,
    ) -> Any:
        """Run the task now and return its value (or its State with ``return_state=True``).

        Raises the task's own exception if it fails. A body that returns a State it made
        (``return Failed(message=...)``) ends the run in it, and the call gives that
        State back without raising, as in Prefect. An async task returns an awaitable
        outside a flow and inside an async flow; inside a sync flow it runs to completion.
        """
        __tracebackhide__ = True
        tracker = visualize_tracker.get()
        if tracker is not None:
            return tracker.record_task_call(
                self, "call", self._with_self(args), kwargs, wait_for, return_state
            )
        names = self.signature.positional_names
        if names is not None and not kwargs and len(args) == len(names) and self.__self__ is None:
            parameters = dict(zip(names, args, strict=True))  # the usual call, as bind binds it
        else:
            parameters = self.bind_parameters(args, kwargs)
        if self.isgenerator and not return_state:  # items reach the caller as they come
            from kernelflow._engine.streaming import stream_run

            return stream_run(lambda: call_task(self, parameters, wait_for, True))
        return call_task(self, parameters, wait_for, return_state)

    def submit(
        self,
        *args: Any,
        return_state: bool = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> TaskFuture[R] | State:
        """Start a run on the flow's task runner (or the background one) and return its future."""
        tracker = visualize_tracker.get()
        if tracker is not None:
            return tracker.record_task_call(
                self, "submit", self._with_self(args), kwargs, wait_for, return_state
            )
        parameters = self.bind_parameters(args, kwargs)
        future = _current_runner().submit(self, parameters, wait_for)
        if return_state:
            future.wait()
            return future.state
        return future

    def map(
        self,
        *args: Any,
        return_state: bool = False,
        wait_for: Iterable[Any] | None = None,
        **kwargs: Any,
    ) -> TaskFutureList[R] | list[State]:
        """Submit one run per element of the iterable arguments; return their futures.

        Non-iterable arguments, and iterables wrapped in ``unmapped(...)``, go whole to
        every run; parameter defaults apply per run.
        """
        tracker = visualize_tracker.get()
        if tracker is not None:
            return tracker.record_task_call(
                self, "map", self._with_self(args), kwargs, wait_for, return_state
            )
        parameters = self.bind_parameters(args, kwargs, defaults=False)
        futures = _current_runner().map(self, parameters, wait_for)
        if return_state:
            futures.wait()
            return [future.state for future in futures]
        return futures

    def apply_async(
        self,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
        wait_for: Iterable[Any] | None = None,
    ) -> TaskFuture[R]:
        """Start a run on the session's background runner, inside a flow or not."""
        tracker = visualize_tracker.get()
        if tracker is not None:
            return tracker.record_task_call(
                self, "submit", self._with_self(tuple(args)), dict(kwargs or {}), wait_for
            )
        from kernelflow._runners.background import background_runner

        parameters = self.bind_parameters(tuple(args), dict(kwargs or {}))
        return background_runner().submit(self, parameters, wait_for)

    def delay(self, *args: Any, **kwargs: Any) -> TaskFuture[R]:
        """``apply_async`` with the task's own calling convention."""
        return self.apply_async(args, kwargs)

    # --- options ----------------------------------------------------------------------

    def with_options(self, **options: Any) -> Task[P, R]:
        """A new task with the same function and these options changed (tags replace)."""
        return with_options(self, options, _HOOKS)

    @functools.cached_property
    def source_code(self) -> str | None:
        """The function's source (None for a callable object), read when first asked for."""
        return read_source(self.fn)

    on_completion = hook_decorator("on_completion")
    on_failure = hook_decorator("on_failure")
    on_running = hook_decorator("on_running")
    on_commit = hook_decorator("on_commit")
    on_rollback = hook_decorator("on_rollback")

    def make_run_name(
        self, parameters: dict[str, Any], flow_run: FlowRun | None, template_ready: bool = True
    ) -> str:
        """The run's name: from ``task_run_name``, else ``<task name>-<n>``.

        ``template_ready=False`` while the parameters still hold futures: the engine names
        the run again from the template once they are resolved.
        """
        if self.task_run_name is not None and template_ready:
            name = self.templated_run_name(parameters)
            if name is not None:
                return name
        n = flow_run.next_run_number(self.name) if flow_run else next(self._outside_flow_runs)
        return f"{self.name}-{n}"

    def templated_run_name(self, parameters: dict[str, Any]) -> str | None:
        """``task_run_name`` filled in from ``parameters``; None (and a warning) if it fails.

        Raises:
            InvalidOptionError (a TypeError): the option is not a string or callable, or
                the callable did not return a string.
        """
        try:
            return format_run_name(self.task_run_name, parameters)
        except InvalidOptionError:
            raise
        except Exception as error:
            logger.warning(
                "task_run_name of %r failed (%r); using the default name.", self.name, error
            )
            return None

    def __repr__(self) -> str:
        return f"Task(name={self.name!r})"


def format_run_name(
    template: str | Callable[..., str],
    parameters: dict[str, Any],
    option: str = "task_run_name",
) -> str:
    """A run-name template filled in, or a run-name callable called (with
    ``parameters=`` if it takes that); raises whatever they raise, and
    ``InvalidOptionError`` (a TypeError) for a value that is neither, or a callable
    that returns no string."""
    if isinstance(template, str):
        return template.format(**parameters)
    if not callable(template):
        raise check.run_name_type_error(option, template)
    try:
        takes_parameters = "parameters" in inspect.signature(template).parameters
    except (TypeError, ValueError):  # no signature to read (some builtins)
        takes_parameters = False
    name = template(parameters=parameters) if takes_parameters else template()
    if not isinstance(name, str):
        raise InvalidOptionError(
            f"Callable {template!r} for {option!r} returned type {type(name).__name__} "
            "but a string is required."
        )
    return name


def _assets(option: str, values: Any) -> list[Any]:
    if not values:
        return []
    from kernelflow._assets import to_assets  # only tasks that name assets load it

    return to_assets(option, values)


def _current_runner() -> TaskRunner:
    ctx = flow_run_context.get()
    if ctx is not None:
        if ctx.deadline is not None:
            check_deadline(ctx)
        return ctx.task_runner
    from kernelflow._runners.background import background_runner

    return background_runner()


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...
@overload
def task(**options: Any) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(__fn: Any = None, **options: Any) -> Any:
    """Make a function a task: ``@task`` or ``@task(retries=2, ...)``.

    Options (all checked now, at decoration time): name, description, tags, version,
    cache_policy, cache_key_fn, cache_expiration, task_run_name (a template over the
    parameters, or a callable), retries, retry_delay_seconds (number, list of at most 50,
    or callable), retry_jitter_factor, persist_result, result_storage,
    result_storage_key, result_serializer, timeout_seconds (the run fails with
    TimeoutError when time is up; a sync function is stopped at its next Python line,
    or when one long C call it is blocked in returns), log_prints, refresh_cache, on_completion,
    on_failure, on_commit, on_rollback, retry_condition_fn, viz_return_value, asset_deps.
    """
    if __fn is not None:
        return Task(__fn, **options)
    return lambda fn: Task(fn, **options)


advertise_options(Task, task)


# Materializing tasks: tasks whose completed runs produce named assets (``@materialize``).
# What is recorded for each run, and how assets are drawn, lives in ``kernelflow._assets``.


class MaterializingTask(Task[P, R]):
    """A task whose completed runs materialize ``assets`` (made by ``@materialize``).

    Args:
        fn: The function.
        assets: What it writes: asset keys (URIs) or ``Asset`` objects.
        materialized_by: The tool that writes them, e.g. "dbt" or "spark" (for records).
        **task_options: Any ``@task`` option.
    """

    def __init__(
        self,
        fn: Callable[P, R],
        assets: Iterable[Any],
        materialized_by: str | None = None,
        **task_options: Any,
    ) -> None:
        super().__init__(fn, **task_options)
        self.assets = _assets("assets", assets)
        if not self.assets:
            raise _no_assets()
        self.materialized_by = check.optional_str("materialized_by", materialized_by)
        self.has_assets = True
        # Kept with the task's options, so with_options() rebuilds a MaterializingTask.
        self._options.update(assets=self.assets, materialized_by=materialized_by)

    def __repr__(self) -> str:
        return f"MaterializingTask(name={self.name!r}, assets={[a.key for a in self.assets]})"


def materialize(
    *assets: Any, materialized_by: str | None = None, by: str | None = None, **task_options: Any
) -> Callable[[Callable[P, R]], MaterializingTask[P, R]]:
    """Make a function a task that materializes ``assets`` when a run of it completes:
    ``@materialize("file://data/clean.parquet", materialized_by="pandas", retries=2)``.

    Asset keys are URIs (or ``Asset`` objects), checked now; ``by`` is Prefect's name for
    ``materialized_by``; any other option is a ``@task`` option.
    """
    if len(assets) == 1 and callable(assets[0]) and not isinstance(assets[0], str):
        raise check.fail(
            "materialize",
            assets[0],
            "called with asset keys first: @materialize('file://data/out.csv')",
        )
    tool = materialized_by if materialized_by is not None else by
    checked = _assets("assets", assets)  # fail at the decorator line, before the function
    if not checked:
        raise _no_assets()

    def decorate(fn: Callable[P, R]) -> MaterializingTask[P, R]:
        return MaterializingTask(fn, checked, materialized_by=tool, **task_options)

    return decorate


def _no_assets() -> Exception:
    return check.fail("assets", [], "at least one asset key (a URI), e.g. 'file://data/out.csv'")


def __getattr__(name: str) -> Any:
    if name == "task_input_hash":  # lives with the cache machinery; loaded on demand
        from kernelflow._results.keys import task_input_hash

        return task_input_hash
    raise AttributeError(f"module 'kernelflow.tasks' has no attribute {name!r}")

"""Generator tasks: a run that hands each item to its caller as it is made (Prefect 3).

Calling a task whose function is a generator gives a generator. Iterating it runs the
task: each item the function yields reaches the caller at once, and the run is one
ordinary task run through the one lifecycle, so its retries and timeout cover the
iteration (a retry starts the function again, and its items come again, as in
Prefect). The body runs in a thread of its own that hands items over one at a time,
so the caller's code between items runs while the run is Running.

Where there is no caller to hand items to (``.submit()``, ``.map()``,
``return_state=True``, a worker process of the process or Dask runner, where the body
runs), the run's value is the list of its items.

A cached generator task (one with a cache policy) keeps its items too, so that a cache
hit hands the same items over again: its streamed run's value is the list of items. If
the caller stops iterating early, that list is not the whole result, so it is never
cached (``StoppedEarly``). A streamed run of a task that caches nothing keeps no items
(a stream may be long); its value is the generator's return value.

A generator still half read when its flow run ends (kept in a list, or returned) would
leave its run Running and its thread blocked; so the end of the flow run closes the
stream: the body stops at its next item and its run completes.
"""

from __future__ import annotations

import contextvars
import functools
import threading
import weakref
from collections.abc import Callable, Generator, Iterator
from typing import Any

from kernelflow._context import flow_run_context, task_run_context
from kernelflow.states import State

_END = object()

# The stream of the generator call in progress, seen by the body's wrapper.
current_stream: contextvars.ContextVar[Stream | None] = contextvars.ContextVar(
    "kernelflow_stream", default=None
)


class Stream:
    """A hand-over of one item at a time from the body's thread to the caller."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[Any] = []
        self.closed = False  # the caller stopped iterating, or the run ended

    def put(self, item: Any) -> bool:
        """Hand ``item`` over and wait until it is taken; False once the caller is gone."""
        with self._cond:
            if self.closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._items or self.closed)
            return not self.closed

    def take(self) -> Any:
        """The next item, or ``_END`` once the run is over."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self.closed)
            if self._items:
                item = self._items.pop(0)
                self._cond.notify_all()
                return item
            return _END

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class StoppedEarly(list):
    """The items a cached generator run handed over before its caller stopped
    iterating: not its whole result, so it is never cached."""


def generator_body(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The body a generator task's run calls in place of ``fn``."""
    return functools.partial(_run_generator, fn)


def _run_generator(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    stream = current_stream.get()
    generator = fn(*args, **kwargs)
    if stream is None:  # nobody iterates: the run's value is the list of items
        return list(generator)
    run_ctx = task_run_context.get()
    kept: list[Any] | None = [] if run_ctx is not None and run_ctx.task.caches else None
    try:
        while True:
            try:
                item = next(generator)
            except StopIteration as stop:
                return stop.value if kept is None else kept
            if kept is not None:
                kept.append(item)
            if not stream.put(item):  # the caller stopped: end the generator there
                generator.close()
                return None if kept is None else StoppedEarly(kept)
    finally:
        generator.close()


def stream_run(call: Callable[[], State]) -> Generator[Any, None, None]:
    """Iterate a generator task's run: ``call()`` carries the run out and returns its
    final state (it runs in a thread of its own); items come as the body yields them.

    Raises:
        The run's exception, after the items it yielded, if it did not complete.
    """
    stream = Stream()
    outcome: list[Any] = []

    def produce() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # reaches the caller below
            outcome.append(error)
        finally:
            stream.close()

    _close_with_flow_run(stream)
    context = contextvars.copy_context()
    context.run(current_stream.set, stream)
    thread = threading.Thread(target=context.run, args=(produce,), name="kernelflow-stream")
    thread.start()
    try:
        yield from _items(stream)
    finally:
        stream.close()  # the caller stopped early: the body ends at its next item
    thread.join()
    result = outcome[0]
    if isinstance(result, BaseException):
        raise result
    value = result.result()  # raises the run's exception if it failed
    if result.name == "Cached" and isinstance(value, list):  # a hit: its items again
        yield from value


def _close_with_flow_run(stream: Stream) -> None:
    """Close ``stream`` when the enclosing flow run ends (weakly: a stream done with is
    not kept alive by its flow run)."""
    flow_ctx = flow_run_context.get()
    if flow_ctx is None:  # a generator held in a notebook: the user may read on later
        return
    ref = weakref.ref(stream)

    def on_state(run: Any, old: State | None, new: State) -> None:
        open_stream = ref()
        if open_stream is not None and new.is_final():
            open_stream.close()

    flow_ctx.flow_run.subscribe(on_state)


def _items(stream: Stream) -> Iterator[Any]:
    while (item := stream.take()) is not _END:
        yield item

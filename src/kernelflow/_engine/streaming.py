"""Generator tasks: a run that hands each item to its caller as it is made (Prefect 3).

Calling a task whose function is a generator gives a generator. Iterating it runs the
task: each item the function yields reaches the caller at once, and the run is one
ordinary task run through the one lifecycle, so its retries and timeout cover the
iteration (a retry starts the function again, and its items come again, as in
Prefect). The body runs in a thread of its own that hands items over one at a time,
so the caller's code between items runs while the run is Running.

Where there is no caller to hand items to (``.submit()``, ``.map()``,
``return_state=True``, a worker process), the run's value is the list of its items.
"""

from __future__ import annotations

import contextvars
import functools
import threading
from collections.abc import Callable, Generator, Iterator
from typing import Any

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


def generator_body(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The body a generator task's run calls in place of ``fn``."""
    return functools.partial(_run_generator, fn)


def _run_generator(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    stream = current_stream.get()
    generator = fn(*args, **kwargs)
    if stream is None:  # nobody iterates: the run's value is the list of items
        return list(generator)
    try:
        while True:
            try:
                item = next(generator)
            except StopIteration as stop:
                return stop.value
            if not stream.put(item):  # the caller stopped: end the generator there
                generator.close()
                return None
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
    result.result()  # raises the run's exception if it failed


def _items(stream: Stream) -> Iterator[Any]:
    while (item := stream.take()) is not _END:
        yield item

"""Pausing a running flow until a person (or another thread, cell or script) resumes it.

``pause_flow_run()`` inside a flow moves the flow run to Paused and blocks its body;
task runs already running go on, queued ones do not start. ``resume_flow_run(id)``
continues it, optionally with input validated against the pydantic model the pause
asked for; ``cancel_flow_run(id)`` ends it Cancelled. Everything is in-process: no
server, just an event per paused run.

In an async flow ``pause_flow_run`` returns an awaitable (``await pause_flow_run()``,
as in Prefect), so the event loop keeps running while the flow waits: in a notebook
that is what lets the kernel deliver the pause form's clicks.

How a pause asks the person is not decided here: it waits on a *waiter*. The default
one prompts on a terminal; ``kernelflow.notebook`` registers its own when imported in a
kernel (see ``register_waiter``). The engine never imports presentation.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from kernelflow._context import FlowRunContext, flow_run_context
from kernelflow._runs import FlowRun
from kernelflow._scopes.in_thread_deadline import WaitEndingBy
from kernelflow._scopes.scope import Scope, ends_at, left
from kernelflow.exceptions import CancelledRun, FlowPauseTimeout, ParameterTypeError

M = TypeVar("M")

__all__ = ["pause_flow_run", "resume_flow_run", "cancel_flow_run", "paused_runs"]


@dataclass
class PausedRun:
    """One waiting pause: what it waits for, and how it was answered.

    ``answered`` is set once, by the first ``resume_flow_run`` / ``cancel_flow_run``;
    callbacks given to ``on_answer`` then run in the answering thread (a waiter on an
    event loop hands them to its loop with ``call_soon_threadsafe``).
    """

    flow_run: FlowRun
    key: str
    input_model: Any = None
    timeout: float = 300
    answered: threading.Event = field(default_factory=threading.Event)
    run_input: Any = None
    cancelled: bool = False
    closed: bool = False  # the pause ended (answered or timed out): answers are refused
    scope: Scope | None = None  # the flow run's: the pause ends with it
    _callbacks: list[Callable[[], None]] = field(default_factory=list)

    def on_answer(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` once the pause is answered (at once if it already is)."""
        with _lock:
            if not self.answered.is_set():
                self._callbacks.append(callback)
                return
        callback()

    def _answer(self, run_input: Any, cancelled: bool) -> None:
        with _lock:
            if self.closed or self.answered.is_set():
                raise LookupError(f"Flow run {self.flow_run.name!r} is no longer paused.")
            self.run_input, self.cancelled = run_input, cancelled
            self.answered.set()
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class Waiter(Protocol):
    """Where a pause waits for its answer (a terminal prompt, a notebook form...).

    Both methods return when ``pause.answered`` is set or ``timeout`` seconds passed;
    the pause reads the outcome from ``pause`` itself.
    """

    def wait(self, pause: PausedRun, timeout: float) -> None: ...

    async def wait_async(self, pause: PausedRun, timeout: float) -> None: ...


_lock = threading.Lock()
_paused: dict[uuid.UUID, PausedRun] = {}
_keys_seen: dict[uuid.UUID, set[str]] = {}


def pause_flow_run(
    timeout: float = 300, key: str | None = None, wait_for_input: type[M] | None = None
) -> Any:
    """Pause the current flow run until it is resumed, then carry on where it was.

    In an async flow this returns an awaitable: ``await pause_flow_run(...)``.

    Args:
        timeout: Seconds to wait; past them the flow run fails with FlowPauseTimeout.
        key: Pause only once per key in a flow run (a second pause with the same key
            returns at once). By default each call is its own pause.
        wait_for_input: A pydantic model; ``resume_flow_run`` must then give input that
            validates against it, and this call returns the model instance.

    Returns:
        The validated input, or None when no input was asked for.

    Raises:
        FlowPauseTimeout: nobody resumed the run in time.
        CancelledRun: the run was cancelled while paused.
        RuntimeError: called outside a flow run.
    """
    ctx = flow_run_context.get()
    if ctx is None:
        raise RuntimeError("pause_flow_run() must be called inside a flow run.")
    if not timeout > 0:
        raise ValueError(f"pause_flow_run(timeout=...) must be a positive number, not {timeout!r}.")
    if _on_flow_loop(ctx):
        # The pause starts when awaited: a forgotten ``await`` leaves no run paused.
        return _pause_async(ctx, key, wait_for_input, timeout)
    pause = _begin(ctx, key, wait_for_input, timeout)
    if pause is None:
        return None
    waited = _within_scope(ctx, timeout)
    try:
        with WaitEndingBy(waited):  # a flow guard's timeout is raised here, not injected
            _waiter.wait(pause, waited)
    except BaseException as error:
        _end(ctx, pause, error)
        raise
    _end(ctx, pause)
    return _outcome(pause)


async def _pause_async(ctx: FlowRunContext, key: str | None, model: Any, timeout: float) -> Any:
    pause = _begin(ctx, key, model, timeout)
    if pause is None:
        return None
    try:
        await _waiter.wait_async(pause, _within_scope(ctx, pause.timeout))
    except BaseException as error:
        _end(ctx, pause, error)
        raise
    _end(ctx, pause)
    return _outcome(pause)


def _within_scope(ctx: FlowRunContext, timeout: float) -> float:
    """A pause's wait: its own timeout, cut short by the flow run's scope."""
    if ctx.deadline is None:
        return timeout
    return min(timeout, ctx.deadline.remaining())


def _on_flow_loop(ctx: FlowRunContext) -> bool:
    """True when called from an async flow's body, on its event loop."""
    if not ctx.is_async:
        return False
    try:
        return asyncio.get_running_loop() is ctx.loop
    except RuntimeError:  # no loop in this thread: a sync task of the async flow
        return False


def _begin(ctx: FlowRunContext, key: str | None, model: Any, timeout: float) -> PausedRun | None:
    run = ctx.flow_run
    if ctx.handle is None:  # a copy of the context elsewhere (``with_context``)
        raise RuntimeError(
            "pause_flow_run() pauses a flow run from its body, in the flow run's own "
            "process; call it in the flow, not in work it hands to another process."
        )
    with _lock:
        seen = _keys_seen.setdefault(run.id, set())
        key = key if key is not None else f"pause-{len(seen)}"
        if key in seen:
            return None
        seen.add(key)
    # The pause sets no state: it tells the flow run's handle, which has the lifecycle
    # make the run Paused (or refuses, outside the body's time).
    ctx.handle.pause_began(key)
    with _lock:
        pause = _paused[run.id] = PausedRun(run, key, model, timeout, scope=ctx.deadline)
    ctx.gate.clear()  # queued task runs wait at the gate until the run resumes
    return pause


def _end(ctx: FlowRunContext, pause: PausedRun, error: BaseException | None = None) -> None:
    # Closed under the lock, so an answer either lands before the outcome is read or is
    # refused: never "resumed" for the caller and timed out for the flow.
    with _lock:
        pause.closed = True
        _paused.pop(pause.flow_run.id, None)
    ctx.gate.set()
    # Whatever ended the pause, the lifecycle moves the run out of Paused now (``how``
    # is that state's message), so the body may go on, catch what the pause raises, and
    # end in any state.
    if error is not None:
        how = f"Pause ended by {type(error).__name__}."
    elif pause.cancelled:
        how = "Cancelled while paused."
    elif not pause.answered.is_set() and pause.scope is not None and pause.scope.expired():
        how = "The flow run's time ran out while paused."
    elif not pause.answered.is_set():
        how = f"Not resumed within {pause.timeout:g} s."
    else:
        how = f"Resumed{answer_text(pause)}."
    ctx.handle.pause_ended(how)


def _outcome(pause: PausedRun) -> Any:
    run = pause.flow_run
    if pause.cancelled:
        raise CancelledRun("The flow run was cancelled while paused.")
    if not pause.answered.is_set() and pause.scope is not None and pause.scope.expired():
        raise pause.scope.error()  # the flow run's timeout, not the pause's
    if not pause.answered.is_set():
        raise FlowPauseTimeout(
            f"Flow run {run.name!r} was not resumed within {pause.timeout:g} s, so it can "
            "no longer be resumed. Answer while it waits (its form, or "
            "kernelflow.resume_flow_run(run_id) from a thread), or give pause_flow_run a "
            "longer timeout=."
        )
    return pause.run_input


def answer_text(pause: PausedRun) -> str:
    """ " with name=value, ..." for the input a pause was resumed with; "" for none."""
    if pause.run_input is None:
        return ""
    try:
        values = dict(pause.run_input)  # a pydantic model iterates as (field, value)
    except (TypeError, ValueError):
        return f" with {pause.run_input!r}"
    return " with " + ", ".join(f"{name}={value!r}" for name, value in values.items())


def resume_flow_run(flow_run_id: uuid.UUID | str | FlowRun, run_input: Any = None) -> None:
    """Resume a paused flow run, from any thread, cell or script of this process.

    Raises:
        ParameterTypeError: ``run_input`` does not validate against the model the pause
            asked for; the run stays paused.
        LookupError: no paused run has that id (or it was answered already).
    """
    pause = find_pause(flow_run_id)
    value = _validate(pause.input_model, run_input) if pause.input_model is not None else None
    pause._answer(value, cancelled=False)


def cancel_flow_run(flow_run_id: uuid.UUID | str | FlowRun) -> None:
    """End a paused flow run as Cancelled (its pause raises CancelledRun in the flow)."""
    find_pause(flow_run_id)._answer(None, cancelled=True)


def paused_runs() -> list[FlowRun]:
    """The flow runs waiting in a pause right now."""
    with _lock:
        return [pause.flow_run for pause in _paused.values()]


def find_pause(flow_run_id: uuid.UUID | str | FlowRun) -> PausedRun:
    """The waiting pause of a flow run (LookupError with the fix if there is none)."""
    if isinstance(flow_run_id, FlowRun):
        flow_run_id = flow_run_id.id
    wanted = uuid.UUID(str(flow_run_id))
    with _lock:
        pause = _paused.get(wanted)
    if pause is None:
        raise LookupError(f"No paused flow run has id {wanted}; see kernelflow.paused_runs().")
    return pause


def _validate(model: Any, run_input: Any) -> Any:
    import pydantic

    try:
        if isinstance(run_input, model):
            return run_input
        return model.model_validate(run_input or {})
    except pydantic.ValidationError as error:
        field_errors = {".".join(map(str, e["loc"])) or "input": e["msg"] for e in error.errors()}
        fields = "; ".join(f"{name}: {message}" for name, message in field_errors.items())
        invalid = ParameterTypeError(f"Input for the paused run is not valid: {fields}")
        invalid.field_errors = field_errors  # for forms that show each field's error
        raise invalid from None


# --- waiting -------------------------------------------------------------------------


def wait_for_answer(pause: PausedRun, timeout: float) -> None:
    """Block until the pause is answered or ``timeout`` passes."""
    # Short waits in a loop, so the notebook's Stop button (KeyboardInterrupt) is seen
    # promptly on every platform.
    deadline = ends_at(timeout)
    while not pause.answered.is_set():
        remaining = left(deadline)
        if not remaining:
            return
        pause.answered.wait(min(remaining, 0.2))


async def wait_for_answer_async(pause: PausedRun, timeout: float) -> None:
    """Await the answer without blocking the event loop, whichever thread answers."""
    loop = asyncio.get_running_loop()
    woken = asyncio.Event()

    def wake() -> None:
        try:
            loop.call_soon_threadsafe(woken.set)
        except RuntimeError:  # the loop closed meanwhile: nobody is waiting any more
            pass

    pause.on_answer(wake)
    try:
        await asyncio.wait_for(woken.wait(), timeout)
    except asyncio.TimeoutError:
        pass


def answer_from_text(pause: PausedRun, reply: str) -> None:
    """Answer ``pause`` with a typed line: Enter or JSON resumes, 'cancel' cancels.

    Raises:
        ParameterTypeError, ValueError: the line is not valid input (ask again).
    """
    if reply.strip().lower() == "cancel":
        cancel_flow_run(pause.flow_run)
    elif pause.input_model is None:
        resume_flow_run(pause.flow_run)
    else:
        resume_flow_run(pause.flow_run, _parse_json(reply))


def prompt_text(pause: PausedRun, hint: str = "") -> str:
    """What the input line asks: how to resume, with which fields, or to cancel."""
    name = pause.flow_run.name
    if pause.input_model is None:
        return f"Flow run {name!r} is paused{hint}. Enter resumes, 'cancel' cancels: "
    fields = ", ".join(pause.input_model.model_fields)
    return f"Flow run {name!r} is paused{hint}. Input as JSON ({fields}), or 'cancel': "


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f'Not JSON ({error}); for example {{"approved": true}}') from None


class TerminalWaiter:
    """The default waiter: a prompt on the terminal when there is one, else just wait
    for ``resume_flow_run`` from another thread or script."""

    def wait(self, pause: PausedRun, timeout: float) -> None:
        self._maybe_prompt(pause)
        wait_for_answer(pause, timeout)

    async def wait_async(self, pause: PausedRun, timeout: float) -> None:
        self._maybe_prompt(pause)
        await wait_for_answer_async(pause, timeout)

    @staticmethod
    def _maybe_prompt(pause: PausedRun) -> None:
        if sys.stdin is not None and sys.stdin.isatty():
            # A daemon thread: a blocking read of the terminal cannot be interrupted,
            # and an answer from elsewhere must end the pause without it.
            threading.Thread(target=_prompt, args=(pause,), daemon=True).start()


def _prompt(pause: PausedRun) -> None:
    """Ask with ``input()`` until answered; an answer from elsewhere first ends it."""
    while not pause.answered.is_set():
        reply = input(prompt_text(pause))
        if pause.answered.is_set() or pause.closed:
            return
        try:
            answer_from_text(pause, reply)
        except (ParameterTypeError, ValueError, LookupError) as error:
            print(error)  # ask again


_waiter: Waiter = TerminalWaiter()


def register_waiter(waiter: Waiter | None) -> None:
    """Make pauses wait on ``waiter`` (None: back to the terminal default).

    ``kernelflow.notebook`` calls this when imported in a kernel, so a paused cell
    shows a form or an input line; the engine itself never imports presentation.
    """
    global _waiter
    _waiter = waiter if waiter is not None else TerminalWaiter()

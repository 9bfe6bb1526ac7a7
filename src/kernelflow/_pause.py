"""Pausing a running flow until a person (or another thread, cell or script) resumes it.

``pause_flow_run()`` inside a flow moves the flow run to Paused and blocks its body;
task runs already running go on, queued ones do not start. ``resume_flow_run(id)``
continues it, optionally with input validated against the pydantic model the pause
asked for; ``cancel_flow_run(id)`` ends it Cancelled. Everything is in-process: no
server, just an event per paused run.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar

from kernelflow._context import flow_run_context
from kernelflow._runs import FlowRun, set_state
from kernelflow.exceptions import CancelledRun, FlowPauseTimeout, ParameterTypeError
from kernelflow.states import Paused, Running

M = TypeVar("M")

__all__ = ["pause_flow_run", "resume_flow_run", "cancel_flow_run", "paused_runs"]


@dataclass
class PausedRun:
    """One waiting pause: what it waits for, and how it was answered."""

    flow_run: FlowRun
    key: str
    input_model: Any = None
    answered: threading.Event = field(default_factory=threading.Event)
    run_input: Any = None
    cancelled: bool = False


_lock = threading.Lock()
_paused: dict[uuid.UUID, PausedRun] = {}
_keys_seen: dict[uuid.UUID, set[str]] = {}


def pause_flow_run(
    timeout: float = 300, key: str | None = None, wait_for_input: type[M] | None = None
) -> M | None:
    """Pause the current flow run until it is resumed, then carry on where it was.

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
    run = ctx.flow_run
    with _lock:
        seen = _keys_seen.setdefault(run.id, set())
        key = key if key is not None else f"pause-{len(seen)}"
        if key in seen:
            return None
        seen.add(key)
        pause = _paused[run.id] = PausedRun(run, key, wait_for_input)
    ctx.gate.clear()  # queued task runs wait at the gate until the run resumes
    set_state(run, Paused(f"Waiting to be resumed (key {key!r})."))
    try:
        answered = _wait_for_answer(pause, timeout)
    finally:
        with _lock:
            _paused.pop(run.id, None)
        ctx.gate.set()
    if pause.cancelled:
        raise CancelledRun("The flow run was cancelled while paused.")
    if not answered:
        raise FlowPauseTimeout(
            f"Flow run {run.name!r} was not resumed within {timeout:g} seconds; call "
            "kernelflow.resume_flow_run(run_id) to resume a paused run."
        )
    set_state(run, Running("Resumed."))
    return pause.run_input


def resume_flow_run(flow_run_id: uuid.UUID | str | FlowRun, run_input: Any = None) -> None:
    """Resume a paused flow run, from any thread, cell or script of this process.

    Raises:
        ParameterTypeError: ``run_input`` does not validate against the model the pause
            asked for; the run stays paused.
        LookupError: no paused run has that id.
    """
    pause = _find(flow_run_id)
    if pause.input_model is not None:
        pause.run_input = _validate(pause.input_model, run_input)
    pause.answered.set()


def cancel_flow_run(flow_run_id: uuid.UUID | str | FlowRun) -> None:
    """End a paused flow run as Cancelled (its pause raises CancelledRun in the flow)."""
    pause = _find(flow_run_id)
    pause.cancelled = True
    pause.answered.set()


def paused_runs() -> list[FlowRun]:
    """The flow runs waiting in a pause right now."""
    with _lock:
        return [pause.flow_run for pause in _paused.values()]


def _find(flow_run_id: uuid.UUID | str | FlowRun) -> PausedRun:
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


def _wait_for_answer(pause: PausedRun, timeout: float) -> bool:
    """Wait where the person is: a form in the notebook cell, a prompt in the cell or on
    the terminal, or just for ``resume_flow_run`` from another thread or script."""
    from kernelflow.notebook import _pause_ui  # presentation, loaded on demand

    if _pause_ui.in_notebook():
        if _pause_ui.widget_events_can_be_polled():
            return _pause_ui.wait_with_form(
                pause.flow_run, pause.input_model, pause.answered, timeout
            )
        # The kernel cannot deliver widget clicks to a running cell (see _pause_ui), but
        # it can ask the frontend for a line of input, unless the frontend takes none
        # (a headless run: nbclient, nbmake, papermill). Then the pause waits for
        # resume_flow_run from another thread, as in a script.
        if not _prompt_in_cell(pause):
            print(
                f"Flow run {pause.flow_run.name!r} is paused and this frontend takes no "
                "input: resume it with kernelflow.resume_flow_run(run_id)."
            )
    elif sys.stdin is not None and sys.stdin.isatty():
        threading.Thread(target=_prompt, args=(pause,), daemon=True).start()
    return _wait(pause.answered, timeout)


def _prompt(pause: PausedRun) -> None:
    """Ask with ``input()`` until answered; an answer from elsewhere first ends it."""
    name = pause.flow_run.name
    model = pause.input_model
    while not pause.answered.is_set():
        if model is None:
            reply = input(f"Flow run {name!r} is paused. Enter resumes, 'cancel' cancels: ")
        else:
            fields = ", ".join(model.model_fields)
            reply = input(f"Flow run {name!r} is paused. Input as JSON ({fields}), or 'cancel': ")
        if pause.answered.is_set():
            return
        try:
            if reply.strip().lower() == "cancel":
                cancel_flow_run(pause.flow_run)
            else:
                resume_flow_run(pause.flow_run, _parse_json(reply) if model else None)
        except (ParameterTypeError, ValueError) as error:
            print(error)  # ask again


def _prompt_in_cell(pause: PausedRun) -> bool:
    """``_prompt`` in a kernel cell; False when the frontend cannot answer ``input()``."""
    from IPython.core.error import StdinNotImplementedError

    try:
        _prompt(pause)
    except StdinNotImplementedError:
        return False
    return True


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError as error:
        raise ValueError(f'Not JSON ({error}); for example {{"approved": true}}') from None


def _wait(event: threading.Event, timeout: float) -> bool:
    # Short waits in a loop, so the notebook's Stop button (KeyboardInterrupt) is seen
    # promptly on every platform.
    deadline = time.monotonic() + timeout
    while not event.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        event.wait(min(remaining, 0.2))
    return True

"""How a paused flow asks in a notebook cell: a form for an awaited async flow, an input
line for a sync one.

A kernel handles a widget's click only while the cell that waits for it lets the
kernel's event loop run. ipykernel >= 7.4 does that for an *async* cell that awaits:
``await flow()`` whose pause awaits an ``asyncio.Event`` gets the form's clicks (they may
arrive on a subshell thread, hence ``call_soon_threadsafe`` in
``_pause.wait_for_answer_async``). A *sync* flow blocks the cell, and no public
mechanism delivers clicks to it, so it asks on the cell's input line; its timeout and
``resume_flow_run`` / ``cancel_flow_run`` from any thread still end that line (see
``_pause_line``).

``register()`` makes the engine's pauses wait here; ``kernelflow.notebook`` calls it when
imported in a kernel. The buttons call the public ``resume_flow_run`` /
``cancel_flow_run``, so this module only answers the pause, never steers the engine.
"""

from __future__ import annotations

import enum
import html
import json
import typing
from collections.abc import Callable
from typing import Any

from kernelflow import _pause
from kernelflow._pause import PausedRun, wait_for_answer, wait_for_answer_async
from kernelflow._runs import FlowRun
from kernelflow.exceptions import ParameterTypeError
from kernelflow.notebook import _pause_line

_NO_DEFAULT: Any = object()


def register() -> None:
    """Make pauses ask in the cell (called on importing kernelflow.notebook in a kernel)."""
    _pause.register_waiter(KernelWaiter())


class KernelWaiter:
    """The pause waiter of a Jupyter kernel."""

    def wait(self, pause: PausedRun, timeout: float) -> None:
        """A sync flow: ask on the cell's input line (or, headless, just wait)."""
        if not _pause_line.ask_in_cell(pause, timeout):
            print(
                f"Flow run {pause.flow_run.name!r} is paused and this frontend takes no "
                "input: resume it with kernelflow.resume_flow_run(run_id)."
            )
            wait_for_answer(pause, timeout)

    async def wait_async(self, pause: PausedRun, timeout: float) -> None:
        """An awaited async flow: show the form and await its click (or any answer)."""
        try:
            form = PauseForm(pause, _resume(pause), _cancel(pause))
        except ImportError:  # no ipywidgets: nothing to click, resume from code
            print(
                f"Flow run {pause.flow_run.name!r} is paused: resume it with "
                "kernelflow.resume_flow_run(run_id) (pip install ipywidgets for a form)."
            )
            await wait_for_answer_async(pause, timeout)
            return
        finish = _show(form)
        outcome = "stopped."
        try:
            await wait_for_answer_async(pause, timeout)
            outcome = form.outcome()
        finally:
            finish(outcome)


def _resume(pause: PausedRun) -> Callable[[Any], None]:
    return lambda data: _pause.resume_flow_run(pause.flow_run.id, run_input=data)


def _cancel(pause: PausedRun) -> Callable[[], None]:
    return lambda: _pause.cancel_flow_run(pause.flow_run.id)


def _show(form: PauseForm) -> Callable[[str], None]:
    """Show the form inside the flow run's live display, or in the cell when there is
    none; returns what replaces the form with the outcome once the pause ends."""
    from kernelflow.notebook import _display

    views = _display._flow_views.get(form.flow_run) or []
    if views:
        box = views[0].widget
        box.children = (*box.children, form.view)
        return form.close
    from IPython.display import display

    handle = display(form.bundle(), raw=True, display_id=True)

    def finish(outcome: str) -> None:
        form.close(outcome)
        # Static outputs only, so a saved notebook shows what was answered.
        handle.update(form.bundle(outcome, widget=False), raw=True)

    return finish


class PauseForm:
    """The widgets of one pause: a field per model field, Resume, Cancel, and messages.

    Attributes:
        submitted: True once the form's own Resume or Cancel answered the pause.
    """

    def __init__(
        self, pause: PausedRun, resume: Callable[[Any], None], cancel: Callable[[], None]
    ) -> None:
        import ipywidgets as widgets

        self.pause, self.flow_run, self._model = pause, pause.flow_run, pause.input_model
        self._resume, self._cancel = resume, cancel
        self.submitted = False
        self.fields = _field_widgets(self._model) if self._model is not None else {}
        self.errors = {name: widgets.HTML() for name in self.fields}
        self.resume_button = widgets.Button(
            description="Resume", button_style="success", icon="play"
        )
        self.cancel_button = widgets.Button(
            description="Cancel", button_style="danger", icon="stop"
        )
        self.message = widgets.HTML()
        self.resume_button.on_click(lambda _: self.submit())
        self.cancel_button.on_click(lambda _: self.stop())
        title = widgets.HTML(f"<b>{_escape(self.title())}</b>")
        waits = widgets.HTML(f"<span class='kf-pause-timeout'>{_escape(self.waits())}</span>")
        rows = [widgets.VBox([self.fields[name], self.errors[name]]) for name in self.fields]
        buttons = widgets.HBox([self.resume_button, self.cancel_button])
        self.view = widgets.VBox(
            [title, waits, *rows, buttons, self.message], _dom_classes=["kf-pause-form"]
        )
        for name in self.fields:
            field_input = _input_of(self.fields[name])
            _report_idle_after_updates(field_input)
            field_input.observe(lambda _, name=name: self.recheck(name), names="value")

    def title(self) -> str:
        return f"Flow run {self.flow_run.name!r} is paused."

    def waits(self) -> str:
        """How long the pause waits for an answer, and what happens then."""
        return f"Waits up to {_duration(self.pause.timeout)} for an answer, then times out."

    def values(self) -> dict[str, Any]:
        values = {name: _value_of(widget) for name, widget in self.fields.items()}
        for name, field in self._model.model_fields.items():
            annotation = _unwrap_optional(field.annotation)
            if _is_collection(annotation):
                if values[name].strip():
                    values[name] = _from_text(annotation, values[name])
                else:  # left empty: the field's default (or "Field required")
                    del values[name]
        return values

    def submit(self) -> None:
        """Resume with the form's values; on invalid input show why and keep waiting."""
        for error in self.errors.values():
            error.value = ""
        try:
            self._resume(self.values() if self._model is not None else None)
        except ParameterTypeError as error:
            self._show_errors(error)
            return
        except LookupError as error:  # answered elsewhere a moment ago
            self.message.value = _escape(str(error))
            return
        self.submitted = True
        self._disable()

    def recheck(self, name: str) -> None:
        """Clear ``name``'s message once its value is valid (typing on from a rejected
        value should not leave the rejection in view until the next Resume)."""
        if not self.errors[name].value:
            return
        from pydantic import ValidationError

        try:
            self._model.model_validate(self.values())
        except ValidationError as error:
            if any(str(detail["loc"][0]) == name for detail in error.errors() if detail["loc"]):
                return
        self.errors[name].value = ""
        if not any(error.value for error in self.errors.values()):
            self.message.value = ""

    def stop(self) -> None:
        try:
            self._cancel()
        except LookupError as error:
            self.message.value = _escape(str(error))
            return
        self.submitted = True
        self._disable()

    def outcome(self) -> str:
        """How the pause ended, with the values it was resumed with."""
        return _pause_line.outcome(self.pause, here=self.submitted)

    def close(self, outcome: str) -> None:
        """Replace the form by one line saying how the pause ended."""
        import ipywidgets as widgets

        self._disable()
        line = _ended_line(self.flow_run, outcome)
        self.view.children = (
            widgets.HTML(f"<span class='kf-pause-outcome'>{_escape(line)}</span>"),
        )

    def bundle(self, outcome: str | None = None, widget: bool = True) -> dict[str, Any]:
        """The form's mimebundle: the widget beside static text and HTML."""
        line = _ended_line(self.flow_run, outcome) if outcome else self.title()
        data = {"text/plain": line, "text/html": f"<p class='kf-pause-outcome'>{_escape(line)}</p>"}
        if widget:
            data.update(self.view._repr_mimebundle_())
            data["text/plain"] = line  # not the VBox(...) repr
        return data

    def _show_errors(self, error: ParameterTypeError) -> None:
        details = getattr(error, "field_errors", {})
        for name, text in details.items():
            if name in self.errors:
                self.errors[name].value = f"<span style='color:#dc2626'>{_escape(text)}</span>"
        self.message.value = f"<span style='color:#dc2626'>{_escape(str(error))}</span>"

    def _disable(self) -> None:
        self.resume_button.disabled = self.cancel_button.disabled = True
        for widget in self.fields.values():
            for inner in getattr(widget, "children", (widget,)):
                inner.disabled = True


def _ended_line(flow_run: FlowRun, outcome: str) -> str:
    return f"Flow run {flow_run.name!r} was paused: {outcome}"


def _field_widgets(model: Any) -> dict[str, Any]:
    return {name: _widget_for(name, field) for name, field in model.model_fields.items()}


def _widget_for(name: str, field: Any) -> Any:
    """A widget for one pydantic field: its type picks the kind, its default the value."""
    import ipywidgets as widgets

    annotation = _unwrap_optional(field.annotation)
    default = _NO_DEFAULT if field.is_required() else field.get_default(call_default_factory=True)
    options = _choices(annotation)
    common = {"description": field.title or name, "style": {"description_width": "initial"}}
    if field.description:
        common["tooltip"] = field.description
    if options is not None:
        value = default if default is not _NO_DEFAULT else options[0][1]
        return widgets.Dropdown(options=options, value=value, **common)
    kinds = {bool: widgets.Checkbox, int: widgets.IntText, float: widgets.FloatText}
    kind = kinds.get(annotation, widgets.Text)
    widget = kind(**common)
    if _is_collection(annotation):
        widget.placeholder = 'JSON, e.g. [1, 2] or {"a": 1}'
    if default is not _NO_DEFAULT and default is not None:
        widget.value = default if kind is not widgets.Text else _as_text(annotation, default)
    if field.description:
        widget.layout.margin = "0 0 0 0"
        return widgets.VBox([widget, widgets.HTML(f"<small>{_escape(field.description)}</small>")])
    return widget


def _is_collection(annotation: Any) -> bool:
    """Typed into the form as JSON: lists, tuples, sets and dicts (``list[int]``...)."""
    return (typing.get_origin(annotation) or annotation) in (list, tuple, set, frozenset, dict)


def _as_text(annotation: Any, value: Any) -> str:
    if _is_collection(annotation):
        try:
            return json.dumps(list(value) if isinstance(value, (set, frozenset)) else value)
        except TypeError:  # not JSON-able (a set of tuples...): Python's spelling
            pass
    return str(value)


def _from_text(annotation: Any, text: str) -> Any:
    """A collection field's JSON parsed; text that is not JSON is left for validation to
    reject with its own message ("Input should be a valid list")."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _choices(annotation: Any) -> list[tuple[str, Any]] | None:
    if typing.get_origin(annotation) is typing.Literal:
        return [(str(value), value) for value in typing.get_args(annotation)]
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return [(member.name, member) for member in annotation]
    return None


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (the widget for X; an empty value stays possible)."""
    args = typing.get_args(annotation)
    if type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1:
            return rest[0]
    return annotation


def _input_of(widget: Any) -> Any:
    # Fields with a description are a VBox of the input and its help text.
    return widget.children[0] if hasattr(widget, "children") else widget


def _value_of(widget: Any) -> Any:
    return _input_of(widget).value


def _report_idle_after_updates(widget: Any) -> None:
    """Publish an idle status for each message the browser sends to ``widget``.

    The browser sends a widget's next change only once the kernel reported idle for the
    previous one (ipywidgets' throttle). ipykernel 7.4 handles comm messages that arrive
    while an async cell awaits without publishing a status for them, so a field edited
    twice would never send its second value. The form only exists while its cell awaits.
    """
    from IPython import get_ipython

    kernel = getattr(get_ipython(), "kernel", None)
    if kernel is None or widget.comm is None:
        return

    def handle(msg: dict[str, Any]) -> None:
        try:
            widget._handle_msg(msg)
        finally:
            content = {"execution_state": "idle"}
            kernel.session.send(kernel.iopub_socket, "status", content, parent=msg)

    widget.comm.on_msg(handle)


def _duration(seconds: float) -> str:
    """``90 s``, ``5 min``, ``2 h 30 min``: a pause's timeout as a person says it."""
    if seconds < 120:
        return f"{seconds:g} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _escape(text: str) -> str:
    return html.escape(text)

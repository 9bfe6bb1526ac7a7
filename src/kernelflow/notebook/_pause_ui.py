"""The paused flow's form in the notebook: its fields, Resume and Cancel.

A paused flow's cell is still executing, and a kernel does not handle widget messages
while a cell runs. ``jupyter_ui_poll`` lets the waiting cell process them; the buttons
then call the public ``resume_flow_run`` / ``cancel_flow_run``, so this module only
answers the pause, never steers the engine itself.

jupyter-ui-poll 1.1 (its latest release) needs ``Kernel.do_one_iteration``, which
ipykernel removed in 7.1; on such kernels ``widget_events_can_be_polled()`` is False and
the pause asks for a line of input in the cell instead (see ``kernelflow._pause``).
"""

from __future__ import annotations

import enum
import html
import time
import typing
from collections.abc import Callable
from typing import Any

from kernelflow._runs import FlowRun
from kernelflow.exceptions import ParameterTypeError

_NO_DEFAULT: Any = object()


def in_notebook() -> bool:
    """True inside an IPython kernel with ipywidgets installed (a frontend may show them)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def widget_events_can_be_polled() -> bool:
    """Whether jupyter-ui-poll can deliver widget events to this kernel's running cell."""
    try:
        import jupyter_ui_poll  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    return hasattr(get_ipython().kernel, "do_one_iteration")


class PauseForm:
    """The widgets of one pause: a field per model field, Resume, Cancel, and messages."""

    def __init__(
        self,
        flow_run: FlowRun,
        model: Any,
        resume: Callable[[Any], None],
        cancel: Callable[[], None],
    ) -> None:
        import ipywidgets as widgets

        self._model = model
        self._resume, self._cancel = resume, cancel
        self.fields = _field_widgets(model) if model is not None else {}
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
        title = widgets.HTML(
            f"<b>⏸ Flow run <code>{flow_run.name}</code> is paused.</b> "
            f"{_escape(flow_run.state.message or '')}"
        )
        rows = [widgets.VBox([self.fields[name], self.errors[name]]) for name in self.fields]
        buttons = widgets.HBox([self.resume_button, self.cancel_button])
        self.view = widgets.VBox([title, *rows, buttons, self.message])

    def values(self) -> dict[str, Any]:
        return {name: _value_of(widget) for name, widget in self.fields.items()}

    def submit(self) -> None:
        """Resume with the form's values; on invalid input show why and keep waiting."""
        for error in self.errors.values():
            error.value = ""
        try:
            self._resume(self.values() if self._model is not None else None)
        except ParameterTypeError as error:
            self._show_errors(error)
            return
        self._close("Resumed.")

    def stop(self) -> None:
        self._cancel()
        self._close("Cancelled.")

    def _show_errors(self, error: ParameterTypeError) -> None:
        details = getattr(error, "field_errors", {})
        for name, text in details.items():
            if name in self.errors:
                self.errors[name].value = f"<span style='color:#dc2626'>{_escape(text)}</span>"
        self.message.value = f"<span style='color:#dc2626'>{_escape(str(error))}</span>"

    def _close(self, text: str) -> None:
        self.resume_button.disabled = self.cancel_button.disabled = True
        for widget in self.fields.values():
            widget.disabled = True
        self.message.value = _escape(text)


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
    if default is not _NO_DEFAULT and default is not None:
        widget.value = default if kind is not widgets.Text else str(default)
    if field.description:
        widget.layout.margin = "0 0 0 0"
        return widgets.VBox([widget, widgets.HTML(f"<small>{_escape(field.description)}</small>")])
    return widget


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


def _value_of(widget: Any) -> Any:
    # Fields with a description are a VBox of the input and its help text.
    inner = widget.children[0] if hasattr(widget, "children") else widget
    return inner.value


def _escape(text: str) -> str:
    return html.escape(text)


def wait_with_form(flow_run: FlowRun, model: Any, answered: Any, timeout: float) -> bool:
    """Show the pause form in the running cell and process widget events until the pause
    is answered (by the form or by ``resume_flow_run`` from elsewhere) or times out."""
    from IPython.display import display
    from jupyter_ui_poll import ui_events

    from kernelflow._pause import cancel_flow_run, resume_flow_run

    form = PauseForm(
        flow_run,
        model,
        lambda data: resume_flow_run(flow_run.id, run_input=data),
        lambda: cancel_flow_run(flow_run.id),
    )
    display(form.view)
    deadline = time.monotonic() + timeout
    with ui_events() as poll:
        while not answered.is_set():
            if time.monotonic() >= deadline:
                form._close("Timed out.")
                return False
            poll(20)  # handle the widget messages that arrived meanwhile
            answered.wait(0.05)
    return True

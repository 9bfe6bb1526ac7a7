"""``parameter_schema``: a function's parameters as JSON schema (``prefect.utilities.callables``).

``Flow.parameters`` gives it for a flow. The schema is pydantic's for a model built from
the signature, in Prefect's layout: ``properties`` in signature order, each with its
``title`` (the name), ``position``, ``default`` and the ``description`` written for it in
the docstring's ``Args:`` section; nested models under ``definitions``.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from typing import Any

import pydantic

__all__ = ["ParameterSchema", "parameter_schema"]


class ParameterSchema(pydantic.BaseModel):
    """The JSON schema of a function's parameters (Prefect's ``ParameterSchema``)."""

    title: str = "Parameters"
    type: str = "object"
    properties: dict[str, Any] = pydantic.Field(default_factory=dict)
    required: list[str] = pydantic.Field(default_factory=list)
    definitions: dict[str, Any] = pydantic.Field(default_factory=dict)

    def model_dump_for_openapi(self) -> dict[str, Any]:
        """The schema as a plain dict, for a form or an OpenAPI document."""
        return self.model_dump(mode="json")


def parameter_schema(fn: Any) -> ParameterSchema:
    """The JSON schema of ``fn``'s parameters (``fn`` may be a Flow or Task: its function)."""
    fn = getattr(fn, "fn", fn)
    signature = inspect.signature(fn)
    try:  # string annotations (``from __future__ import annotations``) as types
        hints = typing.get_type_hints(fn)
    except Exception:  # a name the annotation uses is not importable: no type for it
        hints = {}
    docs = _arg_descriptions(inspect.getdoc(fn) or "")
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        annotation = hints.get(param.name, Any)
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (
            annotation,
            pydantic.Field(default, title=param.name, description=docs.get(param.name)),
        )
    model = pydantic.create_model("Parameters", **fields)  # type: ignore[call-overload]
    try:
        schema = model.model_json_schema()
    except pydantic.PydanticInvalidForJsonSchema:  # a type JSON schema cannot describe
        schema = {"properties": {name: {"title": name} for name in fields}}
    # Prefect's layout: nested models under "definitions", referred to from there.
    text = json.dumps(schema).replace('"#/$defs/', '"#/definitions/')
    schema = json.loads(text)
    properties = schema.get("properties", {})
    for position, name in enumerate(fields):
        properties.setdefault(name, {"title": name})["position"] = position
    return ParameterSchema(
        properties=properties,
        required=schema.get("required", []),
        definitions=schema.get("$defs", {}),
    )


def _arg_descriptions(docstring: str) -> dict[str, str]:
    """``name -> description`` from a Google-style ``Args:`` section."""
    found: dict[str, str] = {}
    in_args, current, name_indent = False, None, 0
    for line in docstring.splitlines():
        stripped = line.strip()
        if re.fullmatch(r"(Args|Arguments|Parameters):", stripped):
            in_args, current = True, None
            continue
        if not in_args or not stripped:
            continue
        indent = len(line) - len(line.lstrip())
        if indent == 0:  # the next section
            break
        match = re.match(r"\s+(\*{0,2}\w+)(?:\s*\(.*?\))?:\s*(.*)", line)
        if match and (current is None or indent <= name_indent):
            current, name_indent = match.group(1).lstrip("*"), indent
            found[current] = match.group(2).strip()
        elif current:  # a description's continuation line
            found[current] = f"{found[current]} {stripped}".strip()
    return found

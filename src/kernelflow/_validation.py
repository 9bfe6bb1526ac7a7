"""Flow parameter validation with pydantic, built on a flow's first call.

Only annotated parameters are validated (and coerced: ``"3"`` becomes ``3`` for an
``int``); unannotated ones pass through untouched. The pydantic model is built lazily so
``import kernelflow`` and decorating a flow stay fast.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from kernelflow.exceptions import ParameterTypeError


class ParameterValidator:
    """Validates one flow's parameters; the pydantic model is built on first use."""

    def __init__(self, fn: Any, flow_name: str) -> None:
        self._fn = fn
        self._flow_name = flow_name
        self._model: Any = None
        self._field_of: dict[str, str] = {}  # parameter name -> model field name
        self._built = False

    def __call__(self, parameters: dict[str, Any]) -> dict[str, Any]:
        if not self._built:
            self._model = self._build_model()
            self._built = True
        if self._model is None:
            return parameters
        import pydantic

        to_check = {name: value for name, value in parameters.items() if name in self._field_of}
        try:
            validated = self._model.model_validate(to_check)
        except pydantic.ValidationError as error:
            raise ParameterTypeError(self._describe(error)) from None
        return {**parameters, **{n: getattr(validated, self._field_of[n]) for n in to_check}}

    def _build_model(self) -> Any:
        try:
            hints = typing.get_type_hints(self._fn)
        except Exception:  # an annotation that cannot be resolved: validate what we can
            hints = {
                k: v
                for k, v in getattr(self._fn, "__annotations__", {}).items()
                if not isinstance(v, str)
            }
        annotated = [
            param
            for param in inspect.signature(self._fn).parameters.values()
            if param.name in hints and param.kind not in (param.VAR_POSITIONAL, param.VAR_KEYWORD)
        ]
        if not annotated:
            return None  # nothing to check: pydantic is not even imported (0.04 s)
        import pydantic

        fields: dict[str, Any] = {}
        for param in annotated:
            default = ... if param.default is param.empty else param.default
            # Fields get neutral names (aliased to the parameter) so a parameter called
            # e.g. "copy" or "schema" cannot clash with pydantic's own attributes.
            field = self._field_of[param.name] = f"p{len(fields)}"
            fields[field] = (
                hints[param.name],
                pydantic.Field(default, validation_alias=param.name),
            )
        config = pydantic.ConfigDict(arbitrary_types_allowed=True)
        return pydantic.create_model(f"{self._flow_name}_parameters", __config__=config, **fields)

    def _describe(self, error: Any) -> str:
        lines = [f"Flow {self._flow_name!r} got parameters that do not match its annotations:"]
        for item in error.errors():
            where = ".".join(str(part) for part in item["loc"]) or "parameters"
            lines.append(f"  - {where}: {item['msg']} (got {item.get('input')!r})")
        lines.append("Pass values of the annotated types, or use @flow(validate_parameters=False).")
        return "\n".join(lines)

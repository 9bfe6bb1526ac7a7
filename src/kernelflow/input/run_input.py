"""``RunInput``: a pydantic model of the input a paused flow run waits for."""

from __future__ import annotations

from typing import Any, ClassVar

import pydantic


class RunInput(pydantic.BaseModel):
    """The base class of the input a paused flow run asks for.

    Unknown fields are refused (as in Prefect), so a mistyped name in
    ``resume_flow_run(..., run_input=...)`` is an error rather than silently dropped.
    """

    model_config: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict(extra="forbid")

    _description: ClassVar[str | None] = None

    @classmethod
    def with_initial_data(cls, description: str | None = None, **defaults: Any) -> type[RunInput]:
        """A subclass whose fields default to ``defaults`` (shown pre-filled to whoever
        resumes the run); ``description`` says what the input is for. A name that is
        not a field yet becomes one, typed as its value (as in Prefect).
        """
        fields = {
            name: (
                cls.model_fields[name].annotation if name in cls.model_fields else type(value),
                value,
            )
            for name, value in defaults.items()
        }
        model = pydantic.create_model(cls.__name__, __base__=cls, **fields)  # type: ignore[call-overload]
        model._description = description if description is not None else cls._description
        return model

    @classmethod
    def description(cls) -> str | None:
        """What ``with_initial_data(description=...)`` said the input is for."""
        return cls._description

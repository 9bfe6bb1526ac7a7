"""Materializing tasks: tasks whose completed runs produce named assets (``@materialize``).

Re-exported by ``kernelflow.tasks`` (as in Prefect) and ``kernelflow``; what is recorded
for each run, and how assets are drawn, lives in ``kernelflow._assets``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from kernelflow import _options as check
from kernelflow.tasks import Task, _assets

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["MaterializingTask", "materialize"]


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

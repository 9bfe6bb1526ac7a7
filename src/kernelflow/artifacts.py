"""Artifacts, under Prefect's names: results people read, published by runs.

    from kernelflow.artifacts import create_markdown_artifact, create_table_artifact

    @task
    def report(rows):
        create_table_artifact(rows, key="daily-rows", description="rows loaded today")

Each ``create_*`` keeps the artifact with the task run (or flow run) it is called in and
returns its id. ``artifacts_of(run)`` lists a run's artifacts (a flow run's include its
task runs'); ``Artifact.get(key)`` gives the latest of a key. In a notebook an artifact
displays as markdown. Prefect stores artifacts on its server; kernelflow keeps them in
the kernel, with the run records.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from kernelflow._artifact_views import table_rows
from kernelflow._artifacts import Artifact, artifacts_of, check_key, find, record
from kernelflow.exceptions import InvalidOptionError

__all__ = [
    "Artifact",
    "artifacts_of",
    "create_image_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]


def _create(kind: str, data: Any, key: str | None, description: str | None, **extra: Any):
    return record(Artifact(kind, data, check_key(key), description, **extra))


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a markdown text; returns the artifact's id."""
    return _create("markdown", str(markdown), key, description)


def create_table_artifact(
    table: Any, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a table: a list of dicts, a dict of columns, or a list of lists."""
    try:
        table_rows(table)
    except (TypeError, ValueError) as error:
        raise InvalidOptionError(
            f"create_table_artifact got {type(table).__name__}: a table is a list of dicts, "
            f"a dict of lists, or a list of lists ({error})."
        ) from None
    return _create("table", table, key, description)


def create_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a link (shown as ``link_text`` if given)."""
    return _create("link", str(link), key, description, link_text=link_text)


def create_image_artifact(
    image_url: str, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish an image by its URL."""
    return _create("image", str(image_url), key, description)


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> uuid.UUID:
    """Publish a progress figure in percent (0 to 100); update it with its id."""
    return _create("progress", _percent(progress), key, description)


def update_progress_artifact(
    artifact_id: uuid.UUID | str, progress: float, description: str | None = None
) -> uuid.UUID:
    """Set a progress artifact's figure (and description); returns its id."""
    artifact = find(artifact_id)
    if artifact.type != "progress":
        raise ValueError(
            f"Artifact {artifact_id} is a {artifact.type} artifact, not a progress one."
        )
    artifact.data = _percent(progress)
    if description is not None:
        artifact.description = description
    return artifact.id


def _percent(progress: Any) -> float:
    if isinstance(progress, bool) or not isinstance(progress, (int, float)):
        raise InvalidOptionError(f"progress={progress!r} is not valid: it must be a number.")
    if math.isnan(progress) or not 0 <= progress <= 100:
        raise InvalidOptionError(f"progress={progress!r} is not valid: it must be from 0 to 100.")
    return float(progress)

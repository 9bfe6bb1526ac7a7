"""Artifacts: markdown, tables, links, images and progress bars that runs publish.

Prefect keeps artifacts on its server; kernelflow keeps them with the run that made
them, in this process. ``record`` attaches an artifact to the task run (or, outside any
task, the flow run) the calling code is in; ``artifacts_of(run)`` gives them back, so a
run's display can show them. Records are held weakly by run: when a run record is
dropped from the history, its artifacts go with it. Artifacts made outside any run are
kept too (the latest 100), and ``Artifact.get(key)`` finds the latest one of a key.
"""

from __future__ import annotations

import collections
import datetime
import re
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from kernelflow._context import flow_run_context, task_run_context
from kernelflow.exceptions import InvalidOptionError

_KEY = re.compile(r"[a-z0-9-]+")
_lock = threading.Lock()
_by_run: weakref.WeakKeyDictionary[Any, list[Artifact]] = weakref.WeakKeyDictionary()
_outside_runs: collections.deque[Artifact] = collections.deque(maxlen=100)
_by_key: dict[str, Artifact] = {}
_by_id: weakref.WeakValueDictionary[uuid.UUID, Artifact] = weakref.WeakValueDictionary()


@dataclass(eq=False)
class Artifact:
    """One artifact. ``type`` is "markdown", "table", "link", "image" or "progress";
    ``data`` is what was given (the markdown text, the table, the URL, the percent)."""

    type: str
    data: Any
    key: str | None = None
    description: str | None = None
    link_text: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    created: datetime.datetime = field(default_factory=datetime.datetime.now)
    task_run_id: uuid.UUID | None = None
    flow_run_id: uuid.UUID | None = None

    @classmethod
    def get(cls, key: str) -> Artifact | None:
        """The latest artifact made with ``key`` in this session, or None."""
        return _by_key.get(key)

    def _repr_markdown_(self) -> str:
        from kernelflow._artifact_views import as_markdown

        return as_markdown(self)


def check_key(key: Any) -> str | None:
    """Prefect's rule: a key has only lowercase letters, digits and dashes."""
    if key is not None and (not isinstance(key, str) or not _KEY.fullmatch(key)):
        raise InvalidOptionError(
            f"Artifact key {key!r} is not valid: a key may contain only lowercase letters, "
            "numbers and dashes, e.g. 'daily-report'."
        )
    return key


def record(artifact: Artifact) -> uuid.UUID:
    """Keep ``artifact`` with the current task run (else flow run); return its id."""
    task_ctx = task_run_context.get()
    flow_ctx = flow_run_context.get()
    task_run = task_ctx.task_run if task_ctx else None
    flow_run = flow_ctx.flow_run if flow_ctx else getattr(task_run, "flow_run", None)
    artifact.task_run_id = task_run.id if task_run is not None else None
    artifact.flow_run_id = flow_run.id if flow_run is not None else None
    owner = task_run if task_run is not None else flow_run
    with _lock:
        if owner is None:
            _outside_runs.append(artifact)
        else:
            _by_run.setdefault(owner, []).append(artifact)
        if artifact.key is not None:
            _by_key[artifact.key] = artifact
        _by_id[artifact.id] = artifact
    return artifact.id


def find(artifact_id: uuid.UUID | str) -> Artifact:
    found = _by_id.get(uuid.UUID(str(artifact_id)))
    if found is None:
        raise ValueError(f"No artifact with id {artifact_id} in this session.")
    return found


def artifacts_of(run: Any, include_task_runs: bool = True) -> list[Artifact]:
    """The artifacts of a task run or flow run (for a flow run, also its task runs'),
    oldest first; with no run, those made outside any run."""
    if run is None:
        return list(_outside_runs)
    with _lock:
        found = list(_by_run.get(run, ()))
        if include_task_runs:
            for task_run in getattr(run, "task_runs", ()):
                found.extend(_by_run.get(task_run, ()))
    return sorted(found, key=lambda artifact: artifact.created)

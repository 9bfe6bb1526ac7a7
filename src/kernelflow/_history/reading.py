"""Reading the run history: listings, one run, clearing. Each read first writes what
this session enqueued, so that its own runs are there; a history that cannot be read
gives one warning and None (callers then list this session's runs alone)."""

from __future__ import annotations

from typing import Any

from kernelflow._history import past, writer


def flow_runs(
    flow: str | None, state: str | None, since: float | None, limit: int | None
) -> list[past.PastFlowRun] | None:
    db = _open()
    if db is None:
        return None
    try:
        rows = db.flow_runs(flow, None, since, None if state else limit)
        runs = [past.read(row, db) for row in rows]  # tells crashes first, then filters
    except Exception as error:
        writer.forget_connection(str(db.file))
        writer.warn_once(str(db.file), error)
        return None
    if state is not None:
        wanted = state.lower()
        runs = [r for r in runs if wanted in (r.state.name.lower(), r.state.type.lower())]
        runs = runs[:limit] if limit is not None else runs
    return runs


def get(name_or_id: str) -> past.PastFlowRun | None:
    db = _open()
    if db is None:
        return None
    try:
        row = db.find(name_or_id)
        return None if row is None else past.read(row, db)
    except Exception as error:
        writer.warn_once(str(db.file), error)
        return None


def logs(run_id: str) -> list[tuple[float, int, str, str]]:
    db = _open()
    if db is None:
        return []
    row = db.find(run_id)
    if row is None:
        return []
    return db.logs(row["root_id"])


def clear(before: float | None) -> int:
    db = _open()
    if db is None:
        return 0
    if before is None:
        return db.delete_roots("parent_id IS NULL", [])
    return db.delete_roots("parent_id IS NULL AND created < ?", [before])


def _open() -> Any:
    if not writer.enabled():
        return None
    writer.flush()
    file = writer.database_file()
    try:
        return writer.connection(file)
    except Exception as error:
        writer.warn_once(file, error)
        return None

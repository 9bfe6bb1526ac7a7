"""The run history's database: one SQLite file, ``$KERNELFLOW_HOME/runs.sqlite3``.

This module's one job is the SQL: opening the file safely (0600, WAL, a busy timeout),
the schema and its migrations, writing batches of rows, reading them back and keeping
the file bounded. Everything above it deals in plain rows (dicts), so a server database
could stand in for this module later.

A flow run is one row of ``flow_runs`` (what ``kernelflow.runs()`` lists, one per
top-level run and subflow run) plus, once it ended, one ``details`` row holding its task
runs as JSON (zlib-compressed): thousands of task runs cost one write, not thousands.

Many processes write at once: SQLite's WAL lets readers and one writer go together, the
busy timeout waits for the writer, and a write that still meets "database is locked"
is tried again a few times before the batch is given up (with one warning, by the
writer).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 2_000  # per attempt; a write transaction takes milliseconds
LOCKED_RETRIES = 3

FLOW_COLUMNS = (
    "id",
    "root_id",
    "parent_id",
    "name",
    "flow_name",
    "state_type",
    "state_name",
    "state_message",
    "created",
    "start_time",
    "end_time",
    "parameters",
    "parameters_hash",
    "parameters_pickle",
    "tags",
    "worker",
    "upstream",
    "retry_of",
    "session",
    "pid",
    "host",
    "task_counts",
    "position",
    "states",
)

# Each migration takes the schema from the version before it to its own number.
_MIGRATIONS: dict[int, str] = {
    1: f"""
        CREATE TABLE flow_runs ({", ".join(FLOW_COLUMNS)}, PRIMARY KEY (id));
        CREATE INDEX flow_runs_listing ON flow_runs (parent_id, created);
        CREATE INDEX flow_runs_root ON flow_runs (root_id);
        CREATE INDEX flow_runs_name ON flow_runs (name);
        CREATE TABLE details (root_id PRIMARY KEY, body);
        CREATE TABLE logs (root_id, time, level, run_name, message);
        CREATE INDEX logs_root ON logs (root_id);
    """,
}


class Database:
    """An open history file. Not shared between threads: each opens its own."""

    def __init__(self, file: Path) -> None:
        self.file = file
        _make_private(file)
        self.connection = sqlite3.connect(
            str(file), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None
        )
        try:
            self.connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._retrying(lambda: self.connection.execute("PRAGMA journal_mode = WAL"))
            self.connection.execute("PRAGMA synchronous = NORMAL")  # WAL: safe, fewer fsyncs
            self._migrate()
        except BaseException:
            self.connection.close()
            raise

    def close(self) -> None:
        self.connection.close()

    # --- schema ------------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self.connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(
                f"{self.file} was written by a newer kernelflow (schema {version}; this "
                f"one knows {SCHEMA_VERSION}): upgrade kernelflow to read it."
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with self.transaction() as db:
                # Another process may have migrated meanwhile: look again inside the lock.
                if db.execute("PRAGMA user_version").fetchone()[0] >= target:
                    continue
                for statement in _MIGRATIONS[target].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {target}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction, taken at once (BEGIN IMMEDIATE) and retried while locked."""
        self._retrying(lambda: self.connection.execute("BEGIN IMMEDIATE"))
        try:
            yield self.connection
        except BaseException:
            self.connection.execute("ROLLBACK")
            raise
        self._retrying(lambda: self.connection.execute("COMMIT"))

    def _retrying(self, step: Any) -> Any:
        for attempt in range(LOCKED_RETRIES):
            try:
                return step()
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if attempt == LOCKED_RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt)
        return None

    # --- writing -----------------------------------------------------------------------

    def write(
        self,
        flows: Iterable[dict[str, Any]],
        details: Iterable[tuple[str, bytes]],
        logs: Iterable[tuple[str, float, int, str, str]],
    ) -> None:
        """Write one batch in one transaction: flow run rows (replacing earlier versions
        of the same runs), task-run details and log lines."""
        placeholders = ", ".join("?" for _ in FLOW_COLUMNS)
        insert = f"INSERT OR REPLACE INTO flow_runs VALUES ({placeholders})"
        rows = [tuple(row.get(c) for c in FLOW_COLUMNS) for row in flows]
        with self.transaction() as db:
            db.executemany(insert, rows)
            db.executemany("INSERT OR REPLACE INTO details VALUES (?, ?)", details)
            db.executemany("INSERT INTO logs VALUES (?, ?, ?, ?, ?)", logs)

    def trim(self, max_runs: int, max_age: float | None) -> int:
        """Delete the oldest top-level runs past ``max_runs``, and those older than
        ``max_age`` seconds; return how many top-level runs went."""
        where = ["parent_id IS NULL"]
        params: list[Any] = []
        keep = self.connection.execute(
            "SELECT created FROM flow_runs WHERE parent_id IS NULL "
            "ORDER BY created DESC LIMIT 1 OFFSET ?",
            (max_runs - 1,),
        ).fetchone()
        cut = keep[0] if keep else None
        if max_age is not None:
            oldest = time.time() - max_age
            cut = oldest if cut is None else max(cut, oldest)
        if cut is None:
            return 0
        where.append("created < ?")
        params.append(cut)
        return self.delete_roots(" AND ".join(where), params)

    def delete_roots(self, where: str, params: list[Any]) -> int:
        with self.transaction() as db:
            roots = [r[0] for r in db.execute(f"SELECT id FROM flow_runs WHERE {where}", params)]
            for chunk in range(0, len(roots), 500):
                ids = roots[chunk : chunk + 500]
                marks = ", ".join("?" for _ in ids)
                db.execute(f"DELETE FROM flow_runs WHERE root_id IN ({marks})", ids)
                db.execute(f"DELETE FROM details WHERE root_id IN ({marks})", ids)
                db.execute(f"DELETE FROM logs WHERE root_id IN ({marks})", ids)
        return len(roots)

    def mark_crashed(self, root_id: str, message: str) -> None:
        """Every unfinished flow run under ``root_id``: Crashed, with ``message``."""
        with self.transaction() as db:
            db.execute(
                "UPDATE flow_runs SET state_type = 'CRASHED', state_name = 'Crashed', "
                "state_message = ? WHERE root_id = ? AND state_type IN "
                "('PENDING', 'RUNNING', 'PAUSED', 'CANCELLING')",
                (message, root_id),
            )

    # --- reading -----------------------------------------------------------------------

    def flow_runs(
        self,
        flow: str | None = None,
        state: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Top-level flow runs, newest first."""
        where, params = ["parent_id IS NULL"], []
        if flow is not None:  # a function's name finds its flow's ("a_b" is "a-b")
            where.append("flow_name IN (?, ?)")
            params += [flow, flow.replace("_", "-")]
        if state is not None:
            where.append("(lower(state_name) = lower(?) OR lower(state_type) = lower(?))")
            params += [state, state]
        if since is not None:
            where.append("created >= ?")
            params.append(since)
        sql = f"SELECT * FROM flow_runs WHERE {' AND '.join(where)} ORDER BY created DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql, params)

    def find(self, name_or_id: str) -> dict[str, Any] | None:
        """The flow run with this name, id or id prefix (the newest, if several)."""
        rows = self._rows(
            "SELECT * FROM flow_runs WHERE name = ? OR id = ? ORDER BY created DESC LIMIT 1",
            [name_or_id, name_or_id],
        )
        if not rows and len(name_or_id) >= 6:
            rows = self._rows(
                "SELECT * FROM flow_runs WHERE id LIKE ? ORDER BY created DESC LIMIT 1",
                [name_or_id.replace("-", "") + "%"],
            )
        return rows[0] if rows else None

    def tree(self, root_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every flow run row under ``root_id`` (itself included), and its task runs."""
        flows = self._rows("SELECT * FROM flow_runs WHERE root_id = ? ORDER BY created", [root_id])
        body = self.connection.execute(
            "SELECT body FROM details WHERE root_id = ?", (root_id,)
        ).fetchone()
        if body is None:
            return flows, {}
        data = body[0]  # compressed JSON (plain JSON from before compression came in)
        return flows, json.loads(zlib.decompress(data) if isinstance(data, bytes) else data)

    def logs(self, root_id: str) -> list[tuple[float, int, str, str]]:
        return self.connection.execute(
            "SELECT time, level, run_name, message FROM logs WHERE root_id = ? ORDER BY rowid",
            (root_id,),
        ).fetchall()

    def count(self) -> int:
        return self.connection.execute(
            "SELECT count(*) FROM flow_runs WHERE parent_id IS NULL"
        ).fetchone()[0]

    def _rows(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        cursor = self.connection.execute(sql, params)
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _create_private(file: Path) -> None:
    """Make an empty ``file``, mode 0600, without ever holding a descriptor of it.

    SQLite's locks on a database file belong to the process, not to a descriptor:
    closing any descriptor of the file drops every lock the process holds on it, those
    of its open connections included. Another process's connection, closing, would then
    believe itself the last one and checkpoint and delete the write-ahead log under
    them, which corrupts the database (sqlite.org/howtocorrupt.html, section 2.2). Each
    thread opens its own connection, so a descriptor of ours on the file, even
    closed at once, would do that. The file is made under a name of its own and
    linked into place.
    """
    made = file.with_name(f"{file.name}.{os.getpid()}-{threading.get_ident()}.new")
    os.close(os.open(made, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    try:
        os.link(made, file)
    except FileExistsError:
        pass  # another thread or process made it first
    except OSError:  # a file system without hard links: made in place, as it is new
        try:
            os.close(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
    finally:
        os.unlink(made)


def _make_private(file: Path) -> None:
    """Create the home (0700) and the file (0600) before SQLite opens it, and refuse a
    home or file another user could write (a retry unpickles parameters from it)."""
    from kernelflow._results.store import check_private, make_private_dirs

    make_private_dirs(str(file.parent))
    check_private(file.parent)
    if not file.exists():
        _create_private(file)
    check_private(file)
    for suffix in ("", "-wal", "-shm"):  # SQLite's own files take the main file's mode
        try:
            os.chmod(f"{file}{suffix}", 0o600)
        except FileNotFoundError:
            pass

"""Named limits and their occupied slots, in ``$KERNELFLOW_HOME/concurrency.sqlite``.

One SQLite file holds every limit of a machine (of a ``KERNELFLOW_HOME``), so threads
and processes that name the same limit share it. Each acquisition is one
``BEGIN IMMEDIATE`` transaction: SQLite lets one writer in at a time across processes,
so the check "are there enough free slots?" and the taking of them cannot interleave.

Two kinds of occupied slots:

- held slots (``concurrency()``): a row in ``holders`` per holder, deleted on release.
  A row names its host and process; a process that died without releasing (killed,
  crashed) is found dead by the next acquisition on that host and its rows deleted, so
  a crash never leaks slots for good.
- decaying slots (``rate_limit()``): a number per limit that goes down by the limit's
  ``slot_decay_per_second`` as time passes, never released explicitly.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass

from kernelflow._results.store import home

_SCHEMA = """
CREATE TABLE IF NOT EXISTS limits (
    name TEXT PRIMARY KEY,
    max_slots INTEGER NOT NULL,
    slot_decay_per_second REAL NOT NULL,
    active INTEGER NOT NULL,
    decaying REAL NOT NULL DEFAULT 0,
    decayed_at REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS holders (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    occupy INTEGER NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since REAL NOT NULL
);
"""
# How long a process waits for another's write transaction before giving up: far more
# than any transaction here takes (a few queries), so only a wedged process hits it.
_BUSY_SECONDS = 60.0


@dataclass(frozen=True)
class ConcurrencyLimit:
    """A named limit, as ``read_limit()`` gives it.

    Attributes:
        name: The limit's name, as ``concurrency(name)`` and ``rate_limit(name)`` use it.
        limit: How many slots it has.
        slot_decay_per_second: How fast ``rate_limit()`` slots free up (0: no decay).
        active: An inactive limit does not limit: acquisitions go through at once.
        active_slots: Slots occupied now (held and not yet decayed), as of reading.
    """

    name: str
    limit: int
    slot_decay_per_second: float
    active: bool
    active_slots: float


def database_path() -> str:
    return os.path.join(home(), "concurrency.sqlite")


@contextlib.contextmanager
def _write() -> Iterator[sqlite3.Connection]:
    """A connection inside one write transaction, committed on success."""
    path = database_path()
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    # A connection per transaction: sqlite3 connections must not cross threads, and
    # opening one is cheap next to the waits it guards.
    connection = sqlite3.connect(path, timeout=_BUSY_SECONDS, isolation_level=None)
    try:
        # Slots matter only while their holders live: no need to wait for the disk.
        connection.execute("PRAGMA synchronous = OFF")
        connection.executescript(_SCHEMA)
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
    finally:
        connection.close()


def set_limit(name: str, limit: int, slot_decay_per_second: float, active: bool) -> None:
    with _write() as db:
        db.execute(
            "INSERT INTO limits (name, max_slots, slot_decay_per_second, active, decayed_at)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
            " max_slots = excluded.max_slots,"
            " slot_decay_per_second = excluded.slot_decay_per_second,"
            " active = excluded.active",
            (name, limit, slot_decay_per_second, int(active), time.time()),
        )


def delete_limit(name: str) -> bool:
    with _write() as db:
        db.execute("DELETE FROM holders WHERE name = ?", (name,))
        return db.execute("DELETE FROM limits WHERE name = ?", (name,)).rowcount > 0


def read_limits(names: list[str] | None = None) -> list[ConcurrencyLimit]:
    with _write() as db:
        _forget_dead_holders(db)
        rows = db.execute(
            "SELECT name, max_slots, slot_decay_per_second, active, decaying, decayed_at"
            " FROM limits ORDER BY name"
        ).fetchall()
        now = time.time()
        return [
            ConcurrencyLimit(
                name=row[0],
                limit=row[1],
                slot_decay_per_second=row[2],
                active=bool(row[3]),
                active_slots=_held(db, row[0]) + _decayed(row[4], row[5], row[2], now),
            )
            for row in rows
            if names is None or row[0] in names
        ]


@dataclass(frozen=True)
class Attempt:
    """The outcome of one try at taking slots.

    Attributes:
        taken: Whether the slots were taken.
        missing: Names that have no limit (nothing was taken for them).
        holder_ids: Rows to delete on release (held slots), when the slots were taken.
        retry_after: None when taken; else seconds to wait before trying again (None
            there means "unknown": poll).
        too_many: A limit with fewer slots than asked for (it can never give them).
        no_decay: A limit ``rate_limit()`` cannot use, having no slot decay.
    """

    taken: bool
    missing: tuple[str, ...] = ()
    holder_ids: tuple[int, ...] = ()
    retry_after: float | None = None
    too_many: ConcurrencyLimit | None = None
    no_decay: str | None = None


def try_acquire(names: list[str], occupy: int, mode: str) -> Attempt:
    """Take ``occupy`` slots of every named limit at once, or none of them."""
    now = time.time()
    with _write() as db:
        _forget_dead_holders(db)
        rows = {
            row[0]: row
            for row in db.execute(
                "SELECT name, max_slots, slot_decay_per_second, active, decaying, decayed_at"
                f" FROM limits WHERE name IN ({','.join('?' * len(names))})",
                names,
            )
        }
        missing = tuple(name for name in names if name not in rows)
        blocked, wait = False, 0.0  # wait None: unknown (held slots free on release)
        for name, max_slots, decay, active, decaying, decayed_at in rows.values():
            if mode == "rate_limit" and decay <= 0:
                return Attempt(taken=False, no_decay=name)
            if not active:
                continue
            if occupy > max_slots:
                limit = ConcurrencyLimit(name, max_slots, decay, bool(active), 0.0)
                return Attempt(taken=False, too_many=limit)
            held = _held(db, name)
            short = held + _decayed(decaying, decayed_at, decay, now) + occupy - max_slots
            if short <= 1e-9:
                continue
            blocked = True
            if held + occupy > max_slots or decay <= 0:
                wait = None
            elif wait is not None:  # decaying slots free up at a known pace
                wait = max(wait, short / decay)
        if blocked:
            return Attempt(taken=False, missing=missing, retry_after=wait)
        holder_ids = []
        host, pid = socket.gethostname(), os.getpid()
        for name, _max, decay, active, decaying, decayed_at in rows.values():
            if not active:  # an inactive limit limits nothing: nothing to take
                continue
            if mode == "rate_limit":
                db.execute(
                    "UPDATE limits SET decaying = ?, decayed_at = ? WHERE name = ?",
                    (_decayed(decaying, decayed_at, decay, now) + occupy, now, name),
                )
            else:
                cursor = db.execute(
                    "INSERT INTO holders (name, occupy, host, pid, since) VALUES (?, ?, ?, ?, ?)",
                    (name, occupy, host, pid, now),
                )
                holder_ids.append(cursor.lastrowid)
        return Attempt(taken=True, missing=missing, holder_ids=tuple(holder_ids))


def release(holder_ids: tuple[int, ...]) -> None:
    if not holder_ids:
        return
    with _write() as db:
        db.execute(
            f"DELETE FROM holders WHERE id IN ({','.join('?' * len(holder_ids))})",
            holder_ids,
        )


def _held(db: sqlite3.Connection, name: str) -> int:
    row = db.execute("SELECT COALESCE(SUM(occupy), 0) FROM holders WHERE name = ?", (name,))
    return int(row.fetchone()[0])


def _decayed(decaying: float, decayed_at: float, decay: float, now: float) -> float:
    return max(0.0, decaying - decay * max(0.0, now - decayed_at))


def _forget_dead_holders(db: sqlite3.Connection) -> None:
    """Delete the rows of processes on this host that ended without releasing."""
    host = socket.gethostname()
    pids = [
        row[0] for row in db.execute("SELECT DISTINCT pid FROM holders WHERE host = ?", (host,))
    ]
    dead = [pid for pid in pids if not _alive(pid)]
    if dead:
        db.execute(
            f"DELETE FROM holders WHERE host = ? AND pid IN ({','.join('?' * len(dead))})",
            [host, *dead],
        )


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True

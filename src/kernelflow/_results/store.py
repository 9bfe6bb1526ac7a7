"""The on-disk result store under ``$KERNELFLOW_HOME/results`` (default ``~/.kernelflow``).

One file per cache key::

    b"KFC1" | meta length (u32) | crc32 of payload (u32) | meta (JSON) | payload

Writes go to a temporary file in the same directory, renamed over the entry, so a reader
in any process sees a whole old entry or a whole new one, never a torn one. An entry
that is truncated or garbage is reported as unreadable (the engine warns and recomputes,
and the new result replaces it). Expiry is checked when an entry is read.

Cached results are pickles: loading one can run code. So every path is untrusted:
kernelflow creates its directories 0700 and refuses to read from a directory (the root,
its home and every subfolder a ``result_storage_key`` names), or an entry, that another
user owns or can write (``UnsafeCacheDirectory``). It opens only regular files, never
following a symbolic link and never blocking (a FIFO planted in the store is skipped),
and an entry whose recorded key is not the key asked for (moved or swapped) is a miss.

Disk is the truth across processes; each process also remembers the bytes of entries
it recently wrote or read, keyed by the file's (inode, mtime, size). A hit costs one
``stat`` to check that the file is still the one remembered, then one ``loads``.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernelflow._results.keys import Part, combine, digest
from kernelflow._results.serializers import for_reading, serializer_name
from kernelflow.exceptions import UnsafeCacheDirectory

MAGIC = b"KFC1"
_HEADER = struct.Struct("<4sII")
_MEMO_ENTRY_MAX = 1 << 20  # larger results are read from disk on every hit
_MEMO_TOTAL_MAX = 64 << 20
_TASKS_DIR = ".tasks"  # per task: the key parts of its last run, to explain misses
_INPUT_LABELS = ("inputs", "key_fn", "storage_key")


@dataclass(slots=True)
class Loaded:
    """What a lookup found: ``status`` is "hit", "missing", "expired" or "unreadable"."""

    status: str
    value: Any = None
    detail: str = ""


@dataclass(slots=True)
class _Memo:
    ident: tuple[int, int, int]
    payload: bytes
    serializer: str
    expires: float | None


class _Unreadable(Exception):
    pass


_homes: dict[str, Path] = {}


def home() -> Path:
    """``$KERNELFLOW_HOME``, or ``~/.kernelflow``, as an absolute path.

    A relative KERNELFLOW_HOME is resolved against the working directory the first time
    it is used, once: a later ``os.chdir`` does not split the store in two."""
    value = os.environ.get("KERNELFLOW_HOME") or "~/.kernelflow"
    path = _homes.get(value)
    if path is None:
        path = _homes.setdefault(value, Path(os.path.abspath(os.path.expanduser(value))))
    return path


def check_private(path: str | os.PathLike[str]) -> None:
    """Raise UnsafeCacheDirectory if ``path`` is owned or writable by another user."""
    getuid = getattr(os, "getuid", None)
    if getuid is None:  # no POSIX ownership to check (Windows)
        return
    _check_stat(os.stat(path), path)


def _check_stat(st: os.stat_result, path: str | os.PathLike[str]) -> None:
    getuid = getattr(os, "getuid", None)
    if getuid is None:
        return
    problem = None
    if st.st_uid != getuid():
        problem = f"it is owned by user id {st.st_uid}, not you"
    elif st.st_mode & 0o022:
        problem = f"other users can write to it (mode {st.st_mode & 0o777:o})"
    if problem:
        raise UnsafeCacheDirectory(
            f"kernelflow will not load cached results from {path}: {problem}. Cached results "
            f"are pickles, and loading one runs code, so the store must be private to you. "
            + _advice(st, path)
        )


def _advice(st: os.stat_result, path: str | os.PathLike[str]) -> str:
    """How to fix an unsafe path. A folder shared on purpose (/tmp: sticky, or another
    user's) must stay shared: the store goes into a private subfolder of it instead."""
    shared = st.st_uid != os.getuid() or st.st_mode & stat.S_ISVTX
    if stat.S_ISDIR(st.st_mode) and shared:
        private = os.path.join(path, "kernelflow-$USER")
        return (
            f"Use a private folder of your own instead: `mkdir -m 700 {private}` and set "
            f"KERNELFLOW_HOME={private}."
        )
    if not stat.S_ISDIR(st.st_mode) and st.st_uid != os.getuid():
        return f"Remove it (`rm {path}`) if you did not put it there."
    mode = 700 if stat.S_ISDIR(st.st_mode) else 600
    return f"Fix it with `chmod {mode} {path}`, or set KERNELFLOW_HOME to a private directory."


class Store:
    """The entries in one directory: the default store, or a task's ``result_storage``."""

    def __init__(self, root: Path, guarded: tuple[Path, ...]) -> None:
        self.root = root
        self._root = str(root)
        # Keys are relative (kernelflow's hex, or a checked result_storage_key): an
        # entry's path is this plus its key (os.path.join is a fair share of a hit).
        self._prefix = os.path.join(self._root, "")
        self._guarded = guarded  # directories that must be private (root and its home)
        self._ready = False
        self._memo: dict[str, _Memo] = {}
        self._memo_bytes = 0
        self._lock = threading.Lock()
        self._last_parts: dict[str, list[Part] | None] = {}
        # per task: the code parts of its runs before the last code change (this session)
        self._code_before: dict[str, list[Part]] = {}

    def prepare(self) -> None:
        """Create the directories (0700) once, and check they are private."""
        if self._ready:
            return
        self._make_directories()
        self._ready = True

    def _make_directories(self) -> None:
        for directory in self._guarded:
            make_private_dirs(str(directory))
            check_private(directory)

    def path(self, key: str) -> str:
        return self._prefix + key

    def key_problem(self, key: str) -> str | None:
        """Why the file system cannot hold an entry named ``key`` (a NUL, a name too
        long, a folder), or None. Keys kernelflow makes are short hex; a
        ``result_storage_key`` is whatever the user formatted."""
        if "\0" in key:
            return "it holds a NUL character"
        if not key or key.endswith(("/", os.sep)):
            return "it names a folder, not a file"
        try:
            os.lstat(os.path.join(self._root, key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except (OSError, ValueError) as error:
            return getattr(error, "strerror", None) or str(error)
        return None

    def _check_folders(self, key: str) -> None:
        """The folders a key names inside the root are checked as the root is."""
        folder = os.path.dirname(key)
        if not folder:
            return
        path = self._root
        for name in os.path.normpath(folder).split(os.sep):
            path = os.path.join(path, name)
            check_private(path)

    # --- reading ----------------------------------------------------------------------

    def load(self, key: str, task_serializer: Any) -> Loaded:
        path = self._prefix + key
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            self._forget(key)
            return Loaded("missing")
        memo = self._memo.get(key)
        if memo is None or memo.ident != (st.st_ino, st.st_mtime_ns, st.st_size):
            try:
                memo = self._read(key, path)
            except _Unreadable as error:
                return Loaded("unreadable", detail=str(error))
        if memo.expires is not None and memo.expires <= time.time():
            return Loaded("expired")
        try:
            value = for_reading(memo.serializer, task_serializer).loads(memo.payload)
        except Exception as error:
            self._forget(key)
            return Loaded("unreadable", detail=f"cannot deserialize it: {error!r}")
        return Loaded("hit", value)

    def _read(self, key: str, path: str) -> _Memo:
        for directory in self._guarded:
            check_private(directory)
        try:
            self._check_folders(key)
        except (FileNotFoundError, NotADirectoryError):
            raise _Unreadable("it vanished while being read") from None
        try:
            with _open_regular(path) as file:
                st = os.fstat(file.fileno())
                _check_stat(st, path)
                data = file.read()
        except FileNotFoundError:
            raise _Unreadable("it vanished while being read") from None
        except UnsafeCacheDirectory:
            raise
        except OSError as error:
            raise _Unreadable(f"it cannot be read: {error}") from None
        meta, payload = _parse(data)
        if meta.get("key") != key:
            raise _Unreadable(
                f"it records the key {meta.get('key')!r}, not {key!r}: it was moved or "
                "swapped, so it is not this run's result"
            )
        memo = _Memo(
            (st.st_ino, st.st_mtime_ns, st.st_size),
            payload,
            meta["serializer"],
            meta.get("expires"),
        )
        self._remember(key, memo)
        return memo

    def _forget(self, key: str) -> None:
        if key in self._memo:
            with self._lock:
                self._pop(key)

    def _pop(self, key: str) -> None:
        old = self._memo.pop(key, None)
        if old is not None:
            self._memo_bytes -= len(old.payload)

    def _remember(self, key: str, memo: _Memo) -> None:
        if len(memo.payload) > _MEMO_ENTRY_MAX:
            return
        with self._lock:
            self._pop(key)
            while self._memo and self._memo_bytes + len(memo.payload) > _MEMO_TOTAL_MAX:
                self._pop(next(iter(self._memo)))  # the oldest remembered
            self._memo[key] = memo
            self._memo_bytes += len(memo.payload)

    # --- writing ----------------------------------------------------------------------

    def save(self, key: str, value: Any, serializer: Any, meta: dict[str, Any]) -> None:
        """Write ``value`` under ``key`` atomically. Raises if it cannot be serialized."""
        payload = serializer.dumps(value)
        name = serializer_name(serializer)
        meta = {**meta, "key": key, "serializer": name, "size": len(payload)}
        path = self._prefix + key
        if not os.path.isdir(self._root):  # removed since prepare(): made again, 0700
            self._make_directories()
        try:
            make_private_dirs(os.path.dirname(path))
            self._check_folders(key)  # never write where another user could swap it
            st = _write_atomic(path, _pack(meta, payload))
        except OSError as error:  # say where: "Permission denied" alone helps nobody
            raise type(error)(
                error.errno, f"cannot write the cache entry {path}: {error.strerror or error}"
            ) from error
        self._remember(
            key, _Memo((st.st_ino, st.st_mtime_ns, st.st_size), payload, name, meta.get("expires"))
        )

    def last_parts(self, task_id: str) -> list[Part] | None:
        """The key parts of the task's last stored or found run (to explain a miss)."""
        if task_id in self._last_parts:
            return self._last_parts[task_id]
        try:
            with _open_regular(self._parts_path(task_id)) as file:
                parts = [tuple(part) for part in json.load(file)]
        except (OSError, ValueError, TypeError, _Unreadable):
            parts = None
        self._last_parts[task_id] = parts  # type: ignore[assignment]
        return parts  # type: ignore[return-value]

    def remember_parts(self, task_id: str, parts: list[Part], persist: bool) -> None:
        """Keep ``parts`` as the task's last; on disk too if more than its inputs changed
        (new inputs explain nothing, and a write per miss would double the misses' cost)."""
        before = self.last_parts(task_id) if persist else self._last_parts.get(task_id)
        self._last_parts[task_id] = parts
        if before is not None and _same_code(before, parts):
            return  # the usual: the same code, maybe new inputs
        if before is not None:
            self._code_before[task_id] = _code_parts(before)
        if persist:
            _write_atomic(self._parts_path(task_id), json.dumps(parts).encode())

    def miss_baseline(self, task_id: str, parts: list[Part]) -> list[Part] | None:
        """The key parts a miss of ``parts`` is explained against: the task's last run's,
        unless that run already had this code and an entry made under the code before
        holds these inputs. Then the code change is why this run missed, though a sibling
        (another run of the same ``.map``) stored under the new code first."""
        last = self.last_parts(task_id)
        earlier = self._code_before.get(task_id)
        if last is None or earlier is None or _code_parts(last) != _code_parts(parts):
            return last
        old = dict(earlier)
        then = [
            (label, value if label in _INPUT_LABELS else old.get(label, value))
            for label, value in parts
        ]
        if then != list(parts) and os.path.exists(self.path(combine(task_id, then))):
            return then
        return last

    def _parts_path(self, task_id: str) -> str:
        return os.path.join(self._root, _TASKS_DIR, digest(task_id.encode()))

    # --- listing ----------------------------------------------------------------------

    def scan(self) -> Iterator[tuple[Path, dict[str, Any]]]:
        """(path, meta) of every readable entry; unreadable files are skipped."""
        if not self.root.is_dir():
            return
        for directory, subdirs, files in os.walk(self.root):
            subdirs[:] = [d for d in subdirs if not d.startswith(".")]
            for name in files:
                if name.startswith("."):
                    continue
                path = Path(directory, name)
                try:
                    yield path, _read_meta(path)
                except (OSError, _Unreadable):
                    continue

    def forget(self) -> None:
        """Drop what this process remembers (after entries were removed)."""
        with self._lock:
            self._memo.clear()
            self._memo_bytes = 0
            self._last_parts.clear()
            self._code_before.clear()


def _same_code(before: list[Part], parts: list[Part]) -> bool:
    """``_code_parts(before) == _code_parts(parts)``, without making either list in the
    usual case (the same labels in the same order: run on every hit)."""
    if before == parts:
        return True
    if len(before) == len(parts):
        for old, new in zip(before, parts, strict=True):
            if old != new and (old[0] != new[0] or old[0] not in _INPUT_LABELS):
                break
        else:
            return True
    return _code_parts(before) == _code_parts(parts)


def _code_parts(parts: list[Part]) -> list[Part]:
    return [part for part in parts if part[0] not in _INPUT_LABELS]


def _pack(meta: dict[str, Any], payload: bytes) -> bytes:
    meta_bytes = json.dumps(meta).encode()
    return _HEADER.pack(MAGIC, len(meta_bytes), zlib.crc32(payload)) + meta_bytes + payload


def _parse(data: bytes) -> tuple[dict[str, Any], bytes]:
    if len(data) < _HEADER.size:
        raise _Unreadable(f"it is truncated ({len(data)} bytes)")
    magic, meta_len, crc = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise _Unreadable("it is not a kernelflow cache entry")
    end = _HEADER.size + meta_len
    try:
        meta = json.loads(data[_HEADER.size : end])
        size, _ = meta["size"], meta["serializer"]
    except (ValueError, KeyError, TypeError):
        raise _Unreadable("its header is damaged") from None
    payload = data[end:]
    if len(payload) != size:
        raise _Unreadable(f"it is truncated ({len(payload)} of {size} bytes)")
    if zlib.crc32(payload) != crc:
        raise _Unreadable("its checksum does not match")
    return meta, payload


def _open_regular(path: str | os.PathLike[str]) -> Any:
    """``path`` opened for reading if it is a regular file; never blocks (a FIFO opened
    without O_NONBLOCK waits for a writer forever) and never follows a symbolic link.

    Raises:
        _Unreadable: it is not a regular file. OSError: it cannot be opened.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise _Unreadable("it is a symbolic link, not a regular file") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _Unreadable("it is not a regular file")
    if hasattr(os, "set_blocking"):
        os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _read_meta(path: Path) -> dict[str, Any]:
    with _open_regular(path) as file:
        head = file.read(_HEADER.size)
        if len(head) < _HEADER.size or head[:4] != MAGIC:
            raise _Unreadable("not an entry")
        _, meta_len, _ = _HEADER.unpack(head)
        try:
            return json.loads(file.read(meta_len))
        except ValueError:
            raise _Unreadable("damaged header") from None


def make_private_dirs(directory: str) -> None:
    """Create ``directory`` and any missing parents, each 0700 whatever the umask (a
    KERNELFLOW_HOME deleted during a session comes back as private as it was)."""
    if os.path.isdir(directory):
        return
    parent = os.path.dirname(directory)
    if parent and parent != directory:
        make_private_dirs(parent)
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        return  # made meanwhile by another thread or process
    os.chmod(directory, 0o700)  # mkdir's mode is cut by the umask


def _write_atomic(path: str, data: bytes) -> os.stat_result:
    """Write ``data`` to a temp file beside ``path``, then rename it over ``path``."""
    directory = os.path.dirname(path)
    make_private_dirs(directory)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            st = os.fstat(file.fileno())  # the inode and mtime survive the rename
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return st


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def store_for(result_storage: Path | None) -> Store:
    """The store for a task: its ``result_storage`` directory, or the default one."""
    if result_storage is None:
        try:  # KERNELFLOW_HOME as os.environ keeps it: one dict lookup, on every cached run
            setting = os.environ._data.get(_HOME_KEY)  # type: ignore[attr-defined]
        except AttributeError:  # os.environ replaced by a plain mapping
            setting = os.environ.get("KERNELFLOW_HOME")
        store = _default_stores.get(setting)
        if store is None:
            base = os.environ.get("KERNELFLOW_HOME") or "~/.kernelflow"
            store = _stores.get(base)
            if store is None:
                root = home()
                store = _new_store(base, root / "results", (root, root / "results"))
            _default_stores[setting] = store
        return store
    name = f"storage:{result_storage}"
    store = _stores.get(name)
    if store is None:  # a relative folder is resolved once, as KERNELFLOW_HOME is
        root = Path(os.path.abspath(result_storage))
        store = _new_store(name, root, (root,))
    return store


# The name os.environ files KERNELFLOW_HOME under (bytes on POSIX, upper case on Windows),
# and the default store for each value of it as found there.
_HOME_KEY = os.environ.encodekey("KERNELFLOW_HOME")  # type: ignore[attr-defined]
_default_stores: dict[Any, Store] = {}


def _new_store(name: str, root: Path, guarded: tuple[Path, ...]) -> Store:
    with _stores_lock:
        return _stores.setdefault(name, Store(root, guarded))

"""File hashing under Prefect's path (``prefect.utilities.hashing``)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_hash"]


def file_hash(path: str | Path) -> str:
    """The MD5 hex digest of a file's bytes: what a flow's default ``version`` is."""
    return hashlib.md5(Path(path).read_bytes(), usedforsecurity=False).hexdigest()

"""A local directory as a result store, in the shape of Prefect's ``LocalFileSystem``.

``@task(result_storage=LocalFileSystem(basepath="results/"))`` is the same as
``result_storage="results/"``; Prefect code that builds the block ports unchanged
(kernelflow has no block registry, so there is nothing to ``save()`` it to).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalFileSystem"]


@dataclass(frozen=True)
class LocalFileSystem:
    """A directory on this machine (``~`` expanded)."""

    basepath: str | os.PathLike[str]

    def __post_init__(self) -> None:
        if not isinstance(self.basepath, (str, os.PathLike)):
            from kernelflow.exceptions import InvalidOptionError

            raise InvalidOptionError(
                f"LocalFileSystem(basepath={self.basepath!r}) is not valid: basepath must be "
                "a directory path."
            )

    def _path(self, path: str) -> Path:
        return Path(self.basepath).expanduser() / path

    def read_path(self, path: str) -> bytes:
        """The bytes of ``path``, relative to ``basepath``."""
        return self._path(path).read_bytes()

    def write_path(self, path: str, content: bytes) -> str:
        """Write ``content`` to ``path`` under ``basepath`` (directories made); its path."""
        target = self._path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return str(target)

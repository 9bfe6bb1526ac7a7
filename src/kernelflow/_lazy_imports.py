"""Standard-library modules that only some paths use, imported when first used.

A first synchronous flow needs no event loop, yet importing asyncio (which imports ssl,
subprocess and socket) was the largest part of ``import kernelflow``. Modules that name
such a module import it from here: ``from kernelflow._lazy_imports import asyncio``.
Reading an attribute of that name imports the module, once; from then on the stand-in
reads the module's own namespace, so a read costs about what a module attribute costs
and sees what the module holds now (``nest_asyncio2`` replaces some of asyncio's
functions). Where the module is imported already (asyncio, in a Jupyter kernel), the
name is the module itself.

``tests/test_public_api.py`` checks what a first flow in a new process leaves unimported.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING, Any


class _Imported:
    """A stand-in whose module is imported: its namespace is the module's, read by plain
    attribute lookups (a name the module lacks is an AttributeError)."""

    # The module's name in a slot, not in the instance dict that becomes the module's.
    __slots__ = ("_module_name", "__dict__")

    def __repr__(self) -> str:
        return f"<{self._module_name}, imported when first used>"


class _ImportedOnFirstUse(_Imported):
    """Stands in for the module ``module_name`` until an attribute of it is first read."""

    __slots__ = ()

    def __init__(self, module_name: str) -> None:
        self._module_name = module_name

    def __getattr__(self, attribute: str) -> Any:
        # Called only for a name the instance dict lacks: before the first use, any name.
        module = importlib.import_module(self._module_name)
        self.__dict__ = module.__dict__  # the stand-in now reads the module's namespace
        # An instance of a class with __getattr__ pays for it at every lookup.
        self.__class__ = _Imported
        return getattr(module, attribute)


def _on_first_use(module_name: str) -> Any:
    module = sys.modules.get(module_name)
    return module if module is not None else _ImportedOnFirstUse(module_name)


if TYPE_CHECKING:
    import asyncio
    import hashlib
    import pickle
    import uuid
else:
    asyncio = _on_first_use("asyncio")
    hashlib = _on_first_use("hashlib")  # with OpenSSL: a flow's file version (md5)
    pickle = _on_first_use("pickle")  # digests of values that can change in place
    uuid = _on_first_use("uuid")  # with platform; run ids are made UUIDs when first read

# Task keys, content digests and cache keys are BLAKE2b digests. hashlib takes its blake2b
# from _blake2 (the same object); importing hashlib loads OpenSSL too, most of its cost.
try:
    from _blake2 import blake2b  # noqa: F401  (imported from here)
except ImportError:  # an interpreter built without it: hashlib finds one
    from hashlib import blake2b  # noqa: F401

"""Standard-library modules that only some paths use, imported when first used.

A synchronous flow needs no event loop, yet importing asyncio (which imports ssl,
subprocess and socket) was the largest part of ``import kernelflow``. Modules that name
asyncio import it from here: ``from kernelflow._lazy_imports import asyncio``. Reading
an attribute of that name imports asyncio, once, and from then on the stand-in reads
the module's own namespace, so later reads cost a plain attribute lookup and see what
the module holds now (``nest_asyncio2`` replaces some of asyncio's functions).

So nothing in a new process has imported asyncio before its first async flow, task or
wait, or its first failed run (a failure is checked against ``asyncio.CancelledError``).
``tests/test_lazy_imports.py`` keeps a first flow that way.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any


class _ImportedOnFirstUse:
    """Stands in for the module ``module_name`` until an attribute of it is first read."""

    # The module's name in a slot, not in the instance dict that becomes the module's.
    __slots__ = ("_module_name", "__dict__")

    def __init__(self, module_name: str) -> None:
        self._module_name = module_name

    def __getattr__(self, attribute: str) -> Any:
        # Called only for names the instance dict lacks: before the first use, every
        # name; after it, names the module lacks too (its own AttributeError then).
        module = importlib.import_module(self._module_name)
        self.__dict__ = module.__dict__  # the stand-in now reads the module's namespace
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<{self._module_name}, imported when first used>"


if TYPE_CHECKING:
    import asyncio
else:
    asyncio = _ImportedOnFirstUse("asyncio")

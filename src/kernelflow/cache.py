"""See and clear cached task results.

    kernelflow.cache.entries()          every entry: task, key, size, created, expires
    kernelflow.cache.clear()            remove every entry
    kernelflow.cache.clear(my_task)     remove one task's entries (a Task or its name)

Both look in the default store, ``$KERNELFLOW_HOME/results``; pass ``storage=`` for a
task's own ``result_storage`` directory.
"""

from kernelflow._results.admin import CacheEntry, clear, entries

__all__ = ["CacheEntry", "clear", "entries"]

"""Lock managers for ``ResultStore`` (Prefect's ``prefect.locking``): what a SERIALIZABLE
transaction holds on its key from entry to its end.

``MemoryLockManager`` (``kernelflow.locking.memory``) holds locks in this process, across
threads and asyncio tasks: a lock belongs to a *holder* (a string), not a thread, so it
may be released from another thread or task than the one that took it.
"""

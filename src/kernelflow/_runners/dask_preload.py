"""Set-up that Dask runs in each worker process of a cluster kernelflow starts.

Jupyter's Stop button sends SIGINT to the kernel's whole process group, which includes
the worker processes of an embedded ``LocalCluster``: each would take it as a
KeyboardInterrupt and close, leaving a cluster with no workers for the next cell. The
interrupt is meant for the kernel; the kernel then cancels the runs it no longer wants.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    """Called by Dask (``preload``) when a worker starts: a worker process ignores SIGINT.

    A worker inside the kernel's own process (``processes=False``) changes nothing: there
    the interrupt is the kernel's.
    """
    in_own_process = multiprocessing.parent_process() is not None
    if in_own_process and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

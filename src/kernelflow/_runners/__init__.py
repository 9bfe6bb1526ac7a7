"""The runners that send task bodies to other processes: a process pool and Dask.

``kernelflow.task_runners`` loads these modules on first use, so ``import kernelflow``
never imports ``multiprocessing`` machinery or ``distributed``.

    remote.py    what both share: the lifecycle stays in the notebook, the call travels
    wire.py      packing a call for another process, running it there, the reply
    timers.py    one timer thread for timeouts and sleeps; a small pool for hooks
    pool.py      a process pool that knows which run a dead worker was running
    process.py   ProcessPoolTaskRunner
    dask.py      DaskTaskRunner
"""

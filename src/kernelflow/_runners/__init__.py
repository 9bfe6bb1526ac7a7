"""The runners: where a run's body executes (``kernelflow.task_runners`` is their face).

The process and Dask modules load on first use, so ``import kernelflow`` never imports
``multiprocessing`` machinery or ``distributed``.

    local.py        TaskRunner, what every runner does; ThreadPoolTaskRunner
    threads.py      the thread runner's run handles and its queue of runs
    thread_pool.py  the thread runner's pool of daemon threads
    background.py   the session's runner for submit/map outside a flow
    remote.py       what the process and Dask runners share: the lifecycle stays here,
                    the call travels
    wire.py         packing a call for another process, running it there, the reply
    pool.py         a process pool that knows which run a dead worker was running
    process.py      ProcessPoolTaskRunner
    dask.py         DaskTaskRunner
"""

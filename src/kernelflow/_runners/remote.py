"""What the process and Dask runners share: the lifecycle stays here, the call travels.

A task run's lifecycle (wait for upstreams, resolve inputs, cache, attempts with
retries and timeouts, final state, hooks) is a generator of effects. These runners
drive it in the notebook process and send exactly one effect elsewhere: the ``Invoke``
of the task's own function. Its arguments (already resolved: futures never leave this
process) go out with cloudpickle, its outcome comes back, and the lifecycle carries on
here.

Why this split rather than running the whole lifecycle in the worker and shipping its
state history back: every ``set_state`` happens on the one run record the displays
watch, so a run shows Pending -> Running -> final live, on every runner, with nothing
to replay; retries, timeouts, hooks and caching are the same lines of code as on the
thread runner; hooks, ``retry_condition_fn`` and the cache store run in the notebook
process, where the session and its files are; and only the function and its arguments
must be picklable, never the run record, the flow or the hooks.

The lifecycle is stepped by callbacks, not by a thread blocked per run: a run starts
when the backend has room (so its Running state means a worker has it), runs up to its
call, and resumes in whichever thread learns the call's outcome. Waits for upstream
runs and retry sleeps are callbacks and timers too; hooks, and any effect this driver
does not know, run in a small thread pool where blocking is fine.

What differs from threads: the process runner stops a timed-out or cancelled call
for real, by killing its worker (a new one takes its place), where a thread can only
be abandoned; Dask forgets the key, but a call already running finishes in its worker
thread. A lost worker gives a Crashed run, without retries (a task that kills its
worker would kill the next one too); an argument or result that cannot be pickled
fails the run at once, also without retries. ``runtime.flow_run.parameters`` is empty
inside a worker: flow parameters may be large and are not the task's to receive.
"""

from __future__ import annotations

import abc
import atexit
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any

from kernelflow._engine.effects import Invoke, Lifecycle, Outcome, Sleep, WaitFor, _timeout_error
from kernelflow._engine.task_engine import _crash_if_unfinished, finish, task_lifecycle
from kernelflow._runners.timers import call_later, run_blocking
from kernelflow._runners.wire import pack_arguments, pack_function, unpack_reply
from kernelflow._runs import set_state
from kernelflow.exceptions import CrashedRun, SerializationError
from kernelflow.futures import TaskFuture
from kernelflow.states import Cancelled, Crashed, Failed, State
from kernelflow.task_runners import TaskRunner

if TYPE_CHECKING:
    from kernelflow._runs import TaskRun
    from kernelflow.tasks import Task


class Backend(abc.ABC):
    """Where packed calls run: a process pool or a Dask client. Shared by duplicates."""

    @abc.abstractmethod
    def submit(self, fn_blob: bytes, arguments: bytes, key: str) -> Any:
        """Start a call; a handle for the methods below."""

    @abc.abstractmethod
    def on_done(self, handle: Any, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in any thread) once the call has an outcome."""

    @abc.abstractmethod
    def reply(self, handle: Any) -> bytes:
        """The packed reply of a finished call; ``CrashedRun`` if its worker was lost."""

    @abc.abstractmethod
    def cancel(self, handle: Any) -> None:
        """Stop the call (kill it if it runs), without waiting."""

    @abc.abstractmethod
    def capacity(self) -> int:
        """How many calls to keep sent at once (enough to keep every worker busy)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class RemoteRun:
    """One run's lifecycle, stepped by callbacks instead of by a blocked thread."""

    __slots__ = ("runner", "task", "run", "future", "lifecycle", "_wait_token")

    def __init__(
        self,
        runner: RemoteTaskRunner,
        task: Task,
        run: TaskRun,
        future: TaskFuture,
        lifecycle: Lifecycle[State],
    ) -> None:
        self.runner = runner
        self.task = task
        self.run = run
        self.future = future
        self.lifecycle = lifecycle
        self._wait_token: object | None = None

    def step(self, outcome: Any = None) -> None:
        """Run the lifecycle on until it must wait for something, or ends."""
        try:
            while True:
                try:
                    effect = self.lifecycle.send(outcome)
                except StopIteration:
                    self.runner._finished(self)
                    return
                if isinstance(effect, Invoke) and effect.fn is self.task.fn:
                    self.runner._send(self, effect)
                    return
                if isinstance(effect, WaitFor):
                    if self._wait(effect):
                        return
                    outcome = True
                elif isinstance(effect, Sleep):
                    self._resume_later(effect.seconds, None)
                    return
                else:  # a hook (user code), or an effect this driver does not know
                    run_blocking(self._run_blocking, effect)
                    return
        except BaseException as error:
            _crash_if_unfinished(self.run, error)
            self.runner._finished(self)

    def end(self, state: State) -> None:
        """End the run with ``state`` without another attempt (hooks still run)."""
        self.lifecycle.close()
        self.lifecycle = finish(self.task, self.run, state)
        self.step()

    def _run_blocking(self, effect: Any) -> None:
        try:
            outcome = effect.run_sync()
        except BaseException as error:
            _crash_if_unfinished(self.run, error)
            self.runner._finished(self)
            return
        self.step(outcome)

    def _resume_later(self, seconds: float, outcome: Any) -> None:
        call_later(seconds, self.step, outcome)

    def _wait(self, effect: WaitFor) -> bool:
        """Resume once every future is done (or the deadline passes); False if no wait."""
        pending = [future for future in effect.futures if not future.done()]
        if not pending:
            return False
        token = self._wait_token = object()
        left = [len(pending)]
        lock = threading.Lock()

        def resume(all_done: bool) -> None:
            with lock:
                if self._wait_token is not token:
                    return
                self._wait_token = None
            self.step(all_done)

        def one_done(_: Any) -> None:
            with lock:
                left[0] -= 1
                last = left[0] == 0
            if last:
                resume(True)

        if effect.deadline is not None:
            call_later(effect.deadline - time.monotonic(), resume, False)
        for future in pending:
            future._done.add_done_callback(one_done)
        return True


class RemoteTaskRunner(TaskRunner):
    """Base of the runners that send task bodies to other processes (see module doc)."""

    def __init__(self) -> None:
        super().__init__()
        self._backend: Backend | None = None
        self._lock = threading.Lock()
        self._unfinished: set[RemoteRun] = set()
        self._backlog: deque[RemoteRun] = deque()  # submitted, waiting for room to start
        self._calls: dict[RemoteRun, Any] = {}  # runs whose call is away -> its handle
        self._fn_blobs: dict[int, tuple[Any, bytes]] = {}
        self._starting = threading.local()  # set while a thread starts waiting runs

    @abc.abstractmethod
    def _open_backend(self) -> Backend:
        """The (warm, shared) backend for this configuration; started if need be."""

    def submit(
        self,
        task: Task,
        parameters: dict[str, Any],
        wait_for: Iterable[TaskFuture] | None = None,
        dependencies: dict[str, Any] | None = None,
    ) -> TaskFuture:
        future, upstream, flow_ctx = self._new_run(task, parameters, wait_for, dependencies)
        run = future.task_run
        lifecycle = task_lifecycle(task, run, parameters, wait_for, upstream, flow_ctx)
        remote = RemoteRun(self, task, run, future, lifecycle)
        with self._lock:
            self._unfinished.add(remote)
            self._backlog.append(remote)
        self._start_waiting_runs()
        return future

    def cancel_all(self) -> None:
        """Cancel every unfinished run: queued ones never start, running ones are stopped."""
        with self._lock:
            unfinished = list(self._unfinished)
            calls = list(self._calls.values())
            self._unfinished.clear()
            self._backlog.clear()
            self._calls.clear()
        for remote in unfinished:
            started = remote.run.state.is_running()
            message = (
                "Cancelled while running; its call was stopped."
                if started
                else ("Cancelled before it started.")
            )
            set_state(remote.run, Cancelled(message))
            remote.future._resolve()
        for handle in calls:
            self._backend.cancel(handle)  # type: ignore[union-attr]

    def __enter__(self) -> RemoteTaskRunner:
        super().__enter__()
        try:
            self._backend = self._open_backend()
        except BaseException:
            self._started = False
            raise
        return self

    def __exit__(self, *exc_info: Any) -> None:
        super().__exit__(*exc_info)
        self.cancel_all()
        self._fn_blobs.clear()

    __hash__ = object.__hash__

    # --- called by RemoteRun -----------------------------------------------------------

    def _send(self, remote: RemoteRun, effect: Invoke) -> None:
        task, run = remote.task, remote.run
        if run.state.is_final():  # cancelled while it waited or slept
            remote.lifecycle.close()
            self._finished(remote)
            return
        try:
            arguments = pack_arguments(task, run, effect)
            handle = self._backend.submit(  # type: ignore[union-attr]
                self._packed_function(task), arguments, f"{task.name}-{run.id.hex}-{run.run_count}"
            )
        except SerializationError as error:
            remote.end(Failed(error))
            return
        with self._lock:
            self._calls[remote] = handle
        if effect.timeout is not None:
            call_later(effect.timeout, self._timed_out, remote, handle, effect)
        self._backend.on_done(handle, lambda: self._answered(remote, handle))  # type: ignore[union-attr]

    def _answered(self, remote: RemoteRun, handle: Any) -> None:
        if not self._take_call(remote, handle):
            return  # timed out or cancelled first
        try:
            outcome = unpack_reply(remote.task, remote.run, self._backend.reply(handle))  # type: ignore[union-attr]
        except SerializationError as error:
            remote.end(Failed(error))
        except CrashedRun as error:
            remote.end(Crashed(error))
        except CancelledError:
            remote.end(Crashed(CrashedRun("Its call was cancelled by the cluster.")))
        else:
            remote.step(outcome)

    def _timed_out(self, remote: RemoteRun, handle: Any, effect: Invoke) -> None:
        if self._take_call(remote, handle):
            self._backend.cancel(handle)  # type: ignore[union-attr]
            remote.step(Outcome(error=_timeout_error(effect.timeout)))

    def _take_call(self, remote: RemoteRun, handle: Any) -> bool:
        """Claim a call's outcome (exactly once), then start runs waiting for room."""
        with self._lock:
            if self._calls.get(remote) is not handle:
                return False
            del self._calls[remote]
        self._start_waiting_runs()
        return True

    def _start_waiting_runs(self) -> None:
        """Start submitted runs, in order, while the backend has room for their calls.

        Called whenever room may have appeared: a submit, an answered call, a finished
        run. Runs that wait for upstreams or end without a call take no room, so this
        goes on past them. Re-entry from a run started here is a no-op: the loop below
        carries on instead, so a long backlog never deepens the stack.
        """
        starting = self._starting
        if getattr(starting, "active", False):
            return
        starting.active = True
        try:
            while True:
                with self._lock:
                    if not self._backlog or len(self._calls) >= self._backend.capacity():  # type: ignore[union-attr]
                        return
                    remote = self._backlog.popleft()
                remote.step()
        finally:
            starting.active = False

    def _finished(self, remote: RemoteRun) -> None:
        with self._lock:
            self._unfinished.discard(remote)
            if not self._unfinished:
                # Nothing away: forget the pickled functions, so a function that reads
                # globals changed in a later cell is pickled afresh.
                self._fn_blobs.clear()
        remote.future._resolve()
        self._start_waiting_runs()

    def _packed_function(self, task: Task) -> bytes:
        cached = self._fn_blobs.get(id(task.fn))
        if cached is None or cached[0] is not task.fn:
            cached = self._fn_blobs[id(task.fn)] = (task.fn, pack_function(task.fn, task))
        return cached[1]


# --- warm backends ----------------------------------------------------------------------

_warm: dict[Any, Backend] = {}
_warm_lock = threading.Lock()
_closer_registered = False


def warm_backend(key: Any, start: Callable[[], Backend]) -> Backend:
    """The backend for ``key``, started on first use and kept until the interpreter exits.

    Flows run a fresh ``duplicate()`` of their runner each call; duplicates have the same
    configuration, hence the same key, so every flow call of a notebook session reuses
    one pool or cluster instead of paying for a new one.
    """
    global _closer_registered
    with _warm_lock:
        backend = _warm.get(key)
        if backend is None:
            backend = _warm[key] = start()
            if not _closer_registered:
                # Registered after multiprocessing's own exit hook, so it runs first.
                atexit.register(close_warm_backends)
                _closer_registered = True
        return backend


def running_backend(key: Any) -> Backend | None:
    """The backend for ``key`` if one is running; never starts one."""
    with _warm_lock:
        return _warm.get(key)


def close_warm_backends() -> None:
    """Shut down every warm pool and cluster (at exit; tests call it too)."""
    with _warm_lock:
        backends = list(_warm.values())
        _warm.clear()
    for backend in backends:
        try:
            backend.close()
        except Exception:  # at exit, one failing close must not stop the others
            pass


def forget_backend(backend: Backend) -> None:
    """Drop a backend that stopped working, so the next run starts a new one."""
    with _warm_lock:
        for key, value in list(_warm.items()):
            if value is backend:
                del _warm[key]

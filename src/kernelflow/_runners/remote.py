"""What the process and Dask runners share: the lifecycle stays here, the call travels.

A task run's lifecycle (wait for upstreams, resolve inputs, cache, attempts with
retries and timeouts, final state, hooks) is a generator of effects. These runners
drive it in the notebook process with the callback driver (``drivers.CallbackDriver``)
and send exactly one effect elsewhere: ``CallBody``, the task's own function. Its
arguments (already resolved: futures never leave this process) go out with
cloudpickle, its outcome comes back, and the lifecycle carries on here.

Why this split rather than running the whole lifecycle in the worker and shipping its
state history back: every ``set_state`` happens on the one run record the displays
watch, so a run shows Pending -> Running -> final live, on every runner, with nothing
to replay; retries, timeouts, hooks and caching are the same lines of code as on the
thread runner; hooks, ``retry_condition_fn`` and the cache store run in the notebook
process, where the session and its files are; and only the function and its arguments
must be picklable, never the run record, the flow or the hooks.

The worker reports when it starts a body; only then is the run Running, and only then
does its ``timeout_seconds`` start counting (time waiting in a queue is not run time).
A cancel is a cancel of the run's scope (the flow run's cancels its runs'), and the
run's handle reacts: it closes the lifecycle (releasing a cache claim) and stops the
call: a queued call never starts; a started process call has its
worker killed (a new one takes its place); a started Dask call is told to stop (see
``dask_worker.py`` for what that can and cannot do). A lost worker gives a Crashed run,
without retries (a task that kills its worker would kill the next one too); an argument
or result that cannot be pickled fails the run at once, also without retries.
``runtime.flow_run.parameters`` is empty inside a worker: flow parameters may be large
and are not the task's to receive.
"""

from __future__ import annotations

import abc
import atexit
import contextlib
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kernelflow._engine.drivers import CallbackDriver, attempt_deadline, too_late
from kernelflow._engine.effects import CallBody, Outcome
from kernelflow._engine.handle import RunHandle
from kernelflow._engine.task_engine import task_lifecycle
from kernelflow._runners.local import TaskRunner
from kernelflow._runners.wire import pack_arguments, pack_function, unpack_reply
from kernelflow._scopes.scope import Scope
from kernelflow._scopes.timers import call_later
from kernelflow.exceptions import CrashedRun, SerializationError
from kernelflow.futures import TaskFuture

if TYPE_CHECKING:
    from kernelflow.tasks import Task


@dataclass(slots=True)
class Outbound:
    """One body call on its way to a backend."""

    fn_blob: bytes
    arguments: bytes
    key: str  # names the call (Dask's key for it)
    started: Callable[..., None]  # started(worker, at=None): a worker began the body
    timeout: float | None  # the body's own limit, for backends that also enforce it there
    timed: bool  # a deadline applies (the body's or its flow run's): report its start at once


class Backend(abc.ABC):
    """Where packed calls run: a process pool or a Dask client. Shared by duplicates."""

    stop_note = "its call was stopped"  # what cancelling a started call does

    @abc.abstractmethod
    def submit(self, outbound: Outbound) -> Any:
        """Start a call; a handle for the methods below. ``outbound.started(worker)`` is
        to be called (in any thread) when a worker begins the body."""

    @abc.abstractmethod
    def on_done(self, handle: Any, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (in any thread) once the call has an outcome."""

    @abc.abstractmethod
    def reply(self, handle: Any) -> bytes:
        """The packed reply of a finished call; ``CrashedRun`` if its worker was lost."""

    @abc.abstractmethod
    def cancel(self, handle: Any) -> None:
        """Stop the call (never start it if queued; stop it if it runs), without waiting."""

    @abc.abstractmethod
    def capacity(self) -> int:
        """How many calls to keep sent at once (enough to keep every worker busy)."""

    @abc.abstractmethod
    def close(self) -> None: ...


class RemoteRun(RunHandle):
    """A run whose body goes to a backend; a cancel also stops its call."""

    __slots__ = ("runner", "task")
    # Its worker may have started it: a quick Dask call reports its start with its
    # reply, and any report may be on its way. Its call is stopped all the same.
    unstarted_note = "Cancelled before its worker reported starting it."

    def __init__(
        self, runner: RemoteTaskRunner, task: Task, run: Any, lifecycle: Any, future: TaskFuture
    ) -> None:
        super().__init__(run, lifecycle, future)
        self.runner = runner
        self.task = task

    @property
    def stop_note(self) -> str:  # type: ignore[override]
        backend = self.runner._backend
        return backend.stop_note if backend is not None else Backend.stop_note

    def _stop_body(self) -> None:
        self.runner._stop_call(self)


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
        self._driver = CallbackDriver(self._send)

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
        if future.done():  # a retry reused the run: nothing to send
            return future
        run = future.task_run
        lifecycle = task_lifecycle(task, run, parameters, wait_for, upstream, flow_ctx)
        handle = future._handle = RemoteRun(self, task, run, lifecycle, future)
        handle.when_ended(self._finished)
        with self._lock:
            self._unfinished.add(handle)
            self._backlog.append(handle)
        self._start_waiting_runs()
        return future

    def unfinished_futures(self) -> list[TaskFuture]:
        with self._lock:
            return [handle.future for handle in self._unfinished]

    def cancel_all(self) -> None:
        """Cancel every unfinished run: queued ones never start, running ones are stopped.

        Queued ones first, so that no worker freed by stopping a running one starts them.
        """
        self._cancel_unstarted()
        with self._lock:
            unfinished = list(self._unfinished)
        for handle in unfinished:
            handle.cancel()

    def _cancel_unstarted(self) -> None:
        with self._lock:
            unstarted = [handle for handle in self._unfinished if not handle.started]
            self._backlog.clear()
        for handle in unstarted:
            handle.cancel()

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

    # --- the callback driver's side ----------------------------------------------------

    def _send(self, handle: RemoteRun, effect: CallBody) -> None:
        if too_late(handle, effect):
            return
        task, run = handle.task, handle.run
        try:
            arguments = pack_arguments(task, run, effect)
            fn_blob = self._packed_function(task)
        except SerializationError as error:
            self._driver.resume(handle, Outcome(error=error))
            return
        key = f"{task.name}-{run.id.hex}-{run.run_count}"
        box: list[Any] = []
        started = lambda worker, at=None: self._body_started(handle, box, effect, worker, at)  # noqa: E731
        timed = effect.timeout is not None or effect.deadline is not None
        outbound = Outbound(fn_blob, arguments, key, started, effect.timeout, timed)
        call = self._backend.submit(outbound)  # type: ignore[union-attr]
        box.append(call)
        with self._lock:
            self._calls[handle] = call
        if not handle.open:  # cancelled while being sent
            self._stop_call(handle)
            return
        self._backend.on_done(call, lambda: self._answered(handle, call))  # type: ignore[union-attr]

    def _body_started(
        self, handle: RemoteRun, box: list, effect: CallBody, worker: str, at: float | None
    ) -> None:
        """A worker began the body: the run is Running now, and its clock starts."""
        if not handle.body_started(worker, at):
            if box:  # cancelled just before it started: it must not run on
                self._backend.cancel(box[0])  # type: ignore[union-attr]
            return  # (not sent yet: _send sees the closed handle and stops it)
        deadline = attempt_deadline(effect)
        if deadline is not None:
            call_later(deadline.remaining(), self._timed_out, handle, box, deadline)

    def _answered(self, handle: RemoteRun, call: Any) -> None:
        if not self._take_call(handle, call):
            return  # timed out or cancelled first
        try:
            outcome = unpack_reply(handle.task, handle.run, self._backend.reply(call))  # type: ignore[union-attr]
        except (SerializationError, CrashedRun) as error:
            outcome = Outcome(error=error)
        except CancelledError:
            outcome = Outcome(error=CrashedRun("Its call was cancelled by the cluster."))
        if not handle.started:  # the start came in the reply, or its report trails it
            handle.body_started(handle.run.worker or "?", getattr(call, "started_at", None))
        outcome.ended = getattr(call, "ended_at", None)
        self._driver.resume(handle, outcome)

    def _timed_out(self, handle: RemoteRun, box: list, deadline: Scope) -> None:
        call = box[0] if box else None
        if call is None or self._calls.get(handle) is not call:
            return
        with self._holding_starts():  # the worker this frees takes no queued run yet
            if not self._take_call(handle, call):
                return
            self._driver.resume(handle, Outcome(error=deadline.error()))  # TimedOut
            flow_run = deadline.binding()
            if flow_run.what == "Flow run":
                # The flow is out of time: its scope is cancelled (once, by whichever
                # sees it first, this or the flow lifecycle), which cancels its runs, the
                # queued ones first, before its worker is freed below (the backends keep
                # the order): none of them starts there.
                flow_run.cancel(str(flow_run.error()))
            self._backend.cancel(call)  # type: ignore[union-attr]
        self._start_waiting_runs()

    @contextlib.contextmanager
    def _holding_starts(self) -> Iterator[None]:
        """No queued run is started from this thread inside the block."""
        starting = self._starting
        held = getattr(starting, "active", False)
        starting.active = True
        try:
            yield
        finally:
            starting.active = held

    def _stop_call(self, handle: RemoteRun) -> None:
        with self._lock:
            call = self._calls.pop(handle, None)
            try:
                self._backlog.remove(handle)
            except ValueError:
                pass
        if call is not None:
            self._backend.cancel(call)  # type: ignore[union-attr]
            self._start_waiting_runs()

    def _take_call(self, handle: RemoteRun, call: Any) -> bool:
        """Claim a call's outcome (exactly once), then start runs waiting for room."""
        with self._lock:
            if self._calls.get(handle) is not call:
                return False
            del self._calls[handle]
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
                    handle = self._backlog.popleft()
                self._driver.resume(handle)
        finally:
            starting.active = False

    def _finished(self, handle: RunHandle) -> None:
        with self._lock:
            self._unfinished.discard(handle)  # type: ignore[arg-type]
            if not self._unfinished:
                # Nothing away: forget the pickled functions, so a function that reads
                # globals changed in a later cell is pickled afresh.
                self._fn_blobs.clear()
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

"""Stopping code that must run in this very thread (a sync flow body in a notebook cell).

On the main thread an alarm signal raises ``DeadlineExceeded`` in the body, which also
ends a blocking call it is in. Elsewhere the shared timer thread raises it in the body's
thread with ``PyThreadState_SetAsyncExc``, which Python raises at the next bytecode
boundary of whatever that thread runs then. That is right for the user's own code; it
is wrong inside a wait of kernelflow's (``future.result()``, ``wait``), where the
exception can land in a garbage-collection finalizer the wait happens to trigger
(multiprocessing's, for one) and be lost as "Exception ignored". Those waits are
already bounded by the flow run's deadline and raise on their own, so they mark
themselves with ``WaitEndingBy``: a guard that fires while the thread is in such a wait
leaves it alone, and if the wait returns normally all the same, the exception is raised
when it returns, in plain sight.
"""

from __future__ import annotations

import threading
from typing import Any

from kernelflow._scopes.scope import Scope, ends_at, left
from kernelflow._scopes.timers import call_later
from kernelflow.exceptions import DeadlineExceeded


class _ThreadState:
    """What the guards and waits of one thread share (under ``lock``)."""

    __slots__ = ("lock", "guards", "waits", "overdue")

    def __init__(self) -> None:
        # Reentrant: on the main thread the alarm's handler takes it in the same thread,
        # possibly while the code it interrupted holds it.
        self.lock = threading.RLock()
        self.guards = 0
        self.waits: list[float] = []  # when each open wait ends by itself (monotonic)
        self.overdue: tuple[raise_in_this_thread_at, DeadlineExceeded] | None = None


_threads: dict[int, _ThreadState] = {}  # only threads inside a guard


class raise_in_this_thread_at:  # noqa: N801 - used as a context manager
    """Raise ``DeadlineExceeded`` in this thread if the block is still running at ``deadline``.

    On the main thread (a sync flow in a script or a notebook cell) an alarm signal
    delivers it, as Prefect does: a signal also ends a blocking call such as
    ``time.sleep`` or a socket read, so the body stops at its deadline, not at the end
    of that call. The previous SIGALRM handler and timer are put back on leaving. In
    any other thread the shared timer thread sets the exception asynchronously, which
    Python raises at that thread's next bytecode: a thread blocked inside one long C
    call gets it only when that call returns (and runs nothing more of its own).

    Leaving the block disarms it, and clears an exception that was set but not yet
    raised, so it can never land in the caller's code.
    """

    def __init__(self, deadline: Scope) -> None:
        self._deadline = deadline
        self._thread_id = threading.get_ident()
        self._armed = True
        self._alarm: tuple[Any, tuple[float, float], float | None] | None = None

    def __enter__(self) -> None:
        state = _threads.get(self._thread_id)
        if state is None:
            state = _threads[self._thread_id] = _ThreadState()
        with state.lock:
            state.guards += 1
        self._state = state
        if self._deadline.remaining() == float("inf"):
            return  # no deadline: a guard only for ``stop`` (a cancel)
        if not self._start_alarm():
            call_later(self._deadline.remaining(), self._fire)

    def _start_alarm(self) -> bool:
        """Arm an alarm signal, if this is the main thread and the platform has one."""
        import signal  # here and below: only a deadline on the main thread uses it

        if not hasattr(signal, "setitimer") or threading.current_thread() is not (
            threading.main_thread()
        ):
            return False
        try:
            previous_handler = signal.signal(signal.SIGALRM, self._on_alarm)
        except ValueError:  # not the main interpreter
            return False
        previous = signal.setitimer(signal.ITIMER_REAL, max(self._deadline.remaining(), 1e-4))
        self._alarm = (previous_handler, previous, ends_at(previous[0]) if previous[0] else None)
        return True

    def _on_alarm(self, signum: int, frame: Any) -> None:
        if _in_finalizer(frame):
            # Raised in a weakref callback or a __del__ (garbage collection runs them
            # wherever it happens to), the error would be printed as "Exception ignored"
            # and lost; the body would run on. Deliver it a moment later instead.
            import signal

            signal.setitimer(signal.ITIMER_REAL, _REDELIVER)
            return
        self._fire()

    def __exit__(self, *exc_info: Any) -> None:
        if self._alarm is not None:
            self._stop_alarm(*self._alarm)
        state = self._state
        with state.lock:
            if self._armed:
                self._armed = False
            elif self._alarm is None:  # fired: clear it in case it is still pending
                set_async_exc(self._thread_id, None)
            if state.overdue is not None and state.overdue[0] is self:
                state.overdue = None
            state.guards -= 1
            if not state.guards:
                del _threads[self._thread_id]

    @staticmethod
    def _stop_alarm(handler: Any, previous: tuple[float, float], previous_at: float | None) -> None:
        import signal

        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, handler)
        if previous_at is not None:  # an enclosing guard's (or the program's) alarm
            signal.setitimer(signal.ITIMER_REAL, max(left(previous_at) or 0.0, 1e-4), previous[1])

    def stop(self, error: BaseException) -> None:
        """Raise ``error`` in the guarded thread now (a cancel), as its deadline would."""
        self._fire(error)

    def _fire(self, error: BaseException | None = None) -> None:
        state = self._state
        with state.lock:
            if not self._armed:
                return
            self._armed = False
            if error is None:
                error = self._deadline.error()
            if state.waits and self._deadline.within_grace(state.waits[-1], _WAIT_GRACE):
                state.overdue = state.overdue or (self, error)  # the wait raises
            elif self._alarm is not None:
                raise error  # in the signal handler, so in this very thread
            else:
                raise_in(self._thread_id, error)


# A wait that ends this soon after the deadline is left to end by itself.
_WAIT_GRACE = 0.05
# An alarm that came during a finalizer comes again this much later.
_REDELIVER = 0.001
_FINALIZER_MODULES = frozenset({"weakref", "_weakrefset", "multiprocessing.util"})


def _in_finalizer(frame: Any, depth: int = 4) -> bool:
    """Whether ``frame`` (or one of the few it was called from) runs a finalizer: a
    weakref callback or ``__del__``, where an exception raised is lost."""
    while frame is not None and depth:
        if frame.f_code.co_name == "__del__" or frame.f_globals.get("__name__") in (
            _FINALIZER_MODULES
        ):
            return True
        frame, depth = frame.f_back, depth - 1
    return False


class WaitEndingBy:
    """Marks a wait in this thread that returns by itself within ``timeout`` seconds.

    ``absorb``: a wait of a driver, whose lifecycle sees the deadline itself (the run it
    drives ends TimedOut): a guard that fired during it raises nothing afterwards.
    """

    __slots__ = ("_state", "_ends_by", "_absorb")

    def __init__(self, timeout: float | None, absorb: bool = False) -> None:
        self._state = _threads.get(threading.get_ident())
        self._absorb = absorb
        ends_by = ends_at(timeout)
        self._ends_by = float("inf") if ends_by is None else ends_by

    def __enter__(self) -> None:
        if self._state is not None:
            with self._state.lock:
                self._state.waits.append(self._ends_by)

    def __exit__(self, error_type: type | None, *exc_info: Any) -> None:
        state = self._state
        if state is None:
            return
        with state.lock:
            state.waits.pop()
            overdue = None
            if not state.waits and state.overdue is not None:
                overdue, state.overdue = state.overdue[1], None
        if overdue is not None and error_type is None and not self._absorb:
            raise overdue


def set_async_exc(thread_id: int, exc: type[BaseException] | None) -> None:
    """Have ``thread_id`` raise ``exc`` at its next bytecode boundary.

    None passes NULL: withdraw a pending exception that has not been raised yet.
    """
    import ctypes  # only a deadline or a cancel raising in another thread uses it

    target = ctypes.py_object(exc) if exc is not None else None
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), target)


def raise_in(thread_id: int, error: BaseException) -> None:
    """Have ``thread_id`` raise ``error`` (a copy of it) at its next bytecode boundary."""
    # The C API takes a class: a subclass made here carries the message.
    kind, args = type(error), error.args

    def __init__(self: BaseException, *given: Any) -> None:
        kind.__init__(self, *(given or args))

    carrier = type(kind.__name__, (kind,), {"__init__": __init__, "__module__": kind.__module__})
    carrier.__qualname__ = kind.__qualname__
    set_async_exc(thread_id, carrier)

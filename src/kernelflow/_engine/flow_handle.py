"""A flow run's handle: the one way its body's code reaches its lifecycle while it runs.

A flow lifecycle (``flow_engine.flow_lifecycle``) sets every state of its run. While its
body runs it is suspended at ``CallBody``; a pause in the body reports to this handle,
which sends the report in as a body event (``effects.PauseBegan``, ``PauseEnded``) and
hands the lifecycle's answer back. It sets no state itself.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from kernelflow._engine.drivers import drive_sync
from kernelflow._engine.effects import AwaitingBody, BodyEvent, PauseBegan, PauseEnded
from kernelflow._engine.handle import RunHandle
from kernelflow._scopes.in_thread_deadline import WaitEndingBy

if TYPE_CHECKING:
    from kernelflow._context import FlowRunContext
    from kernelflow._engine.effects import Lifecycle
    from kernelflow._runs import FlowRun
    from kernelflow.states import State


class FlowHandle(RunHandle):
    """A flow run's handle: its body starts in the driver's thread, and the flow
    lifecycle records that itself.

    While the body runs, the lifecycle is suspended at its ``CallBody``, and what the
    body does to its run meanwhile is reported to this handle (as a task run's worker
    reports its start): a pause (``pause_flow_run``) began, or ended. The handle sets no
    state: it sends the report into the lifecycle as a body event, under the lock every
    step holds, and only while the lifecycle waits for the body, so an event is never
    taken for an effect's outcome. So a pause outside the body's time (from a hook, or a
    thread that outlived the body) is refused, and no pause can change a run the
    lifecycle has moved on from.
    """

    __slots__ = ("_in_body", "_parked")

    def __init__(self, run: FlowRun, lifecycle: Lifecycle[State], ctx: FlowRunContext) -> None:
        super().__init__(run, lifecycle)
        self._lock = threading.Lock()  # a pause may report from another thread
        self._in_body = False
        # What the lifecycle did instead of taking a body event (an interrupt landed in
        # it meanwhile, and it ended the run): the driver's, at its next step.
        self._parked: Any = None
        ctx.handle = self

    def body_started(self, worker: str) -> bool:
        self._in_body = self.open
        return self._in_body

    def step(self, outcome: Any = None, thrown: BaseException | None = None) -> Any:
        self._in_body = False  # the body has returned (or was never called): no more reports
        with self._lock:  # a report under way has parked by now
            parked, self._parked = self._parked, None
        if parked is None:
            return super().step(outcome, thrown)
        # The run has ended meanwhile: the body's outcome is moot.
        if isinstance(parked, BaseException):
            raise parked
        return parked

    def pause_began(self, key: str) -> None:
        """The body paused: the lifecycle makes the run Paused until the pause ends.

        Raises:
            RuntimeError: the flow run's body is not running (the pause came from a hook,
                or from a thread that outlived it), or its run is paused already.
        """
        refused = self._report(PauseBegan(key))
        if refused is not None:
            raise RuntimeError(refused)

    def pause_ended(self, how: str) -> None:
        """The body's pause ended (resumed, timed out, cancelled, interrupted; ``how`` says
        which, for the run's history): the lifecycle moves the run out of Paused, so every
        way on from here (the body catching the pause's error and returning, failing,
        being stopped) reaches a legal final state. After a cancel answer, the
        CancelledRun the pause raises ends it Cancelled, unless the body catches it.
        A refusal needs nothing: a lifecycle that moved on has left Paused itself.
        """
        self._report(PauseEnded(how))

    def _report(self, event: BodyEvent) -> str | None:
        """Send ``event`` into the lifecycle while it waits for the body; None if it took
        it, else why not (a sentence for the pause to raise)."""
        # A flow guard firing in this thread meanwhile waits until the lifecycle is
        # suspended again, then raises here: in the body's code, not in the lifecycle.
        with self._lock, WaitEndingBy(0):
            if not (self._in_body and self._open):
                return (
                    f"pause_flow_run() pauses a flow run from its body, while that runs; "
                    f"flow run {self.run.name!r} is {self.run.state.name} and not in its "
                    "body (a hook, or a thread that outlived the body, cannot pause it)."
                )
            try:
                reply = self._lifecycle.send(event)
            except StopIteration as stop:
                self.result, self._open, reply = stop.value, False, None
            except BaseException as error:
                self._open, reply = False, error
            if type(reply) is AwaitingBody:
                return reply.refused
            self._parked, self._in_body = reply, False
        return f"Flow run {self.run.name!r} ended {self.run.state.name} as the pause began."

    def _crash(self, error: BaseException) -> None:
        pass  # the lifecycle itself settles the flow run (flow_lifecycle)

    def abort(self, error: BaseException) -> None:
        """The driver was stopped outside the lifecycle (an interrupt between two
        effects): the lifecycle still hears it, and ends the run, hooks included, here."""
        if not self.open:
            return  # the lifecycle raised it itself, and has settled the run
        try:
            drive_sync(self, thrown=error)
        except BaseException:  # what stopped it, re-raised: the caller raises it anyway
            pass

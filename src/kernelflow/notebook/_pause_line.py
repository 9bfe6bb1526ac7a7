"""A sync flow's pause asks on the cell's input line; an answer from elsewhere, or the
pause's timeout, ends that line at once.

ipykernel's ``input()`` waits for the frontend's reply in a Python loop (``zmq.select``
every 10 ms), so an exception raised in the waiting thread ends it. A watcher thread
raises ``_LineEnded`` there with ``PyThreadState_SetAsyncExc`` when the pause is answered
elsewhere or times out. It fires only while that thread is inside ``input()`` (armed),
and one not yet raised is withdrawn as the thread leaves, so it never lands in other
code. ``_LineEnded`` is a BaseException because ipykernel's input loop logs and
swallows ``Exception``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from kernelflow import _pause
from kernelflow._pause import PausedRun, answer_text
from kernelflow._scopes.in_thread_deadline import set_async_exc
from kernelflow.exceptions import ParameterTypeError

# Said in the prompt: the other way to answer a pause in a notebook.
FORM_HINT = " (an async flow run with `await` shows a form instead)"


class _LineEnded(BaseException):
    """Raised in the thread waiting in ``input()`` once the pause ended elsewhere."""


class _Interrupter:
    """Ends the ``input()`` of the thread that made it, only while it is in ``input()``."""

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._lock = threading.Lock()
        self._armed = False
        self._ended = False
        self._sent = False

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        with self._lock:
            if self._ended:  # the pause ended while the line was not open
                raise _LineEnded
            self._armed = True
        try:
            yield
        finally:
            with self._lock:
                self._armed = False
                if self._sent:
                    set_async_exc(self._thread, None)

    def interrupt(self) -> None:
        with self._lock:
            self._ended = True
            if self._armed and not self._sent:
                self._sent = True
                set_async_exc(self._thread, _LineEnded)


def ask_in_cell(pause: PausedRun, timeout: float) -> bool:
    """Ask on the cell's input line until the pause is answered there or elsewhere, or
    its timeout passes. False when the frontend takes no input (nbclient, nbmake,
    papermill): then nothing was asked."""
    from IPython.core.error import StdinNotImplementedError

    interrupter = _Interrupter()
    ended = threading.Event()
    pause.on_answer(ended.set)
    watcher = threading.Thread(
        target=_end_line,
        args=(ended, timeout, interrupter),
        daemon=True,
        name="kernelflow-pause-line",
    )
    watcher.start()
    try:
        _ask(pause, interrupter)
    except StdinNotImplementedError:
        return False
    finally:
        ended.set()  # the watcher's interrupt is a no-op once the line is closed
    return True


def _end_line(ended: threading.Event, timeout: float, interrupter: _Interrupter) -> None:
    ended.wait(timeout)
    interrupter.interrupt()


def _ask(pause: PausedRun, interrupter: _Interrupter) -> None:
    prompt = _pause.prompt_text(pause, hint=FORM_HINT)
    while True:
        try:
            with interrupter.armed():
                reply = input(prompt)
            _pause.answer_from_text(pause, reply)
            return
        except _LineEnded:
            print(ended_message(pause))
            return
        except LookupError:  # answered elsewhere just as the line was answered
            print(ended_message(pause))
            return
        except (ParameterTypeError, ValueError) as error:
            print(error)  # ask again


def ended_message(pause: PausedRun) -> str:
    """What the cell says after its input line was ended by something else."""
    # JupyterLab keeps showing an input box the kernel stopped reading, and runs no other
    # cell until it is answered; what is typed there now is ignored.
    return (
        f"Flow run {pause.flow_run.name!r}: {outcome(pause, here=False)} The input line is "
        "no longer read: if it still shows, press Enter in it (the answer is ignored)."
    )


def outcome(pause: PausedRun, here: bool) -> str:
    """How a pause ended, with the values it was resumed with; ``here`` says whether it
    was answered where this text is shown (the form, the line) or elsewhere."""
    where = "" if here else " elsewhere"
    if not pause.answered.is_set():
        return f"not resumed within {pause.timeout:g} s."
    if pause.cancelled:
        return f"cancelled{where}."
    return f"resumed{where}{answer_text(pause)}."

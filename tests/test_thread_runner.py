"""ThreadPoolTaskRunner: the seed's runner contract, cancellation and context propagation."""

import contextvars
import sys
import threading
import time
import types

import pytest

from kernelflow import task
from kernelflow.task_runners import TaskRunner, ThreadPoolTaskRunner

marker = contextvars.ContextVar("marker", default="unset")


@task
def echo(x):
    return x


@task
def read_marker():
    return marker.get()


def test_name_duplicate_and_equality():
    runner = ThreadPoolTaskRunner(max_workers=4)
    assert runner.name == "threadpool"
    duplicate = runner.duplicate()
    assert duplicate is not runner and duplicate == runner
    assert runner != ThreadPoolTaskRunner(max_workers=5) and runner != object()
    assert ThreadPoolTaskRunner()._max_workers == sys.maxsize
    assert isinstance(runner, TaskRunner)
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers=0)


def test_runner_must_be_started_and_only_once():
    runner = ThreadPoolTaskRunner()
    with pytest.raises(RuntimeError, match="not started"):
        runner.submit(echo, {"x": 1})
    with pytest.raises(RuntimeError, match="must be started"):
        runner.map(echo, {"x": [1]})
    with runner:
        assert runner.submit(echo, {"x": 1}).result() == 1
        with pytest.raises(RuntimeError, match="already started"):
            runner.__enter__()
    with pytest.raises(RuntimeError, match="not started"):
        runner.submit(echo, {"x": 1})


def test_map_on_the_runner_directly():
    with ThreadPoolTaskRunner(2) as runner:
        assert runner.map(echo, {"x": [1, 2, 3]}).result() == [1, 2, 3]


def test_contextvars_are_copied_into_workers():
    with ThreadPoolTaskRunner(2) as runner:
        token = marker.set("from the caller")
        try:
            future = runner.submit(read_marker, {})
        finally:
            marker.reset(token)
        assert future.result() == "from the caller"


def test_max_workers_bounds_concurrency():
    running, peak, lock = [0], [0], threading.Lock()

    @task
    def busy():
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1

    with ThreadPoolTaskRunner(max_workers=2) as runner:
        futures = [runner.submit(busy, {}) for _ in range(6)]
        for future in futures:
            future.wait()
    assert peak[0] == 2


def test_cancel_all_cancels_queued_runs_marks_running_ones_and_never_waits():
    release = threading.Event()

    @task
    def blocker():
        release.wait(10)
        return "late"

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        running = runner.submit(blocker, {})
        queued = runner.submit(echo, {"x": 1})
        while not running.state.is_running():
            time.sleep(0.005)
        started = time.perf_counter()
        runner.cancel_all()
        assert time.perf_counter() - started < 0.5
        assert running.state.is_cancelled() and "stopped" in running.state.message
        assert queued.state.is_cancelled() and queued.task_run.run_count == 0
        assert running.done() and queued.done()
        # The runner stays usable after a cancel (the next notebook cell).
        assert runner.submit(echo, {"x": 2}).result(timeout=5) == 2
        release.set()
        time.sleep(0.05)
        assert running.state.is_cancelled()  # the late finish does not overwrite it


def test_a_run_that_raises_base_exceptions_does_not_take_pool_threads_down():
    @task
    def interrupts():
        raise KeyboardInterrupt

    @task
    def exits():
        raise SystemExit(1)

    with ThreadPoolTaskRunner(max_workers=1) as runner:
        futures = [runner.submit(interrupts, {}), runner.submit(exits, {})]
        for future in futures:
            future.wait(5)
        assert [f.state.name for f in futures] == ["Cancelled", "Crashed"]
        # The single pool thread is still there to run more work.
        assert runner.submit(echo, {"x": 3}).result(timeout=5) == 3


@pytest.mark.parametrize("how", ["submit", "map"])
def test_the_unbounded_runner_adds_threads_while_its_runs_wait(how):
    # 40 runs that can only end together: they pass only if all 40 run at once, which
    # the runner reaches by doubling its threads while no run finishes.
    together = threading.Barrier(40, timeout=20)

    @task
    def wait_for_the_others(_):
        together.wait()
        return threading.current_thread().name

    with ThreadPoolTaskRunner() as runner:
        if how == "submit":
            futures = [runner.submit(wait_for_the_others, {"_": i}) for i in range(40)]
        else:
            futures = runner.map(wait_for_the_others, {"_": range(40)})
        names = {future.result(timeout=30) for future in futures}
    assert len(names) == 40


def test_the_unbounded_runner_keeps_quick_runs_on_a_few_threads():
    names: set[str] = set()

    @task
    def quick(x):
        names.add(threading.current_thread().name)
        return x

    with ThreadPoolTaskRunner() as runner:
        assert runner.map(quick, {"x": range(3000)}).result() == list(range(3000))
        assert [runner.submit(quick, {"x": i}).result() for i in range(300)] == list(range(300))
    # It starts one and grows only at a look that finds its runs held up; hundreds of
    # threads (one per queued run, as it once did) would show here.
    assert len(names) <= 32


def test_a_long_run_on_the_unbounded_runners_one_thread_does_not_hold_up_the_next():
    # One drainer to start with: a run that keeps it busy without finishing must not
    # keep the next run waiting for its end (a look sees no run finish and adds threads).
    @task
    def spin_until(event):
        while not event.is_set():  # busy: the process is not idle, only no run finishes
            pass

    done = threading.Event()
    with ThreadPoolTaskRunner() as runner:
        long = runner.submit(spin_until, {"event": done})
        assert runner.submit(echo, {"x": 1}).result(timeout=5) == 1
        assert not long.done()
        done.set()
        long.result(timeout=5)


def test_a_run_submitted_while_every_thread_is_held_up_still_starts():
    # Eight runs that wait hold every thread the runner grew for them; once none is
    # queued it stops watching. A run submitted then must start it watching again
    # (it once waited for one of the eight to end).
    release = threading.Event()

    @task
    def hold():
        release.wait(10)

    with ThreadPoolTaskRunner() as runner:
        held = [runner.submit(hold, {}) for _ in range(8)]
        while not all(future.state.is_running() for future in held):
            time.sleep(0.01)
        time.sleep(0.1)
        try:
            assert runner.submit(echo, {"x": 1}).result(timeout=5) == 1
        finally:
            release.set()


class ScriptedGrowth:
    """A RunQueue whose pool counts its drainers (each takes a run and stays in it),
    whose looks are called by hand, on a scripted clock and CPU clock: the growth rule,
    with no thread and no sleep."""

    def __init__(self, monkeypatch, clock, queued: int) -> None:
        from kernelflow._runners import threads

        self.clock, self.cpu_seconds, self.looks, self.delays = clock, 0.0, [], []
        self.unfinished: dict = {}
        self.drainers = 0
        monkeypatch.setattr(threads, "_cpu_seconds", lambda: self.cpu_seconds)
        monkeypatch.setattr(threads, "call_later", lambda *timer: self.looks.append(timer))
        # A drainer takes a run and stays in it.
        monkeypatch.setattr(threads.RunQueue, "_drain", lambda queue: queue._queue.popleft())
        self.queue = threads.RunQueue(self, None, self.unfinished)
        self.submit_runs(queued)

    def submit_runs(self, count: int) -> None:
        for _ in range(count):
            run = types.SimpleNamespace()
            self.unfinished[id(run)] = run
            self.queue.put(run, None)
        self.queue.start()

    def submit(self, drain) -> None:  # the pool: count the drainers started
        self.drainers += 1
        drain()

    def look(self, after: float, cpu: float, finished: int = 0) -> int:
        """Let ``after`` seconds pass, ``cpu`` of them busy, ``finished`` runs end; the
        drainers after the runner's look."""
        self.clock.advance(after)
        self.cpu_seconds += cpu
        for _ in range(finished):
            self.unfinished.popitem()  # (any: only their count is read)
        delay, look = self.looks.pop()
        self.delays.append(delay)  # when the runner asked for this look
        look()
        return self.drainers


@pytest.fixture
def scripted(monkeypatch):
    from kernelflow._scopes.scope import FakeClock, use_clock

    clock = FakeClock()
    with use_clock(clock):
        yield lambda queued: ScriptedGrowth(monkeypatch, clock, queued)


def test_the_unbounded_runner_grows_only_when_a_look_finds_its_runs_held_up(scripted):
    growth = scripted(queued=1000)
    assert growth.drainers == 1
    # The first look, 5 ms on: busy, and runs finish: quick runs, which one thread
    # serves best.
    assert growth.look(0.005, cpu=0.005, finished=12) == 1
    assert growth.look(0.02, cpu=0.02, finished=50) == 1
    # Runs finish, but the process was mostly idle: they wait on I/O. The next look
    # comes as soon as the first did.
    assert growth.look(0.02, cpu=0.004, finished=3) == 4
    # Busy, and no run finished: a garbage collection, or long runs holding every
    # drainer. For 20 ms it may be the collection; for 40 ms it is the runs.
    assert growth.look(0.005, cpu=0.005) == 4
    # (A look here is a hair over 20 ms: two of them make 40 ms in floating point.)
    assert growth.look(0.02, cpu=0.02, finished=1) == 4
    assert growth.look(0.0201, cpu=0.0201) == 4
    assert growth.look(0.0201, cpu=0.0201) == 16
    # The threads added get 40 ms of their own before more are added.
    assert growth.look(0.005, cpu=0.005) == 16
    assert growth.look(0.0201, cpu=0.0201) == 16
    # A look that came late measured a pause of the whole process: no growth...
    assert growth.look(0.15, cpu=0.0) == 16
    # ...and the next on-time look measures the runs again.
    assert growth.look(0.02, cpu=0.0) == 64
    assert growth.delays == [0.005, 0.02, 0.02, 0.005, 0.02, 0.02, 0.02, 0.005, 0.02, 0.02, 0.02]


def test_the_unbounded_runner_never_starts_more_drainers_than_queued_runs(scripted):
    growth = scripted(queued=10)
    assert growth.look(0.005, cpu=0.0) == 4  # the first look: idle, they wait
    assert growth.look(0.02, cpu=0.0) == 10  # not 16
    assert growth.look(0.02, cpu=0.0) == 10
    assert growth.looks == []  # no run left queued: the looks stop


def test_runs_queued_after_the_unbounded_runner_stopped_watching_are_watched_again(scripted):
    growth = scripted(queued=1)
    assert growth.look(0.02, cpu=0.0) == 1  # nothing left queued: it stops watching
    assert growth.looks == []
    # A run submitted while the one drainer is still held up by the first.
    growth.submit_runs(1)
    assert growth.drainers == 1
    assert growth.look(0.02, cpu=0.0) == 2

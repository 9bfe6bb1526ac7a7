"""Live displays without a frontend: widget trait values, snapshots, throttling."""

import threading
import time
import types

import pytest
from comm.base_comm import BaseComm

from kernelflow import _events, flow, task
from kernelflow.notebook import _charts, _display, _snapshot, _widgets, settings
from kernelflow.notebook._tally import Tally, count
from kernelflow.notebook._ticker import Ticker
from tests.viz.viz_examples import failed_then_retried


@task
def double(x):
    return 2 * x


@task
def gated(gate, value):
    gate.wait(10)
    return value


@task
def fails_on_odd(x):
    if x % 2:
        raise ValueError(f"odd {x}")
    return x


@flow
def mapped(n):
    return double.map(range(n)).result()


class RecordingComm(BaseComm):
    """A comm that keeps what it would send, instead of needing a frontend."""

    sent: list = []

    def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
        RecordingComm.sent.append((msg_type, data))


@pytest.fixture
def recording_comm(monkeypatch):
    import ipywidgets.widgets.widget as widget_module

    RecordingComm.sent = []
    monkeypatch.setattr(widget_module.comm, "create_comm", RecordingComm)
    return RecordingComm.sent


@pytest.fixture
def ticker():
    t = Ticker(interval=0.05)
    yield t
    t.close()


def test_outside_a_kernel_reprs_are_plain_text():
    future = double.submit(21)
    future.wait()
    assert future._repr_mimebundle_() == {"text/plain": _snapshot.future_plain(future.task_run)}
    assert "Completed" in future._repr_mimebundle_()["text/plain"]
    assert "-> 42" in future._repr_mimebundle_()["text/plain"]


def test_future_view_follows_the_run_to_completed_with_a_result_preview():
    gate = threading.Event()
    future = gated.submit(gate, [1, 2, 3])
    view = _widgets.FutureView(future)
    assert view.state_name in ("Pending", "Running")
    assert view.refresh() is True  # not final: keep watching
    gate.set()
    future.wait()
    assert view.refresh() is False  # final: the ticker can forget it
    assert view.state_name == "Completed"
    assert "Completed" in view.badge.value and _snapshot.COLOURS["COMPLETED"] in view.badge.value
    assert "[1, 2, 3]" in view.preview.value
    assert view.elapsed.value.endswith((" ms", " s"))
    assert future.task_run.name in view.title.value


def test_future_view_shows_the_error_of_a_failed_run():
    future = fails_on_odd.submit(3)
    future.wait()
    view = _widgets.FutureView(future)
    assert view.state_name == "Failed"
    assert "ValueError: odd 3" in view.preview.value
    assert _snapshot.COLOURS["FAILED"] in view.badge.value


def test_future_list_view_counts_states_and_lists_failures():
    futures = fails_on_odd.map(range(10))
    futures.wait()
    finals = []
    view = _widgets.FutureListView(futures, on_final=finals.append)
    assert "5/10 completed, 5 failed" in view.bar.value
    # One segment per state, as wide as its share: half green, half red.
    assert 'class="kf-segment kf-completed" title="5 completed" style="width:50.00%' in (
        view.bar.value
    )
    assert f"width:50.00%;height:10px;background:{_snapshot.COLOURS['FAILED']}" in view.bar.value
    assert "ValueError: odd 1" in view.failures.value
    assert view.refresh() is False
    assert finals == [view]  # the final hook ran once


class ProbedRun:
    """A run record whose state reads are counted (what a tally costs is what it reads)."""

    def __init__(self, name, state):
        self.name, self._state, self.reads, self.state_reads = name, state, 0, 0

    @property
    def state_type(self):  # what a tally reads of every run it counts
        self.reads += 1
        return self._state.type

    @property
    def state(self):  # and of a final one, the state itself
        self.state_reads += 1
        return self._state

    @state.setter
    def state(self, state):
        self._state = state


def test_a_tally_reads_a_final_run_once_and_takes_in_runs_added_later():
    from kernelflow.states import Cancelling, Completed, Failed, Paused, Pending, Running

    runs = [ProbedRun(f"r-{i}", Pending()) for i in range(4)]
    tally = Tally()
    counts = tally.update([runs])
    assert (counts.total, counts.pending, counts.done) == (4, 4, False)
    runs[0].state, runs[1].state = Completed(1), Failed(ValueError("boom"))
    runs[2].state, runs[3].state = Running(), Paused()
    counts = tally.update([runs])
    assert (counts.completed, counts.failed, counts.running, counts.pending) == (1, 1, 2, 0)
    assert counts.failures == ("r-1: ValueError: boom",)
    runs.append(ProbedRun("r-4", Cancelling()))  # the list grows while it is watched
    other = [ProbedRun("s-0", Completed(2))]  # a subflow's list appears
    counts = tally.update([runs, other])
    assert (counts.total, counts.completed, counts.running) == (6, 2, 2)
    assert counts.text() == "2/6 completed, 1 failed, 2 running"  # cancelling: total only
    for _ in range(3):
        assert tally.update([runs, other]) == counts  # nothing changed, same counts
    # The two final runs were read once, by the update that found them final; the
    # others on every update.
    assert [run.reads for run in runs[:2]] == [2, 2]
    assert [run.reads for run in runs[2:]] == [6, 6, 4]
    # and only the final runs' states, once: an open run's type is all a count needs
    assert [run.state_reads for run in runs] == [1, 1, 0, 0, 0]
    runs[2].state = Completed(3)
    assert tally.update([runs, other]).completed == 3
    assert count(runs + other) == tally.update([runs, other])  # one-shot count agrees


def test_a_mostly_completed_map_is_mostly_green_not_all_red():
    counts = _snapshot.Counts(total=10, completed=9, failed=1)
    bar = _snapshot.progress_html(counts)
    assert "width:90.00%;height:10px;background:" + _snapshot.COLOURS["COMPLETED"] in bar
    assert "width:10.00%;height:10px;background:" + _snapshot.COLOURS["FAILED"] in bar
    empty = _snapshot.progress_html(_snapshot.Counts(total=0))
    assert "kf-segment" not in empty and "no task runs" in empty  # not a full green bar
    paused = _snapshot.progress_html(_snapshot.Counts(total=2, running=2), paused=True)
    assert _snapshot.COLOURS["PAUSED"] in paused and _snapshot.COLOURS["COMPLETED"] not in paused


def test_long_error_messages_are_cut_at_a_sentence_not_mid_word():
    from kernelflow.states import Failed

    message = "The input was malformed. " * 5 + "Wrap it in quote() to pass it as it is."
    text = _snapshot.preview(Failed(ValueError(message)))
    assert text == f"ValueError: {message}"  # short enough: kept whole
    cut = _snapshot.clip("First sentence here. " + "word " * 100, 60)
    assert cut == "First sentence here. word word word word word word word …"
    assert _snapshot.clip("One. Two three four five six seven", 20).endswith("…")


def test_flow_run_view_ends_with_state_progress_and_timeline():
    assert mapped(50) == [2 * i for i in range(50)]
    import kernelflow

    run = kernelflow.last_run()
    finals = []
    view = _widgets.FlowRunView(run, on_final=finals.append)
    assert view.state_name == "Completed"
    assert "Completed" in view.body.value and "50/50 completed" in view.body.value
    assert view.tally.completed == view.tally.total == 50
    assert finals == [view]  # the final hook ran once
    # Its pictures go into the static outputs that replace the widget, not into the
    # widget: no message is sent for what nobody would see.
    assert 'class="kf-timeline"' in view.pictures.timeline and view.charts.value == ""
    assert "kf-timeline" in _display.static_bundle("flow", run, view)["text/html"]
    # A view that stays (a frontend asked for the run's bundle) shows them itself.
    kept = _widgets.FlowRunView(run)
    assert '<svg style="width:100%' in kept.charts.value and 'class="kf-timeline"' in (
        kept.charts.value
    )


def test_snapshots_say_the_same_as_the_widgets():
    futures = double.map(range(4))
    futures.wait()
    counts = count(f.task_run for f in futures)
    assert _snapshot.list_plain(counts) == "4 task runs: 4/4 completed"
    assert "4/4 completed" in _snapshot.list_html(counts)
    assert count([]).text() == "0/0 completed"


def test_timeline_merges_bars_too_thin_to_tell_apart():
    mapped(2000)
    import kernelflow

    svg = _charts.timeline_svg(kernelflow.last_run())
    assert 0 < svg.count("<rect") < 2000
    assert "worker threads" in svg  # the lanes of the runner's threads


def test_timeline_axis_reads_in_milliseconds_for_quick_flows():
    assert [label for _, label in _charts.axis_ticks(0.004)] == [
        "0 ms", "1 ms", "2 ms", "3 ms", "4 ms"
    ]  # fmt: skip
    assert [label for _, label in _charts.axis_ticks(0.9)][:3] == ["0 ms", "200 ms", "400 ms"]
    assert [label for _, label in _charts.axis_ticks(12)][:3] == ["0 s", "5 s", "10 s"]
    assert [label for _, label in _charts.axis_ticks(300)][:3] == ["0m", "1m", "2m"]
    mapped(5)
    import kernelflow

    svg = _charts.timeline_svg(kernelflow.last_run())
    assert " ms</text>" in svg and "0 s ... 0.00 s" not in svg


def test_worker_labels_keep_the_part_that_tells_them_apart():
    a = _charts.worker_label("tcp://127.0.0.1:40123/worker-process-1")
    b = _charts.worker_label("tcp://127.0.0.1:40123/worker-process-2")
    assert a != b and a.endswith("process-1") and len(a) <= _charts.LABEL_CHARS
    assert _charts.worker_label("ThreadPool-0") == "ThreadPool-0"


def _fake_run(task_runs):
    return types.SimpleNamespace(task_runs=task_runs, subflow_runs=[], name="r")


def test_graph_is_drawn_when_the_run_has_one_and_skipped_when_not():
    assert mapped(3) == [0, 2, 4]
    import kernelflow

    assert "<svg" in _charts.graph_svg(kernelflow.last_run())
    assert _charts.graph_svg(_fake_run([])) == ""  # nothing ran: nothing to draw
    broken = types.SimpleNamespace(map_group=None, flow_run=None)
    assert _charts.graph_svg(_fake_run([broken])) == ""  # the drawing failed: left out
    huge = [types.SimpleNamespace(map_group=None, flow_run=None)] * (_charts.MAX_GRAPH_NODES + 1)
    assert _charts.graph_svg(_fake_run(huge)) == ""


def test_graph_without_dot_is_left_out(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    mapped(3)
    import kernelflow

    assert _charts.graph_svg(kernelflow.last_run()) == ""


def test_a_finished_flow_shows_its_run_graph_with_maps_as_one_node():
    import kernelflow

    mapped(2000)  # one .map() call: one node, however many runs
    view = _widgets.FlowRunView(kernelflow.last_run())
    assert 'class="kf-graph"' in view.charts.value and "<svg" in view.charts.value
    assert "legend" not in view.pictures.graph  # all completed: no legend
    assert kernelflow.last_run().name + ": Completed" not in view.pictures.graph  # no title


def test_idle_refresh_sends_no_messages(recording_comm):
    future = double.submit(1)
    future.wait()
    view = _widgets.FutureView(future)
    assert any(kind == "comm_open" for kind, _ in recording_comm)
    recording_comm.clear()
    view.refresh()
    assert recording_comm == []  # nothing changed, nothing sent


def test_ticker_refreshes_at_most_once_per_interval_on_one_thread(ticker):
    threads = set()

    class Counting:
        refreshes = 0

        def __init__(self, until):
            self.until = until

        def refresh(self):
            Counting.refreshes += 1
            threads.add(threading.current_thread().name)
            return time.monotonic() < self.until

    start = time.monotonic()
    until = start + 0.5
    for _ in range(100):  # a hundred displays of the same moment: one refresh each per tick
        ticker.watch(Counting(until))
    while ticker.watching or time.monotonic() < until:
        time.sleep(0.02)
        assert time.monotonic() - start < 5
    elapsed = time.monotonic() - start
    assert ticker.ticks <= elapsed / ticker.interval + 2
    assert Counting.refreshes == 100 * ticker.ticks
    assert threads == {"kernelflow-display"}


def test_ticker_coalesces_thousands_of_state_changes(ticker):
    import kernelflow

    seen = []
    done = threading.Event()

    def start_watching(run, old, new):
        if type(run) is kernelflow.FlowRun and new.is_running() and not seen:
            seen.append(_widgets.FlowRunView(run))
            ticker.watch(seen[0])

    unsubscribe = _events.subscribe(start_watching)
    try:
        started = time.monotonic()
        mapped(3000)
        ticker.refresh_now(seen[0])
        elapsed = time.monotonic() - started
        done.set()
    finally:
        unsubscribe()
    view = seen[0]
    assert view.state_name == "Completed" and view.tally.completed == 3000
    # 3000 task runs make ~9000 state changes; refreshes follow the clock instead.
    assert view.refreshes <= elapsed / ticker.interval + 3


def test_flow_display_setting_subscribes_and_unsubscribes_a_flow_run_observer():
    assert not settings.display_flow_runs  # not in a kernel: nothing installed
    settings.display_flow_runs = True
    try:
        assert _display.on_state_change in _events.flow_run_observers()
        assert not _events.has_observers()  # task runs' changes reach no observer
    finally:
        settings.display_flow_runs = False
    assert _display.on_state_change not in _events.flow_run_observers()


def test_flow_run_observers_see_flow_runs_only():
    seen = []
    unsubscribe = _events.subscribe_flow_runs(lambda run, old, new: seen.append(type(run)))
    try:
        mapped(5)
    finally:
        unsubscribe()
    mapped(5)  # created after unsubscribing: not seen
    import kernelflow

    assert seen and set(seen) == {kernelflow.FlowRun}
    assert len(seen) == 2  # Pending -> Running -> Completed


def test_install_respects_the_environment_variable(monkeypatch):
    from kernelflow import notebook

    registered = []
    monkeypatch.setenv("KERNELFLOW_DISPLAY", "0")
    monkeypatch.setattr(_display, "in_kernel", lambda: True)
    monkeypatch.setattr(_display, "register", lambda: registered.append(True))
    notebook.install()
    assert registered  # futures still show themselves live and then static
    assert not settings.display_flow_runs
    monkeypatch.setenv("KERNELFLOW_DISPLAY", "1")
    notebook.install()
    try:
        assert settings.display_flow_runs
    finally:
        settings.display_flow_runs = False


def test_the_dask_dashboard_is_a_link_while_the_run_goes_on_then_an_address_in_its_snapshot():
    """A finished run's snapshot is what the notebook saves: a link in it would be dead once
    the kernel and its cluster are gone, so it says where the dashboard was instead."""
    pytest.importorskip("distributed")
    from kernelflow import last_run
    from kernelflow._runners.remote import close_warm_backends
    from kernelflow.context import get_run_context
    from kernelflow.task_runners import DaskTaskRunner

    options = {"n_workers": 1, "processes": False, "dashboard_address": "127.0.0.1:0"}
    runner = DaskTaskRunner(cluster_kwargs=options)
    running = []

    @flow(task_runner=runner)
    def on_dask():
        double.submit(1).result()  # the cluster is up once a task has run on it
        running.append(_snapshot.flow_header_html(get_run_context().flow_run))

    try:
        on_dask()
        link = runner.dashboard_link  # the cluster stays up for the next flow
        assert link.startswith("http://127.0.0.1:")
        assert f'<a class="kf-dashboard" href="{link}" target="_blank">' in running[0]
        ended = _snapshot.flow_header_html(last_run())
        assert "<a " not in ended and "href" not in ended
        assert f"Dask dashboard was at <code>{link}</code> while its cluster ran" in ended
    finally:
        close_warm_backends()
    assert "dashboard" not in _snapshot.flow_header_html(last_run())  # no cluster, no word


def test_preview_survives_a_repr_that_raises():
    class Nasty:
        def __repr__(self):
            raise RuntimeError("no")

    from kernelflow.states import Completed

    assert "Nasty" in _snapshot.preview(Completed(Nasty()))  # no exception escapes


def test_a_run_reads_the_same_duration_in_its_header_and_its_graph():
    import kernelflow
    from kernelflow.viz import _draw_run

    @kernelflow.task
    def step():
        return 1

    @kernelflow.flow
    def timed():
        return step()

    timed()
    run = kernelflow.last_run()
    run.end_time = run.start_time + 0.3  # a fixed figure, whatever the machine took
    said = "300 ms"
    assert f'<span class="kf-elapsed">{said}</span>' in _snapshot.flow_header_html(run)
    assert _draw_run._title(run).endswith(f", {said}")


def test_flow_view_sends_final_state_first_and_charts_on_the_next_refresh():
    import kernelflow

    views, finals = [], []

    def start_view(run, old, new):
        if type(run) is kernelflow.FlowRun and new.is_running() and not views:
            views.append(_widgets.FlowRunView(run, on_final=finals.append))

    unsubscribe = _events.subscribe(start_view)
    try:
        mapped(20)
    finally:
        unsubscribe()
    [view] = views
    assert view.refresh() is True  # the final frame: state and counts, no charts yet
    assert view.state_name == "Completed" and "20/20 completed" in view.body.value
    assert finals == []
    assert view.refresh() is False  # then the charts, and the final hook, once
    assert "kf-timeline" in view.pictures.timeline and finals == [view]
    assert view.refresh() is False and finals == [view]


def test_without_ipywidgets_a_kernel_still_gets_html_and_text(monkeypatch):
    def missing():
        raise ImportError("Live displays need ipywidgets")

    monkeypatch.setattr(_display, "in_kernel", lambda: True)
    monkeypatch.setattr(_widgets, "ipywidgets", missing)
    future = double.submit(2)
    future.wait()
    bundle = future._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html"}
    assert "Completed" in bundle["text/html"] and "-> 4" in bundle["text/plain"]
    futures = double.map(range(3))
    futures.wait()
    assert "3/3 completed" in futures._repr_mimebundle_()["text/html"]


def test_a_running_flow_shows_its_graph_so_far_coloured_by_state(monkeypatch):
    import kernelflow
    from kernelflow.viz._draw_run import CATEGORIES

    monkeypatch.setattr(_widgets, "FIRST_PICTURES", 0)
    monkeypatch.setattr(_widgets, "PICTURE_INTERVAL", 0)
    first, second = threading.Event(), threading.Event()

    @flow
    def two_steps():
        a = gated(first, 1)
        return gated(second, a)

    views = []

    def start_view(run, old, new):
        if type(run) is kernelflow.FlowRun and new.is_running() and not views:
            views.append(run)

    unsubscribe = _events.subscribe(start_view)
    caller = threading.Thread(target=two_steps)
    try:
        caller.start()
        deadline = time.monotonic() + 10
        # Wait for the first run to be Running (a record exists as Pending first).
        while not (views and views[0].task_runs and views[0].task_runs[0].state.is_running()):
            assert time.monotonic() < deadline
            time.sleep(0.01)
        view = _widgets.FlowRunView(views[0])
        running, completed = (
            CATEGORIES["running"]["fillcolor"],
            CATEGORIES["completed"]["fillcolor"],
        )
        assert running in view.pictures.graph and completed not in view.pictures.graph
        assert 'class="kf-timeline"' in view.pictures.timeline  # the bar grows from its start
        first.set()
        while len(views[0].task_runs) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        # Pictures are redrawn no sooner than twenty times what drawing them took.
        while completed not in view.pictures.graph and time.monotonic() < deadline:
            view.refresh()
            time.sleep(0.02)
        assert running in view.pictures.graph and completed in view.pictures.graph
    finally:
        first.set()
        second.set()
        caller.join(10)
        unsubscribe()
    assert view.refresh() is True and view.refresh() is False  # final frame, then pictures
    assert running not in view.pictures.graph


def test_a_displayed_flow_keeps_its_log_lines_for_its_display(capsys):
    import kernelflow
    from kernelflow import _logging, get_run_logger

    @task
    def warns():
        get_run_logger().warning("watch out")
        get_run_logger().info("fine")
        raise ValueError("broken")

    @flow
    def noisy():
        warns()

    views = []

    def start_view(run, old, new):
        if type(run) is kernelflow.FlowRun and new.is_running() and not views:
            views.append(_widgets.FlowRunView(run))

    _logging.keep_run_logs(True)
    unsubscribe = _events.subscribe(start_view)
    try:
        with pytest.raises(ValueError):
            noisy()
        capsys.readouterr()
        with pytest.raises(ValueError):
            noisy()  # no display this time: its lines go to stderr, without tracebacks
    finally:
        unsubscribe()
        _logging.keep_run_logs(False)
    printed = capsys.readouterr().err
    [view] = views
    view.refresh()
    assert [text.split(" - ")[-1] for _, text in view.log.warnings] == [
        "watch out",
        "Finished in state Failed('ValueError: broken')",
        "Finished in state Failed('ValueError: broken')",
    ]
    assert "Beginning flow run" in view.logs.value and "fine" in view.logs.value
    assert "Traceback" not in view.logs.value
    assert "watch out" in printed and "Traceback" not in printed


def test_many_failures_do_not_fill_the_display_with_red_lines():
    import logging

    from kernelflow import _logging

    log = _logging.RunLog()
    for i in range(50):
        log.add(logging.ERROR, f"run {i} failed")
    log.add(logging.INFO, "started")
    visible, _, folded = _snapshot.logs_html(log).partition("<details")
    assert visible.count("failed") == _snapshot.SHOWN_WARNINGS and "and 42 more below" in visible
    assert "run 49 failed" in folded and "started" in folded and "43 log lines" in folded
    assert _snapshot.logs_plain(log)[-1] == "… and 42 more warnings and errors"


def test_counts_say_which_completed_runs_were_reused_or_cached_and_which_ran():
    import kernelflow
    from kernelflow.cache_policies import INPUTS

    failed, result = failed_then_retried(lambda load: [load(i) for i in range(6)])
    assert result == 15
    counts = count(_charts.all_task_runs(kernelflow.last_run()))
    assert counts.text() == f"7/7 completed: 6 reused from {failed.name}, 1 ran"

    @task(cache_policy=INPUTS)
    def square(x):
        return x * x

    @flow
    def squares():
        return square(3)

    squares()
    squares()
    assert count(kernelflow.last_run().task_runs).text() == "1/1 completed: 1 cached"


def test_one_log_line_is_one_line():
    log = types.SimpleNamespace(warnings=[], lines=[(20, "started")], dropped=0)
    assert ">1 log line<" in _snapshot.logs_html(log)
    log.lines.append((20, "ended"))
    assert ">2 log lines<" in _snapshot.logs_html(log)


def test_every_live_frame_takes_header_and_graph_counts_from_one_snapshot(monkeypatch):
    import re

    import kernelflow

    monkeypatch.setattr(_widgets, "FIRST_PICTURES", 0)
    monkeypatch.setattr(_widgets, "PICTURE_INTERVAL", 0)

    @task
    def trickle(i):
        time.sleep(0.002 * (i % 7))  # runs end all the while frames are drawn
        return i

    @flow
    def many():
        return trickle.map(range(300)).result()

    runs = []
    unsubscribe = _events.subscribe(
        lambda run, old, new: (
            runs.append(run)
            if type(run) is kernelflow.FlowRun and new.is_running() and not runs
            else None
        )
    )
    caller = threading.Thread(target=many)
    frames = []
    try:
        caller.start()
        deadline = time.monotonic() + 20
        while not runs:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        view = _widgets.FlowRunView(runs[0])
        while not runs[0].state.is_final():
            view.refresh()
            if view.charts.value:
                # The map may still be making its runs: "12/137 completed".
                header = re.search(r"(\d+)/\d+ completed", view.body.value)
                graph = re.search(r"(\d+) completed", view.charts.value)
                frames.append((header and header[1], graph and graph[1] or "0"))
    finally:
        caller.join(20)
        unsubscribe()
    assert len(frames) >= 3, frames
    assert all(header == graph for header, graph in frames), frames


class Frontend:
    """IPython's ``display`` as a frontend sees it: each output's data, updates included."""

    def __init__(self):
        self.outputs = []

    def display(self, data, raw=False, display_id=None, metadata=None):
        self.outputs.append(data)
        index = len(self.outputs) - 1

        def update(new, raw=False, metadata=None):
            self.outputs[index] = new

        return types.SimpleNamespace(update=update)


def test_a_cell_ends_only_after_a_swap_to_static_outputs_under_way_is_sent(monkeypatch, ticker):
    # A loaded machine: the final pictures take longer to turn into SVG and PNG outputs
    # than the rest of the cell (the sleep after a flow call) takes to run.
    import IPython.display

    frontend = Frontend()
    monkeypatch.setattr(IPython.display, "display", frontend.display)
    monkeypatch.setattr(_display, "in_kernel", lambda: True)
    monkeypatch.setattr(_display, "ticker", lambda: ticker)
    converting = threading.Event()
    outputs = _charts.Pictures.outputs

    def slow_outputs(pictures, name):
        converting.set()
        time.sleep(0.5)
        return outputs(pictures, name)

    monkeypatch.setattr(_charts.Pictures, "outputs", slow_outputs)
    unsubscribe = _events.subscribe_flow_runs(_display.on_state_change)
    try:
        mapped(3)  # shown as it starts, its final frame sent as it ends, as in a kernel
    finally:
        unsubscribe()
    assert converting.wait(10)  # the display loop has begun the swap
    _display.finish_ended_displays()  # the cell's post_execute
    shown = frontend.outputs[0]
    assert _display.WIDGET_MIME not in shown and "Completed" in shown["text/plain"]
    assert "3/3 completed" in shown["text/html"]
    assert not _display._live_views()


def test_a_big_running_flows_first_pictures_wait_until_drawing_them_is_cheap_enough(
    monkeypatch,
):
    # Live pictures of 10,000 runs take tens of ms to draw, holding the GIL the flow's
    # threads need: the first comes once that is ~5% of the flow's time so far (a flow
    # that ends sooner pays for none: benchmarks/display.py). A few hundred runs draw at once.
    monkeypatch.setattr(_widgets, "_cost_per_run", 4e-6)
    view = object.__new__(_widgets.FlowRunView)
    view._opened_at = time.monotonic()
    view._pictures_at = view._opened_at + _widgets.FIRST_PICTURES
    view.tally = _snapshot.Counts(total=10_000)
    assert not view._affordable()
    assert view._pictures_at == pytest.approx(view._opened_at + 20 * 4e-6 * 10_000)
    view.tally = _snapshot.Counts(total=300)
    assert view._affordable()

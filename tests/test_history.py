"""The run history on disk, tested across real processes: one process runs flows, the
next lists, reads and retries them; killed processes; concurrent writers; bounds;
damaged and locked files."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import kernelflow
from kernelflow import flow, task
from kernelflow._history import writer
from tests.processes import gone

PIPELINE = """
import os, sys
import kernelflow
from kernelflow import flow, task
from kernelflow.cache_policies import INPUTS

CALLS = os.environ["CALLS"]

def called(name):
    with open(CALLS, "a") as file:
        file.write(name + "\\n")

@task(cache_policy=INPUTS)
def load(n):
    called("load")
    return list(range(n))

@task(persist_result=True)
def scale(xs):
    called("scale")
    return [x * 10 for x in xs]

@task
def label(n):
    called("label")
    return f"n={n}"

@task
def report(xs, title):
    called("report")
    kernelflow.get_run_logger().info("reporting %d values", len(xs))
    if os.environ.get("BROKEN"):
        raise ValueError("report is broken")
    return f"{title}: {sum(xs)}"

@flow
def pipeline(n: int):
    return report(scale(load(n)), label(n))

@flow
def hello():
    return "hi"
"""


def run_python(code: str, home: Path, timeout: float = 120, **env: str) -> str:
    """Run ``code`` in a new Python process with ``home`` as KERNELFLOW_HOME."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "KERNELFLOW_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout + result.stderr


@pytest.fixture(autouse=True)
def _no_runs_in_memory():
    kernelflow.runs.clear()  # this session's runs from other tests


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_a_later_process_lists_the_runs_and_retries_the_failed_one(home, tmp_path):
    calls = tmp_path / "calls.txt"
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    run_python(
        f"""
        import runpy
        ns = runpy.run_path({str(script)!r})
        ns["hello"]()
        try:
            ns["pipeline"](4)
        except ValueError:
            pass
        """,
        home,
        CALLS=str(calls),
        BROKEN="1",
    )
    assert calls.read_text().split() == ["load", "scale", "label", "report"]
    calls.write_text("")
    out = run_python(
        f"""
        import runpy
        import kernelflow
        ns = runpy.run_path({str(script)!r})  # the cells that define the flow, run again
        listed = kernelflow.runs()
        print("LISTED", [(r.flow_name, r.state.name) for r in listed])
        failed = kernelflow.runs.get(listed[0].name)
        print("DURATION", failed.duration is not None and failed.duration > 0)
        print("TASKS", [(t.name, t.state.name) for t in failed.task_runs])
        report = failed.task_runs[-1]
        by_id = {{t.id: t.name for t in failed.task_runs}}
        print("EDGES", sorted(by_id[i] for i in report.upstream_ids))
        print("LOGS", [m for _, _, _, m in failed.logs() if "reporting" in m])
        print("PARAMETERS", failed.parameters)
        print("RESULT", failed.retry())
        retried = kernelflow.last_run()
        print("RETRY_OF", retried.retry_of.name == failed.name)
        print("STATES", [(t.name, t.state.name) for t in retried.task_runs])
        """,
        home,
        CALLS=str(calls),
    )
    assert "LISTED [('pipeline', 'Failed'), ('hello', 'Completed')]" in out
    assert "DURATION True" in out
    assert (
        "TASKS [('load-0', 'Completed'), ('scale-0', 'Completed'), ('label-0', 'Completed'), "
        "('report-0', 'Failed')]" in out
    )
    assert "EDGES ['label-0', 'scale-0']" in out
    assert "LOGS ['reporting 4 values']" in out
    assert "PARAMETERS {'n': 4}" in out
    assert "RESULT n=4: 60" in out
    assert "RETRY_OF True" in out
    assert (
        "STATES [('load-0', 'Cached'), ('scale-0', 'Cached'), ('label-0', 'Completed'), "
        "('report-0', 'Completed')]" in out
    )
    # The persisted ones were reused; the one whose result was not persisted ran again,
    # and the retry said why.
    assert calls.read_text().split() == ["label", "report"]
    assert "1 run again: label-0: its result was not persisted" in out


def test_an_ended_runs_batch_waits_a_moment_so_its_caller_gets_on_first(home):
    # Writing is Python work that holds the GIL (the first batch imports the writing
    # modules): begun as the run ends, it held up the caller's return by milliseconds.
    # The batch waits END_GRACE_SECONDS; what is queued is written at exit all the same.
    out = run_python(
        """
        import os, time
        from kernelflow._history import writer
        writer.END_GRACE_SECONDS = 120
        import kernelflow

        @kernelflow.flow
        def hello():
            return "hi"

        hello()
        time.sleep(writer.FLUSH_SECONDS * 4)
        print("WRITTEN", os.path.exists(writer.database_file()))
        """,
        home,
    )
    assert "WRITTEN False" in out
    listed = run_python("import kernelflow\nprint([r.flow_name for r in kernelflow.runs()])", home)
    assert "['hello']" in listed


def test_a_retry_straight_after_listing_reuses_what_was_persisted(home, tmp_path):
    # The retry is the first thing that reads the past run's details (its task runs,
    # their source digests): nothing may be read as missing before they are loaded.
    calls = tmp_path / "calls.txt"
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    run = f"import runpy; ns = runpy.run_path({str(script)!r})\n"
    run_python(
        run + "try:\n    ns['pipeline'](3)\nexcept ValueError:\n    pass",
        home,
        CALLS=str(calls),
        BROKEN="1",
    )
    calls.write_text("")
    out = run_python(
        run + "import kernelflow\nprint('RESULT', kernelflow.runs()[0].retry())",
        home,
        CALLS=str(calls),
    )
    assert "RESULT n=3: 30" in out
    assert calls.read_text().split() == ["label", "report"]  # load and scale reused


def test_a_past_runs_details_read_first_are_not_empty(home, tmp_path):
    calls = tmp_path / "calls.txt"
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    run_python(
        f"""
        import runpy
        from kernelflow.artifacts import create_markdown_artifact
        from kernelflow import flow

        ns = runpy.run_path({str(script)!r})

        @flow
        def noted():
            create_markdown_artifact("# hi", key="note")
            ns["label"](1)
            ns["hello"]()

        noted()
        """,
        home,
        CALLS=str(calls),
    )
    out = run_python(
        """
        import kernelflow
        for name in ("artifacts", "task_sources", "subflow_runs", "task_runs"):
            past = kernelflow.runs()[0]  # a fresh read each time: nothing loaded yet
            print(name.upper(), len(getattr(past, name) or ()))
        """,
        home,
    )
    assert "ARTIFACTS 1" in out
    assert "TASK_SOURCES 1" in out
    assert "SUBFLOW_RUNS 1" in out
    assert "TASK_RUNS 1" in out


def test_a_past_run_was_created_when_its_first_state_says_not_when_read(home, tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    run_python(
        f"""
        import runpy
        ns = runpy.run_path({str(script)!r})
        ns["pipeline"](3)
        """,
        home,
        CALLS=str(tmp_path / "calls.txt"),
    )
    out = run_python(
        """
        import time
        import kernelflow
        time.sleep(0.2)  # reading comes well after the run
        past = kernelflow.runs()[0]
        for run in (past, *past.task_runs):
            print("CREATED", run.created == run.history[0].timestamp < time.time() - 0.15)
        """,
        home,
    )
    assert out.count("CREATED True") >= 2 and "CREATED False" not in out


def test_a_retry_from_history_says_when_no_flow_of_that_name_is_defined(home, tmp_path):
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    calls = tmp_path / "calls.txt"
    run_python(f"import runpy; runpy.run_path({str(script)!r})['hello']()", home, CALLS=str(calls))
    out = run_python(
        """
        import kernelflow
        try:
            kernelflow.runs()[0].retry()
        except LookupError as error:
            print("ERROR", error)
        """,
        home,
    )
    assert "ERROR No flow named 'hello' is defined in this session: run the cell" in out


def test_a_process_killed_mid_run_leaves_a_run_the_next_one_shows_crashed(home, tmp_path):
    started = tmp_path / "started"
    code = f"""
        import time
        from kernelflow import flow, task

        @task
        def slow():
            open({str(started)!r}, "w").close()
            time.sleep(60)

        @flow
        def doomed():
            slow()

        doomed()
        """
    process = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "KERNELFLOW_HOME": str(home)},
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists()
        # The writer's timer has written it Running, with its task runs as they stood.
        time.sleep(writer.SNAPSHOT_SECONDS + writer.FLUSH_SECONDS * 3)
        with sqlite3.connect(home / "runs.sqlite3") as db:
            assert db.execute("SELECT state_name FROM flow_runs").fetchall() == [("Running",)]
            assert db.execute("SELECT count(*) FROM details").fetchone() == (1,)
    finally:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)  # reaped, so its pid is gone
    assert gone([process.pid], 10)
    out = run_python(
        """
        import kernelflow
        (run,) = kernelflow.runs()
        print("STATE", run.flow_name, run.state.name, run.state.message)
        print("TASKS", [(t.name, t.state.name) for t in run.task_runs])
        """,
        home,
    )
    assert "STATE doomed Crashed the process that ran it exited" in out
    assert "TASKS [('slow-0', 'Crashed')]" in out
    with sqlite3.connect(home / "runs.sqlite3") as db:  # and the history now says so
        assert db.execute("SELECT state_name FROM flow_runs").fetchall() == [("Crashed",)]


def test_four_processes_writing_500_runs_each_lose_nothing(home):
    code = """
        import os
        from kernelflow import flow, task

        @task
        def add(x, y):
            return x + y

        @flow
        def many(i: int):
            return add(i, 1)

        for i in range(500):
            many(i)
        """
    env = {**os.environ, "KERNELFLOW_HOME": str(home), "KERNELFLOW_LOGGING_LEVEL": "ERROR"}
    processes = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env) for _ in range(4)
    ]
    assert [p.wait(timeout=600) for p in processes] == [0, 0, 0, 0]
    with sqlite3.connect(home / "runs.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute("SELECT state_name, task_counts, pid FROM flow_runs").fetchall()
        details = db.execute("SELECT count(*) FROM details").fetchone()[0]
    assert len(rows) == 2000 and details == 2000
    assert {(state, counts) for state, counts, _ in rows} == {("Completed", '{"Completed": 1}')}
    assert sorted({pid for *_, pid in rows}) == sorted(p.pid for p in processes)


@task
def one(x):
    return x


@flow
def counted(i: int):
    return one(i)


def test_the_history_keeps_at_most_the_set_number_of_runs(monkeypatch):
    monkeypatch.setenv("KERNELFLOW_HISTORY_MAX_RUNS", "10")
    names = []
    for i in range(25):
        counted(i)
        names.append(kernelflow.last_run().name)
    listed = kernelflow.runs(limit=None)
    assert [r.name for r in listed] == names[::-1][:10]  # the newest 10


def test_runs_older_than_the_set_age_go(monkeypatch):
    counted(0)
    kernelflow.runs()  # written
    monkeypatch.setenv("KERNELFLOW_HISTORY_MAX_AGE_DAYS", str(1 / 86400))  # one second
    time.sleep(1.1)
    counted(1)
    assert [r.parameters["i"] for r in kernelflow.runs()] == [1]


def test_filters_and_clear(monkeypatch):
    import datetime

    @flow
    def other():
        return 1

    counted(1)
    other()
    assert [r.flow_name for r in kernelflow.runs()] == ["other", "counted"]
    assert [r.flow_name for r in kernelflow.runs(flow=counted)] == ["counted"]
    assert len(kernelflow.runs(flow="nightly_report")) == 0
    assert [r.flow_name for r in kernelflow.runs(flow="other", state="completed")] == ["other"]
    assert kernelflow.runs(state="Failed") == []
    assert len(kernelflow.runs(limit=1)) == 1
    assert kernelflow.runs(since=datetime.timedelta(hours=1))[0].flow_name == "other"
    assert kernelflow.runs(since=time.time() + 60) == []
    assert kernelflow.runs.clear(older_than=datetime.timedelta(hours=1)) == 0
    assert kernelflow.runs.clear() == 2
    assert kernelflow.runs() == [] and kernelflow.last_run() is None
    with pytest.raises(TypeError, match="timedelta"):
        kernelflow.runs(since="yesterday")


def test_get_of_an_unknown_run_names_the_problem():
    with pytest.raises(LookupError, match="No flow run named 'nope'"):
        kernelflow.runs.get("nope")


WARNING = "The run history at"


def test_a_damaged_file_gives_one_warning_and_flows_still_run(home):
    home.mkdir(mode=0o700)
    (home / "runs.sqlite3").write_bytes(b"this is not a database" * 100)
    os.chmod(home / "runs.sqlite3", 0o600)
    out = run_python(
        """
        import kernelflow
        from kernelflow import flow

        @flow
        def fine(i: int):
            return i

        print("RESULTS", [fine(i) for i in range(5)])
        print("LISTED", len(kernelflow.runs()))
        """,
        home,
    )
    assert "RESULTS [0, 1, 2, 3, 4]" in out
    assert "LISTED 5" in out  # this session's, from memory
    assert out.count(WARNING) == 1
    assert "cannot be used (DatabaseError: file is not a database)" in out


def test_a_locked_file_gives_one_warning_and_flows_still_run(home):
    kernelflow.runs()  # creates the file
    counted(0)
    kernelflow.runs()
    locker = sqlite3.connect(writer.database_file(), isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        out = run_python(
            """
            from kernelflow import flow

            @flow
            def fine(i: int):
                return i

            print("RESULTS", [fine(i) for i in range(3)])
            """,
            Path(os.environ["KERNELFLOW_HOME"]),
        )
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert "RESULTS [0, 1, 2]" in out
    assert out.count(WARNING) == 1
    assert "database is locked" in out


def test_the_file_is_private(home):
    counted(0)
    kernelflow.runs()
    assert os.stat(writer.database_file()).st_mode & 0o777 == 0o600


_HOLDS_A_LOCK = """
import fcntl, os, struct, sys
# Would a write lock on SQLite's lock bytes of the file be refused? (struct flock)
fd = os.open(sys.argv[1], os.O_RDWR)
asked = struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0x40000000, 512, 0)
print(struct.unpack("hhqqi", fcntl.fcntl(fd, fcntl.F_GETLK, asked))[0] != fcntl.F_UNLCK)
"""


def _another_process_sees_a_lock(file: Path) -> bool:
    code = [sys.executable, "-c", _HOLDS_A_LOCK, str(file)]
    return subprocess.run(code, capture_output=True, text=True, check=True).stdout.strip() == "True"


@pytest.mark.skipif(sys.platform != "linux", reason="reads POSIX locks with Linux's struct flock")
def test_opening_the_file_again_keeps_the_locks_of_connections_already_open(home):
    # SQLite's locks belong to the process: a descriptor of the file closed by anyone in
    # it drops them all, and another process then takes itself for the last connection
    # and deletes the write-ahead log under this one's (a corrupt database, as this
    # machine's ~/.kernelflow/runs.sqlite3 was). Each thread opens its own connection.
    from kernelflow._history.store import Database

    file = home / "runs.sqlite3"
    first = Database(file)
    try:
        first.connection.execute("SELECT count(*) FROM flow_runs").fetchone()
        assert _another_process_sees_a_lock(file)
        second = Database(file)  # another thread's, in the same process
        second.close()
        assert _another_process_sees_a_lock(file)
    finally:
        first.close()


def test_history_off_writes_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("KERNELFLOW_HISTORY", "off")
    monkeypatch.setenv("KERNELFLOW_HOME", str(tmp_path / "untouched"))
    counted(0)
    assert [r.name for r in kernelflow.runs()] == [kernelflow.last_run().name]
    assert not Path(writer.database_file()).exists()


# --- runs.compare ---------------------------------------------------------------------

broken_steps: set[str] = set()


@task
def fetch(n):
    return list(range(n))


@task
def total_of(xs):
    if "total_of" in broken_steps:
        raise ValueError("total_of is broken")
    return sum(xs)


@flow
def summing(n: int):
    return total_of(fetch(n))


def test_compare_shows_changed_inputs_durations_and_reused_results():
    summing(3)
    first = kernelflow.last_run()
    summing(4)
    second = kernelflow.last_run()
    comparison = kernelflow.runs.compare(first.name, second)
    assert comparison.changed == ["fetch-0", "total_of-0"]  # n changed, so did its list
    assert comparison.reused == []
    assert all(t.duration_a is not None and t.duration_b is not None for t in comparison.tasks)

    broken_steps.add("total_of")
    with pytest.raises(ValueError):
        summing(5)
    failed = kernelflow.last_run()
    broken_steps.clear()
    failed.retry()
    retried = kernelflow.last_run()
    comparison = kernelflow.runs.compare(failed, retried)
    assert comparison.changed == [] and comparison.reused == ["fetch-0"]
    text = repr(comparison)
    assert f"a: {failed.name} (Failed" in text and f"b: {retried.name} (Completed" in text
    assert "fetch-0" in text and "yes" in text


def test_compare_reads_past_runs_as_live_ones():
    summing(3)
    summing(3)
    kernelflow.runs()  # written
    live = kernelflow.runs()
    kernelflow._run_history._history.clear()  # as after a restart: nothing in memory
    past_a, past_b = kernelflow.runs()
    assert type(past_a).__name__ == "PastFlowRun"
    comparison = kernelflow.runs.compare(past_a, past_b)
    assert comparison.changed == [] and [t.name for t in comparison.tasks] == [
        "fetch-0",
        "total_of-0",
    ]
    assert [r.name for r in live] == [past_a.name, past_b.name]


def test_a_pause_and_its_answer_are_in_the_history():
    import pydantic

    from kernelflow import pause_flow_run, resume_flow_run

    class Approval(pydantic.BaseModel):
        approved: bool
        reviewer: str

    def answer():
        for _ in range(500):
            paused = kernelflow.paused_runs()
            if paused:
                resume_flow_run(paused[0].id, run_input={"approved": True, "reviewer": "ada"})
                return
            time.sleep(0.01)

    @flow
    def reviewed():
        return pause_flow_run(timeout=10, wait_for_input=Approval).reviewer

    import threading

    thread = threading.Thread(target=answer)
    thread.start()
    assert reviewed() == "ada"
    thread.join()
    name = kernelflow.last_run().name
    kernelflow._run_history._history.clear()  # read back from disk, as after a restart
    past = kernelflow.runs.get(name)
    assert [s.name for s in past.history] == [
        "Pending",
        "Running",
        "Paused",
        "Running",
        "Completed",
    ]
    assert "ada" in past.history[3].message  # the answer, as the state after the pause says


def test_a_file_other_users_can_write_is_refused_with_one_warning(kf_logs):
    counted(0)
    kernelflow.runs()
    os.chmod(writer.database_file(), 0o666)
    writer.forget_connection(writer.database_file())
    assert counted(1) == 1  # flows still run
    listed = kernelflow.runs()
    assert [r.parameters["i"] for r in listed] == [1, 0]  # this session's, from memory
    warnings = [r.getMessage() for r in kf_logs if WARNING in r.getMessage()]
    assert len(warnings) == 1 and "other users can write to it" in warnings[0]


@task
def says_hello():
    kernelflow.get_run_logger().info("hello from a worker process")
    return os.getpid()


def test_log_lines_of_a_task_run_in_a_worker_process_are_recorded():
    from kernelflow.task_runners import ProcessPoolTaskRunner

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def remote():
        return says_hello.submit().result()

    assert remote() != os.getpid()
    time.sleep(writer.FLUSH_SECONDS * 2)  # the final state written before the last line
    lines = [m for *_, m in kernelflow.last_run().logs()]
    assert "hello from a worker process" in lines
    assert lines[-1] == "Finished in state Completed()"  # logged after the final state


def test_previews_of_large_values_are_short_and_never_a_whole_repr():
    from kernelflow._history.rows import preview_of

    assert preview_of(bytes(10_000_000)).endswith("... (10,000,000 bytes)")
    assert len(preview_of(bytes(10_000_000))) < 250
    assert len(preview_of("x" * 10_000_000)) < 250
    assert len(preview_of(list(range(100_000)))) < 250
    assert preview_of(3) == 3 and preview_of(None) is None

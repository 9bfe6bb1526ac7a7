"""The tutorial notebooks are lessons: a goal, exercises with solutions, a closing check.

Running them is `pytest --nbmake notebooks/` (part of `make test`); this file checks
their shape, which a reader relies on and nbmake cannot see, and runs every solution
in its lesson, which nbmake does not: a solution lives in `notebooks/solutions/` and the
lesson only has the comment `# %load solutions/NN_name.py`, which the learner uncomments.
A live `%load` line would not do: "Run All" in JupyterLab runs it, and its reply replaces
the cell with the solution (in plain view, and run by the next "Run All"); where the file
is missing (a lesson copied alone) it raises, and "Run All" stops there.
"""

import json
import pathlib
import re

import nbformat
import pytest
from nbclient import NotebookClient

from tests.kernel import RealKernel

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
# Every numbered notebook is a lesson (issues 19, 28) except 10, a reference for porting:
# 01-09 follow one case study, 11 and 12 the run history and logs, 13 is the capstone.
REFERENCE = "10_porting_from_prefect"
COURSE = sorted(p.stem for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb") if p.stem != REFERENCE)


def _cells(name: str) -> list[dict]:
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    return [{**cell, "text": "".join(cell["source"])} for cell in cells]


SOLUTIONS = NOTEBOOKS / "solutions"
LOAD = re.compile(r"^# %load (solutions/(\d\d)_\w+\.py)$")


def _solution_file(cells: list[dict], heading_at: int) -> str | None:
    # A "Solution" heading followed by a code cell that is only `# %load solutions/NN_x.py`:
    # "Run All" runs a comment, nbconvert's HTML shows only the line, and the learner who
    # uncomments it gets the code in the cell, not run.
    following = [c for c in cells[heading_at + 1 : heading_at + 3] if c["cell_type"] == "code"]
    match = following and LOAD.match(following[0]["text"].strip())
    return match.group(1) if match else None


@pytest.mark.parametrize("name", COURSE)
def test_opens_with_a_goal(name):
    first = _cells(name)[0]
    assert first["cell_type"] == "markdown" and first["text"].startswith("# ")
    assert re.search(r"^\*\*Goal:\*\* \S.{20,}", first["text"], re.M), (
        f"{name}: the first cell needs a line '**Goal:** ...' saying what the learner can do after"
    )


@pytest.mark.parametrize("name", COURSE)
def test_has_exercises_with_solutions(name):
    cells = _cells(name)
    markdown = [(i, c) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    exercises = [i for i, c in markdown if re.search(r"^## Exercise \d", c["text"], re.M)]
    solutions = [i for i, c in markdown if re.search(r"^### Solution", c["text"], re.M)]
    assert exercises, f"{name}: no '## Exercise N' heading"
    assert len(solutions) == len(exercises), f"{name}: each exercise needs one '### Solution' cell"
    for exercise, solution in zip(exercises, solutions, strict=True):
        assert exercise < solution, f"{name}: a solution comes before its exercise"
    for at in solutions:
        loaded = _solution_file(cells, at)
        assert loaded, (
            f"{name}: the cell after solution heading {at} must be only `# %load solutions/...`"
        )
        assert loaded.startswith(f"solutions/{name[:2]}_"), f"{name}: {loaded} is another lesson's"
        assert (NOTEBOOKS / loaded).is_file(), f"{name}: {loaded} does not exist"


@pytest.mark.parametrize("name", COURSE)
def test_no_solution_code_in_the_lesson(name):
    # Collapsed cells still show in nbconvert's HTML and still run in "Run All" (issue 28).
    hidden = [i for i, c in enumerate(_cells(name)) if c["metadata"].get("jupyter")]
    assert not hidden, f"{name}: cells {hidden} are collapsed; move their code to solutions/"


def test_every_solution_file_is_loaded_by_its_lesson():
    loaded = {
        match.group(1)
        for name in COURSE
        for cell in _cells(name)
        if (match := LOAD.match(cell["text"].strip()))
    }
    files = {f"solutions/{path.name}" for path in SOLUTIONS.glob("*.py")}
    assert files == loaded, f"not loaded: {files - loaded}; missing: {loaded - files}"
    # `pytest --nbmake notebooks` must not collect them as tests
    assert not [path for path in SOLUTIONS.glob("*.py") if path.name.startswith("test_")]


@pytest.mark.kernel
@pytest.mark.parametrize("name", COURSE)
def test_each_solution_runs_in_its_lesson(name):
    """The lesson as a learner who runs every solution has it: each `# %load` cell replaced
    by its file, then the whole notebook executed in a real kernel."""
    notebook = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    replaced = 0
    for cell in notebook.cells:
        match = cell.cell_type == "code" and LOAD.match(cell.source.strip())
        if match:
            cell.source = (NOTEBOOKS / match.group(1)).read_text()
            replaced += 1
    assert replaced, f"{name}: no solution to run"
    client = NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # raises CellExecutionError naming the cell that failed


@pytest.mark.kernel
def test_a_solution_cell_runs_nothing_until_uncommented_then_shows_the_code():
    """What "Run All" and then the learner do with each solution cell, in a real kernel
    started where JupyterLab starts it (the lesson's folder)."""
    with RealKernel(cwd=str(NOTEBOOKS)) as kernel:
        for path in sorted(SOLUTIONS.glob("*.py")):
            line = f"%load solutions/{path.name}"
            as_saved = kernel.execute(f"# {line}")  # "Run All": a comment
            assert (as_saved.payload, _shown(as_saved)) == ([], []), path.name
            uncommented = kernel.execute(line)
            # The reply replaces the cell with the file's code; nothing ran, nothing printed
            # (every solution would print or fail on names its lesson defines).
            assert uncommented.payload == [
                {
                    "source": "set_next_input",
                    "text": f"# {line}\n{path.read_text()}",
                    "replace": True,
                }
            ], path.name
            assert _shown(uncommented) == [], path.name


def _shown(reply) -> list[dict]:
    """What a cell put under itself: text, displays, an error."""
    shown = ("stream", "display_data", "execute_result", "error")
    return [msg["content"] for msg in reply.outputs if msg["msg_type"] in shown]


@pytest.mark.parametrize("name", COURSE)
def test_asks_for_predictions(name):
    texts = [c["text"] for c in _cells(name) if c["cell_type"] == "markdown"]
    assert any("**Predict, then run.**" in text for text in texts), name


@pytest.mark.parametrize("name", COURSE)
def test_ends_with_a_three_question_check(name):
    last = _cells(name)[-1]
    assert last["cell_type"] == "markdown" and "## Check your understanding" in last["text"]
    questions, _, answers = last["text"].partition("<details>")
    numbered = re.findall(r"^(\d)\. \S", questions, re.M)
    assert numbered == ["1", "2", "3"], f"{name}: the check needs three numbered questions"
    assert len(re.findall(r"^\d\. \S", answers, re.M)) == 3, f"{name}: three answers, collapsed"


def test_the_course_is_twelve_lessons_around_the_porting_reference():
    numbers = [name[:2] for name in COURSE]
    assert numbers == [f"{n:02}" for n in (*range(1, 10), 11, 12, 13)], COURSE
    assert (NOTEBOOKS / f"{REFERENCE}.ipynb").is_file()
    assert COURSE[-1] == "13_capstone"


def test_binder_installs_what_pyproject_says_the_course_needs():
    """binder/ opens the course with nothing installed: its requirements.txt is kernelflow's
    dependencies and its notebook and dask extras, on the Python of runtime.txt."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11, as Binder's runtime.txt
    from packaging.requirements import Requirement

    binder = NOTEBOOKS.parent / "binder"
    runtime = (binder / "runtime.txt").read_text().strip()
    assert re.fullmatch(r"python-3\.1[1-9]", runtime), runtime
    python = {"python_version": runtime.removeprefix("python-")}
    project = tomllib.loads((NOTEBOOKS.parent / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    needed = [*project["dependencies"], *extras["notebook"], *extras["dask"]]
    wanted = {
        (r.name, str(r.specifier))
        for r in map(Requirement, needed)
        if r.marker is None or r.marker.evaluate(python)
    }
    lines = (binder / "requirements.txt").read_text().splitlines()
    listed = {
        (r.name, str(r.specifier))
        for r in map(Requirement, (line for line in lines if line and not line.startswith("#")))
    }
    assert wanted <= listed, f"binder/requirements.txt lacks {sorted(wanted - listed)}"
    assert "jupyterlab" in {name for name, _ in listed}  # the server Binder opens

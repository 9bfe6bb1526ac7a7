"""The tutorial notebooks are lessons: a goal, exercises with solutions, a closing check.

Running them is `pytest --nbmake notebooks/` (part of `make test`); this file checks
their shape, which a reader relies on and nbmake cannot see.
"""

import json
import pathlib
import re

import pytest

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
# Notebooks 01-09 are the course (issue 19): one case study, each notebook a lesson.
COURSE = sorted(path.stem for path in NOTEBOOKS.glob("0[1-9]_*.ipynb"))


def _cells(name: str) -> list[dict]:
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text())["cells"]
    return [{**cell, "text": "".join(cell["source"])} for cell in cells]


def _solution_hidden(cells: list[dict], heading_at: int) -> bool:
    # A "Solution" heading followed by a code cell whose source is collapsed in Jupyter.
    following = cells[heading_at + 1 : heading_at + 3]
    return any(
        c["cell_type"] == "code" and c["metadata"].get("jupyter", {}).get("source_hidden")
        for c in following
    )


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
        assert _solution_hidden(cells, at), f"{name}: the solution after cell {at} is not collapsed"


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


def test_the_course_is_nine_lessons():
    assert [name[:2] for name in COURSE] == [f"0{n}" for n in range(1, 10)], COURSE

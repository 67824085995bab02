"""The assignments round-trip through nbgrader, in a temporary copy of the course:
release reproducible, solutions full marks, untouched exercises zero, no solution leaks."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPORT, ROOT, copy_course

pytestmark = pytest.mark.slow

ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def _notebook(folder: Path, assignment: str) -> Path:
    return folder / assignment / f"{assignment}.ipynb"


def _nbgrader(course: Path, env, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["nbgrader", *args], cwd=course, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def course(tmp_path_factory, tool_env):
    """A graded copy: release regenerated, one full and one blank submission autograded."""
    course = copy_course(tmp_path_factory.mktemp("course") / "course")
    timings = {}
    for assignment in ASSIGNMENTS:
        _nbgrader(course, tool_env, "generate_assignment", assignment, "--force")
        for student, origin in (("solution", "solutions"), ("blank", "exercises")):
            target = _notebook(course / "submitted" / student, assignment)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(_notebook(course / origin, assignment), target)
            start = time.perf_counter()
            _nbgrader(course, tool_env, "autograde", assignment, "--student", student, "--force")
            timings[(assignment, student)] = time.perf_counter() - start
    print("autograde wall time per submission:", {k: round(v, 1) for k, v in timings.items()})
    REPORT.append(
        "nbgrader autograde, seconds per submission (solution / untouched): "
        + ", ".join(
            f"{a} {timings[(a, 'solution')]:.1f}/{timings[(a, 'blank')]:.1f}" for a in ASSIGNMENTS
        )
    )
    return course


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_is_what_nbgrader_generates(course, assignment):
    generated = json.loads(_notebook(course / "exercises", assignment).read_text())
    committed = json.loads(_notebook(ROOT / "exercises", assignment).read_text())
    assert generated == committed, (
        f"exercises/{assignment} is stale: run `make release` and commit the result"
    )


def _grades(course: Path, assignment: str, student: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(assignment, assignment, student)
        return [
            (g.name, g.auto_score, g.max_score, g.cell.cell_type, g.needs_manual_grade)
            for g in notebook.grades
        ]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_gets_full_marks(course, assignment):
    grades = _grades(course, assignment, "solution")
    auto = [g for g in grades if g[3] == "code"]
    manual = [g for g in grades if g[3] == "markdown"]
    assert len(auto) >= 3, "each assignment has at least three autograded parts"
    assert len(manual) >= 1, "each assignment has a manually graded written answer"
    assert all(score == maximum for _, score, maximum, *_ in auto), auto


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_exercise_gets_zero_without_crash_or_timeout(course, assignment):
    grades = _grades(course, assignment, "blank")
    assert all((score or 0) == 0 for _, score, *_ in grades), grades
    graded = _notebook(course / "autograded" / "blank", assignment).read_text()
    assert "CellTimeoutError" not in graded
    assert "NotImplementedError" in graded  # failed because unanswered, not for another reason


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_graded_solution_cells_write_nothing_to_stderr(course, assignment):
    for cell in _cells(_notebook(course / "autograded" / "solution", assignment)):
        for output in cell.get("outputs", []):
            assert output.get("name") != "stderr", output
            assert output.get("output_type") != "error", output


def _solution_lines(assignment: str) -> set[str]:
    """Every line between solution markers, every hidden test line, every model answer."""
    lines = set()
    for cell in _cells(_notebook(ROOT / "solutions", assignment)):
        meta = cell["metadata"].get("nbgrader", {})
        text = _source(cell)
        for block in re.findall(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", text, re.S):
            lines.update(block.splitlines())
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
            lines.update(block.splitlines())
        if cell["cell_type"] == "markdown" and meta.get("solution"):
            lines.update(text.splitlines())
    return {ln.strip() for ln in lines if len(ln.strip()) > 12}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_no_solution_or_hidden_test_in_the_release(assignment):
    release = _notebook(ROOT / "exercises", assignment)
    text = "\n".join(_source(c) for c in _cells(release))
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "Model answer"):
        assert marker not in text
    leaked = [line for line in _solution_lines(assignment) if line in text]
    assert not leaked, f"solution lines found in exercises/{assignment}: {leaked}"
    assert all(not c.get("outputs") for c in _cells(release) if c["cell_type"] == "code")

"""The corpus of broken submissions (tests/grading_corpus.py), graded by `course autograde`
as one class: every submission gets its expected result, none affects another, nothing
escapes its private folder, the result equals sequential `nbgrader autograde`, and
regrading gives identical scores."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest
from conftest import copy_course
from grading_corpus import ASSIGNMENT, CELL_TIMEOUT, build_corpus

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
WALL_TIME = 45  # seconds per submission: the stalling one needs more, the others far less
MEMORY_MB = 2048  # a kernel with torch maps about 1.4 GiB
REGRADED = ["solution", "untouched", "raises", "stderr", "os_exit", "renamed", "not_json",
            "memory_bomb", "writes_outside"]
SEQUENTIAL = ["solution", "raises", "stderr"]


def _course_command(course: Path, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "course"), *args], cwd=course, env=env, capture_output=True, text=True,
        timeout=900,
    )


def _make_course(destination: Path) -> Path:
    course = copy_course(destination)
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + f"\nc.Execute.timeout = {CELL_TIMEOUT}\n")
    return course


def _gradebook(course: Path) -> dict:
    """(student, grade cell) -> what the gradebook holds, plus per-notebook state."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(ASSIGNMENT):
            for notebook in submission.notebooks:
                comments = {c.name: c.auto_comment for c in notebook.comments}
                for grade in notebook.grades:
                    rows[(submission.student.id, grade.name)] = {
                        "auto_score": grade.auto_score,
                        "needs_manual_grade": grade.needs_manual_grade,
                        "auto_comment": comments.get(grade.name),
                    }
                rows[(submission.student.id, "*notebook")] = {
                    "flagged": notebook.flagged,
                    "late_penalty": notebook.late_submission_penalty,
                    "timestamp": str(submission.timestamp),
                }
    return rows


def _grading_processes() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if any("course-grading-" in part for part in process.info["cmdline"] or []):
            found.append(process)
    return found


@pytest.fixture(scope="module")
def corpus(root):
    return {case.student: case for case in build_corpus(root)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory, tool_env, corpus):
    """The whole corpus graded as one class."""
    base = tmp_path_factory.mktemp("corpus")
    course = _make_course(base / "course")
    for case in corpus.values():
        case.write(course)
    scratch_before = set(Path(tempfile.gettempdir()).glob("course-grading-*"))
    start = time.perf_counter()
    result = _course_command(
        course, tool_env, "autograde", ASSIGNMENT, "--wall-time", str(WALL_TIME),
        "--memory-limit", str(MEMORY_MB), "--no-progress",
    )
    elapsed = time.perf_counter() - start
    print(f"corpus of {len(corpus)} graded in {elapsed:.0f} s\n{result.stdout}")
    scratch_after = set(Path(tempfile.gettempdir()).glob("course-grading-*"))
    return {
        "course": course,
        "base": base,
        "result": result,
        "grades": _gradebook(course),
        "leftover_scratch": scratch_after - scratch_before,
        "leftover_processes": _grading_processes(),
    }


def _summary_line(result, student: str) -> str:
    return next(ln for ln in result.stdout.splitlines() if ln.split(" ")[0] == student)


def test_the_command_ends_cleanly_and_reports_the_failures(graded, corpus):
    result = graded["result"]
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no progress bar without a TTY
    failing = sorted(s for s, case in corpus.items() if case.fails)
    assert result.returncode == 1, result.stdout  # some submissions could not be graded
    assert f"{len(failing)} could not be graded" in result.stdout
    for student in corpus:
        assert _summary_line(result, student)


@pytest.mark.parametrize("student", [c.student for c in build_corpus(Path(__file__).parents[1])])
def test_each_submission_gets_its_expected_result(graded, corpus, student):
    case = corpus[student]
    grades, course = graded["grades"], graded["course"]
    for grade_id, expected in case.expected.items():
        row = grades[(student, grade_id)]
        if grade_id == case.extra.get("checker_must_reject"):
            continue  # see test_the_checker_rejects_the_reference
        assert row["auto_score"] == expected, (student, grade_id, row, case.what)
        assert row["needs_manual_grade"] == (expected is None), (student, grade_id, row)
    line = _summary_line(graded["result"], student)
    notebook = grades[(student, "*notebook")]
    assert notebook["flagged"] == (case.fails or case.flagged), line
    autograded = course / "autograded" / student / ASSIGNMENT
    if case.fails:
        assert " failed " in line and case.reason in line, line
        assert not autograded.exists()  # as nbgrader leaves a failed submission
        assert case.extra.get("found", "") in line
    else:
        assert " graded " in line, line
        assert (autograded / f"{ASSIGNMENT}.ipynb").exists()
    log = course / "autograded" / student / f"{ASSIGNMENT}.log"
    assert log.read_text().strip(), "every submission keeps its grading log"


def _outputs(course: Path, student: str) -> str:
    notebook = course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cells = json.loads(notebook.read_text())["cells"]
    return json.dumps([c.get("outputs", []) for c in cells])


def test_the_memory_bomb_hit_the_memory_limit(graded):
    assert "MemoryError" in _outputs(graded["course"], "memory_bomb")


def test_the_infinite_loop_was_interrupted_by_the_cell_timeout(graded):
    assert "CellTimeoutError" in _outputs(graded["course"], "infinite_loop")


def test_the_edited_tests_ran_as_released(graded):
    outputs = _outputs(graded["course"], "edited_tests")
    assert "NotImplementedError" in outputs and "all tests passed" not in outputs


def test_nothing_escaped_the_private_folders(graded):
    base, course = graded["base"], graded["course"]
    escaped = [p for p in base.rglob("ESCAPED.txt")]
    escaped += [p for p in Path(tempfile.gettempdir()).glob("*/ESCAPED.txt")]
    escaped += [p for p in Path.home().glob("ESCAPED.txt")]
    assert not escaped, escaped
    assert (course / "gradebook.db").read_bytes()[:16] == b"SQLite format 3\x00"
    assert not graded["leftover_scratch"], "private folders must be removed"
    assert not graded["leftover_processes"], "no kernel or worker may outlive the grading"
    students = {p.name for p in (course / "autograded").iterdir() if p.is_dir()}
    assert students <= set(p.name for p in (course / "submitted").iterdir())


def test_the_checker_rejects_the_reference(graded, corpus):
    case = corpus["calls_reference"]
    part = case.extra["checker_must_reject"]
    assert graded["grades"][("calls_reference", part)]["auto_score"] == 0.0


def test_parallel_grading_equals_sequential_nbgrader(graded, tmp_path, tool_env, corpus):
    course = _make_course(tmp_path / "course")
    for student in SEQUENTIAL:
        corpus[student].write(course)
    subprocess.run(
        ["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=course, env=tool_env,
        check=True, capture_output=True,
    )
    result = subprocess.run(
        ["nbgrader", "autograde", ASSIGNMENT], cwd=course, env=tool_env, capture_output=True,
        text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    sequential = _gradebook(course)
    parallel = {k: v for k, v in graded["grades"].items() if k[0] in SEQUENTIAL}
    assert set(sequential) == set(parallel)
    for key in sorted(sequential):
        assert parallel[key] == sequential[key], key


def test_regrading_gives_identical_scores(graded, tool_env):
    course = graded["course"]
    students = [arg for s in REGRADED for arg in ("--student", s)]
    result = _course_command(
        course, tool_env, "autograde", ASSIGNMENT, "--force", "--wall-time", str(WALL_TIME),
        "--memory-limit", str(MEMORY_MB), "--no-progress", *students,
    )
    assert result.returncode == 1, result.stdout  # os_exit, renamed, not_json still fail
    again = _gradebook(course)
    for key, row in graded["grades"].items():
        assert again[key] == row, key


def test_a_regrade_without_force_skips_graded_submissions(graded, tool_env):
    result = _course_command(
        graded["course"], tool_env, "autograde", ASSIGNMENT, "--student", "solution",
        "--no-progress",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "skipped" in _summary_line(result, "solution")

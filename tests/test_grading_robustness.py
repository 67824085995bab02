"""One submission never stops the class, grades come from trusted data, and feedback
shows no secret: `course autograde`, `course feedback` and `course export` run end to end
on a small copy of the course with honest, broken and tampering submissions.

Expected scores are computed here from the source notebook's grade cells and the
definition of a *part* (an answer code cell and the test cells after it): a flagged
answer cell zeroes its part and every later one; a flag in a cell the student added
zeroes every test cell.
"""

from __future__ import annotations

import base64
import csv
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, copy_course
from grading_corpus import filled

from course_lib.grading.leaks import secret_lines

ASSIGNMENT = "01_sparse_connectivity"
SOURCE = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
RELEASE = ROOT / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
BIN = Path(sys.executable).parent
NAME = f"{ASSIGNMENT}.ipynb"
# A line of another assignment's solution, which this student never wrote: printed
# base64-encoded, it must keep the feedback page from the student.
DALES_LAW = ROOT / "solutions" / "02_dales_law" / "02_dales_law.ipynb"
FOREIGN_SECRET = next(line for line in sorted(secret_lines(DALES_LAW)) if len(line) > 30)


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _test_points() -> list[tuple[str, str | None, float]]:
    """(test grade_id, the answer code cell before it, points) in the source's order."""
    rows, answer = [], None
    for cell in nbformat.read(SOURCE, as_version=4).cells:
        meta = _meta(cell)
        if cell.cell_type != "code":
            continue
        if meta.get("solution"):
            answer = meta["grade_id"]
        elif meta.get("grade"):
            rows.append((meta["grade_id"], answer, float(meta["points"])))
    return rows


def expected_score(zero_from: str | None = None, everything: bool = False) -> float:
    """Autograded points of the honest answers, with the parts from answer ``zero_from``
    on (or every part) at zero."""
    total, zeroing = 0.0, everything
    for _test, answer, points in _test_points():
        zeroing = zeroing or answer == zero_from
        total += 0.0 if zeroing else points
    return total


def _honest():
    return filled(nbformat.read(RELEASE, as_version=4), nbformat.read(SOURCE, as_version=4))


def _edited(answer: str, suffix: str = "", added: str | None = None) -> bytes:
    nb = _honest()
    for cell in nb.cells:
        if _meta(cell).get("grade_id") == answer:
            cell.source += suffix
    if added is not None:
        nb.cells.append(nbformat.v4.new_code_cell(added))
    return nbformat.writes(nb).encode()


HONEST = nbformat.writes(_honest()).encode()
LAST, SECOND = "rate_rnn_step", "mask_module"
SUBMISSIONS: dict[str, dict[str, bytes]] = {
    "honest": {NAME: HONEST},
    "bad_json": {NAME: HONEST[: len(HONEST) // 2]},
    "not_a_notebook": {NAME: b'{"hello": "world"}'},
    "nbformat3": {NAME: json.dumps({"nbformat": 3, "nbformat_minor": 0, "metadata": {},
                                    "worksheets": [{"cells": []}]}).encode()},
    "empty": {NAME: b""},
    "not_utf8": {NAME: HONEST.replace(b"torch", b"t\xf6rch", 1)},
    "bad_timestamp": {NAME: HONEST, "timestamp.txt": b"the day before the deadline"},
    "marker_in_comment": {NAME: _edited(LAST, "\n# ### BEGIN HIDDEN TESTS (my own note)")},
    "patches_torch": {NAME: _edited(SECOND, "\n\ntorch.equal = lambda *a, **k: True")},
    "added_cell": {NAME: _edited(LAST, added="import subprocess")},
    "prints_secret": {NAME: _edited(
        LAST, f"\n\nprint({base64.b64encode(FOREIGN_SECRET.encode()).decode()!r})")},
}
# student -> (expected status, expected score or None for "not graded")
EXPECTED = {
    "honest": ("graded", expected_score()),
    "bad_json": ("failed", 0.0),
    "not_a_notebook": ("failed", 0.0),
    "nbformat3": ("failed", 0.0),
    "empty": ("failed", 0.0),
    "not_utf8": ("failed", 0.0),
    "bad_timestamp": ("graded", expected_score()),
    "marker_in_comment": ("graded", expected_score()),
    "patches_torch": ("graded", expected_score(zero_from=SECOND)),
    "added_cell": ("graded", expected_score(everything=True)),
    "prints_secret": ("graded", expected_score()),
}


def course_command(course: Path, env, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "course"), *args], cwd=course, env=env,
                          capture_output=True, text=True, timeout=1500)


@pytest.fixture(scope="module")
def robust_course(tmp_path_factory, tool_env):
    course = copy_course(tmp_path_factory.mktemp("robust") / "course")
    for student, files in SUBMISSIONS.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        for name, content in files.items():
            (folder / name).write_bytes(content)
    graded = course_command(course, tool_env, "autograde", ASSIGNMENT, "--no-progress")
    print(graded.stdout, graded.stderr)  # shown with -s: the run's summary
    return course, graded


def _rows(stdout: str) -> dict[str, str]:
    return {ln.split()[0]: ln for ln in stdout.splitlines() if ln.split()
            and ln.split()[0] in SUBMISSIONS}


@pytest.mark.slow
def test_every_student_gets_one_line_and_the_class_is_graded(robust_course):
    _course, result = robust_course
    assert "Traceback" not in result.stdout + result.stderr
    rows = _rows(result.stdout)
    assert set(rows) == set(SUBMISSIONS), result.stdout
    for student, (status, score) in EXPECTED.items():
        assert rows[student].split()[1] == status, rows[student]
        assert rows[student].split()[2] == f"{score:g}", rows[student]
    assert result.returncode == 1  # some submissions could not be graded
    assert "graded without a submission time" in rows["bad_timestamp"]
    assert "torch.equal" in rows["patches_torch"] and "subprocess" in rows["added_cell"]
    for student in ("bad_json", "not_a_notebook", "nbformat3", "empty", "not_utf8"):
        assert "Flagged" in result.stdout and student in result.stdout.split("Flagged")[1]


@pytest.mark.slow
def test_flagged_parts_have_the_reason_in_the_gradebook(robust_course):
    from nbgrader.api import Gradebook

    course, _ = robust_course
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "patches_torch")
        comments = {c.name: c.auto_comment or "" for c in notebook.comments}
        grades = {g.name: g for g in notebook.grades}
        assert notebook.flagged
        assert "torch.equal" in comments[SECOND] and "manual score" in comments[SECOND]
        for test, answer, _points in _test_points():
            zeroed = answer != "random_sparse_mask"
            assert (grades[test].auto_score == 0) == zeroed, test
            assert grades[test].needs_manual_grade == zeroed, test
        honest = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "honest")
        assert not honest.flagged


@pytest.mark.slow
def test_only_the_notebook_is_copied_back(robust_course):
    course, _ = robust_course
    files = sorted(p.name for p in (course / "autograded" / "honest" / ASSIGNMENT).iterdir())
    assert files == [NAME]
    files = sorted(p.name for p in (course / "autograded" / "bad_timestamp" / ASSIGNMENT)
                   .iterdir())
    assert files == [NAME], "a timestamp that is not a date is not copied"


@pytest.mark.slow
def test_feedback_withholds_a_leaking_page_and_serves_everyone_else(robust_course, tool_env):
    course, _ = robust_course
    result = course_command(course, tool_env, "feedback", ASSIGNMENT)
    print(result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].endswith("missing for 1, see the lines above: prints_secret"), lines
    problems = "\n".join(ln for ln in lines[:-1] if any(
        what in ln for what in ("withheld", "could not generate", "feedback failed")))
    assert "prints_secret" in problems and "withheld" in problems
    graded = [s for s, (status, _) in EXPECTED.items() if status == "graded"]
    for student in graded:
        page = course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html"
        assert page.exists() == (student != "prints_secret"), student
        folder = page.parent
        if folder.exists():
            assert {p.name for p in folder.iterdir()} <= {page.name, "timestamp.txt"}
        if student != "prints_secret":
            assert student not in problems


@pytest.mark.slow
def test_export_lists_every_student(robust_course, tool_env):
    course, _ = robust_course
    result = course_command(course, tool_env, "export", "--to", "grades_out")
    assert result.returncode == 0, result.stderr
    with (course / "grades_out" / "grades.csv").open() as handle:
        totals = {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)
                  if row["assignment"] == ASSIGNMENT}
    assert totals == {student: score for student, (_, score) in EXPECTED.items()}


@pytest.mark.filterwarnings("ignore:.*not in session:Warning")  # nbgrader + SQLAlchemy 2
@pytest.mark.parametrize("forged", [4000.0, -1.0])
def test_a_score_out_of_range_is_never_kept(tmp_path, monkeypatch, forged):
    import os
    import shutil

    from nbgrader.api import Gradebook

    from course_lib.grading.course import Course
    from course_lib.grading.record import out_of_range

    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # alembic
    (tmp_path / "solutions").mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    course = Course.load(tmp_path)
    with Gradebook(course.db_url) as gb:
        gb.add_assignment(ASSIGNMENT)
        gb.add_notebook(ASSIGNMENT, ASSIGNMENT)
        for name in ("forged", "honest"):
            gb.add_grade_cell(name, ASSIGNMENT, ASSIGNMENT, max_score=2, cell_type="code")
        gb.add_student("mallory")
        gb.add_submission(ASSIGNMENT, "mallory")
        for grade in gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "mallory").grades:
            grade.auto_score = forged if grade.name == "forged" else 1.5
        gb.db.commit()
    notes = out_of_range(course, ASSIGNMENT, "mallory")
    assert len(notes) == 1 and "forged" in notes[0] and "recorded as 0" in notes[0]
    with Gradebook(course.db_url) as gb:
        notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, "mallory")
        scores = {g.name: g.auto_score for g in notebook.grades}
        assert scores == {"forged": 0.0, "honest": 1.5} and notebook.flagged

"""Grades to CSV: per assignment (nbgrader's own exporter) and per question.

- ``grades.csv``: nbgrader's ``CsvExportPlugin``, one row per student and assignment
  (a student without a submission gets 0), exactly what ``nbgrader export`` writes;
- ``grades_per_question.csv``: one row per student, assignment, notebook and grade cell
  (each autograded test and each manually graded answer), with the autograder's score,
  the grader's score and extra credit, the resulting score, the maximum, and whether it
  still needs a manual grade. nbgrader's exporter has no per-question view.

One student's broken record (a submission without its notebook, a score that is not a
number) never stops the export: that student's rows are written with what is known, and
one warning line names the student.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from course_lib.grading.course import Course, CourseError

QUESTION_COLUMNS = [
    "assignment", "student_id", "last_name", "first_name", "notebook", "question",
    "kind", "auto_score", "manual_score", "extra_credit", "score", "max_score",
    "needs_manual_grade", "submitted",
]


def _blank(value) -> object:
    return "" if value is None else value


def export(
    course: Course, destination: Path, assignments: list[str] | None, log: logging.Logger
) -> tuple[Path, Path]:
    """Write both CSV files into ``destination`` (a folder); return their paths."""
    from nbgrader.api import Gradebook
    from nbgrader.plugins.export import CsvExportPlugin

    if course.db_path is not None and not course.db_path.exists():
        raise CourseError(f"no gradebook at {course.db_path}: release and autograde first")
    for assignment in assignments or []:
        course.require_assignment(assignment)
    destination.mkdir(parents=True, exist_ok=True)
    per_assignment = destination / "grades.csv"
    per_question = destination / "grades_per_question.csv"
    with Gradebook(course.db_url, course.coursedir().course_id) as gb:
        plugin = CsvExportPlugin(config=course.config, log=log)
        plugin.to = str(per_assignment)
        plugin.assignment = list(assignments or [])
        plugin.export(gb)
        with per_question.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, QUESTION_COLUMNS)
            writer.writeheader()
            for assignment in gb.assignments:
                if assignments and assignment.name not in assignments:
                    continue
                for student in gb.students:
                    for row in _question_rows(gb, assignment, student, log):
                        writer.writerow(row)
    return per_assignment, per_question


def _question_rows(gb, assignment, student, log: logging.Logger) -> list[dict]:
    """The rows of one student for one assignment (see the module docstring)."""
    from nbgrader.api import MissingEntry

    try:
        submission = gb.find_submission(assignment.name, student.id)
    except MissingEntry:
        submission = None
    rows = []
    for notebook in assignment.notebooks:
        grades = {}
        if submission is not None:
            try:
                submitted = gb.find_submission_notebook(
                    notebook.name, assignment.name, student.id
                )
                grades = {g.name: g for g in submitted.grades}
            except Exception as error:  # noqa: BLE001 - one student never stops the export
                log.warning(f"export: {student.id}/{assignment.name}/{notebook.name}: "
                            f"grades unreadable ({type(error).__name__}), written as empty")
        for cell in [*notebook.grade_cells, *notebook.task_cells]:
            grade = grades.get(cell.name)
            kind = "autograded" if cell.cell_type == "code" else "manual"
            if cell in notebook.task_cells:
                kind = "task"
            rows.append({
                "assignment": assignment.name,
                "student_id": student.id,
                "last_name": _blank(student.last_name),
                "first_name": _blank(student.first_name),
                "notebook": notebook.name,
                "question": cell.name,
                "kind": kind,
                "auto_score": _blank(grade.auto_score if grade else None),
                "manual_score": _blank(grade.manual_score if grade else None),
                "extra_credit": _blank(grade.extra_credit if grade else None),
                "score": _score(grade, student, cell, log),
                "max_score": cell.max_score,
                "needs_manual_grade": grade.needs_manual_grade if grade else False,
                "submitted": submission is not None,
            })
    return rows


def _score(grade, student, cell, log: logging.Logger) -> float:
    """The grade's score; a score outside [0, max + extra credit] is reported."""
    if grade is None:
        return 0.0
    score = grade.score
    if not 0 <= score <= cell.max_score + (grade.extra_credit or 0):
        log.warning(f"export: {student.id}/{cell.name}: score {score} outside "
                    f"0..{cell.max_score:g}; check it in the formgrader")
    return score

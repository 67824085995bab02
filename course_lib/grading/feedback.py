"""Feedback HTML without the hidden tests' source.

The autograded notebook holds each test cell as the instructor wrote it, hidden tests
included (nbgrader restores them before running), and ``nbgrader generate_feedback``
renders it as it is: the hidden tests' code is shown to the student, along with the
traceback lines that quote it. `HideHiddenTests` runs inside nbgrader's
GenerateFeedback, after ``GetGrades``: it removes every hidden-test region (with
nbgrader's own ``ClearHiddenTests`` logic) and shortens the traceback of an error raised
in such a cell to its last line, which is the checker's message to the student.

Afterwards every feedback page is searched for any line of the hidden tests; a page
that still shows one is deleted and the command fails.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool, List

from course_lib.grading.course import Course, CourseError
from course_lib.grading.leaks import find_leaks, secret_lines, visible_text
from course_lib.grading.record import last_line

NOTE = "(the code of the hidden tests is not shown)"


class HideHiddenTests(ClearHiddenTests):
    """Remove hidden-test regions from the autograded notebook before it is rendered."""

    enforce_metadata = Bool(False).tag(config=True)
    # configurable, as in nbgrader's GetGrades: the HTML exporter's config sets it
    display_data_priority = List(
        ["text/html", "application/pdf", "text/latex", "image/svg+xml", "image/png",
         "image/jpeg", "text/plain"]
    ).tag(config=True)

    def preprocess_cell(self, cell, resources, cell_index):
        if self._remove_hidden_test_region(cell):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [
                        f"\x1b[0;31m{output.get('ename', 'Error')}\x1b[0m: "
                        f"{output.get('evalue', '')}",
                        NOTE,
                    ]
        return cell, resources


def feedback_config(course: Course):
    """The course's configuration, with HideHiddenTests right after GetGrades."""
    from nbgrader.converters import GenerateFeedback

    config = copy.deepcopy(course.config)
    configured = list(GenerateFeedback(config=config).preprocessors)
    names = [getattr(p, "__name__", str(p)).rsplit(".", 1)[-1] for p in configured]
    position = names.index("GetGrades") + 1 if "GetGrades" in names else 0
    configured.insert(position, HideHiddenTests)
    config.GenerateFeedback.preprocessors = configured
    config.HTMLExporter.template_name = "feedback"
    return config


def generate_feedback(
    course: Course, assignment: str, students: list[str] | None, log: logging.Logger
) -> list[tuple[str, Path]]:
    """Feedback pages of the autograded submissions; [(student, html), ...]."""
    course.require_assignment(assignment)
    autograded = course.folder("autograded")
    graded = sorted(
        p.name for p in autograded.iterdir()
        if course.folder("autograded", p.name, assignment).is_dir()
    ) if autograded.is_dir() else []
    if students:
        missing = [s for s in students if s not in graded]
        if missing:
            raise CourseError(
                f"no autograded {assignment} for {', '.join(missing)}: "
                f"run `course autograde {assignment}` first"
            )
        graded = students
    if not graded:
        raise CourseError(
            f"no autograded submissions of {assignment}: run `course autograde {assignment}` first"
        )
    config = feedback_config(course)
    for student in graded:
        result = course.run_nbgrader(
            "GenerateFeedback", assignment, student, config=config, log=log, force=True
        )
        if not result["success"]:
            raise CourseError(
                f"nbgrader could not generate feedback for {student}: "
                f"{last_line(result.get('error'))}"
            )
    pages = [
        (student, page)
        for student in graded
        for page in sorted(course.folder("feedback", student, assignment).glob("*.html"))
    ]
    leaking = leaks_in_feedback(course, assignment, [p for _, p in pages])
    if leaking:
        for page in leaking:
            page.unlink()
        raise CourseError(
            f"hidden tests found in {len(leaking)} feedback page(s), deleted: "
            + ", ".join(str(p) for p in leaking)
        )
    return pages


def leaks_in_feedback(course: Course, assignment: str, pages: list[Path]) -> list[Path]:
    """The feedback pages that show a line of the hidden tests."""
    leaking = []
    for page in pages:
        source = course.folder("source", ".", assignment) / f"{page.stem}.ipynb"
        release = course.folder("release", ".", assignment) / f"{page.stem}.ipynb"
        if not source.exists():
            continue
        allowed = visible_text(release) if release.exists() else ""
        if find_leaks(visible_text(page), secret_lines(source, hidden_only=True), allowed):
            leaking.append(page)
    return leaking

"""``course check``: is the whole course consistent and gradable?

For every assignment:

- **release fresh**: ``exercises/`` is exactly what nbgrader generates from ``solutions/``
  now (`release.stale_files`);
- **no leaks**: no solution line, hidden-test line, model answer or nbgrader marker in
  the release (`leaks`);
- **solution full marks**: the source notebook, submitted as a student would, gets every
  autograded point, and nothing in it is flagged (by the scan of `scan`, for instance);
- **untouched zero**: the release, submitted unchanged, gets zero everywhere, and its
  grading neither fails nor times out.

Both grading checks also hold for every one of ``variant_ids`` random student ids (50 by
default): each id's hidden cases differ, and no variant may be unfair
(`variants.fairness_problems`; one line per failing id).

The two grading checks run the parallel grader (`autograde`) in a scratch copy of the
course (configuration and source only, with a scratch gradebook), so they exercise the
very path that grades the class, and the course itself is never changed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course_lib.grading.autograde import autograde
from course_lib.grading.course import Course, load_config
from course_lib.grading.leaks import find_leaks, secret_lines, visible_text
from course_lib.grading.limits import Limits
from course_lib.grading.record import gradebook
from course_lib.grading.release import stale_files
from course_lib.grading.variants import DEFAULT_IDS, fairness_problems

CHECKS = ("release fresh", "no leaks", "solution full marks", "untouched zero")
SOLUTION, UNTOUCHED = "solution", "untouched"


@dataclass
class Finding:
    assignment: str
    check: str
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def leaks_in_release(course: Course, assignment: str) -> list[str]:
    problems = []
    for source in sorted(course.folder("source", ".", assignment).glob("*.ipynb")):
        release = course.folder("release", ".", assignment) / source.name
        if not release.exists():
            continue  # reported by the freshness check
        for line in find_leaks(visible_text(release), secret_lines(source)):
            problems.append(f"{release.name}: {line[:60]}")
    return problems


def _scratch_course(course: Course, scratch: Path, assignments: list[str]) -> Course:
    """Configuration and source of the course; submissions: each source notebook (as
    SOLUTION) and each committed release notebook (as UNTOUCHED)."""
    root = scratch / "course"
    root.mkdir()
    shutil.copy2(course.root / "nbgrader_config.py", root / "nbgrader_config.py")
    config = load_config(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'gradebook.db'}"
    copy = Course(root, config)
    for assignment in assignments:
        source = course.folder("source", ".", assignment)
        shutil.copytree(source, copy.folder("source", ".", assignment))
        release = course.folder("release", ".", assignment)
        for student, origin in ((SOLUTION, source), (UNTOUCHED, release)):
            target = copy.folder("submitted", student, assignment)
            target.mkdir(parents=True, exist_ok=True)
            for notebook in sorted(origin.glob("*.ipynb")):
                shutil.copy2(notebook, target / notebook.name)
    return copy


def _grading_problems(copy: Course, assignment: str, outcomes) -> dict[str, list[str]]:
    problems = {SOLUTION: [], UNTOUCHED: []}
    for outcome in outcomes:
        if outcome.status != "graded":
            problems[outcome.student].append(f"grading failed: {outcome.reason}")
        elif outcome.notes:  # e.g. the scan flags what the solution itself does
            problems[outcome.student] += [f"flagged: {note}" for note in outcome.notes]
    with gradebook(copy) as gb:
        for student in (SOLUTION, UNTOUCHED):
            if problems[student]:
                continue
            for submitted in gb.find_submission(assignment, student).notebooks:
                for grade in submitted.grades:
                    auto = grade.auto_score or 0.0
                    if student == SOLUTION and grade.cell.cell_type == "code":
                        if auto != grade.max_score:
                            problems[student].append(
                                f"{submitted.name}/{grade.name}: {auto:g} of {grade.max_score:g}"
                            )
                    if student == UNTOUCHED and auto != 0:
                        problems[student].append(f"{submitted.name}/{grade.name}: {auto:g}")
    for notebook in copy.folder("autograded", UNTOUCHED, assignment).glob("*.ipynb"):
        if "CellTimeoutError" in notebook.read_text():
            problems[UNTOUCHED].append(f"{notebook.name}: a cell timed out")
    return problems


def check_course(
    course: Course,
    assignments: list[str],
    limits: Limits,
    log: logging.Logger,
    on_step=None,
    variant_ids: int = DEFAULT_IDS,
) -> list[Finding]:
    findings = []
    with tempfile.TemporaryDirectory(prefix="course-check-") as scratch:
        copy = _scratch_course(course, Path(scratch), assignments)
        for assignment in assignments:
            findings.append(Finding(assignment, CHECKS[0], stale_files(course, assignment, log)))
            findings.append(Finding(assignment, CHECKS[1], leaks_in_release(course, assignment)))
            outcomes, _ = autograde(copy, assignment, limits, force=True, log=log)
            problems = _grading_problems(copy, assignment, outcomes)
            if variant_ids and not problems[SOLUTION] and not problems[UNTOUCHED]:
                fair = fairness_problems(course, assignment, variant_ids, limits.sandbox)
                problems[SOLUTION] += fair["solution"]
                problems[UNTOUCHED] += fair["untouched"]
            findings.append(Finding(assignment, CHECKS[2], problems[SOLUTION]))
            findings.append(Finding(assignment, CHECKS[3], problems[UNTOUCHED]))
            if on_step:
                on_step(assignment)
    return findings

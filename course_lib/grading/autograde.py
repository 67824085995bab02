"""``course autograde``: every submission of an assignment, in parallel, safely.

Steps, for one assignment:

1. find ``submitted/<student>/<assignment>/`` folders (optionally only some students;
   without ``force``, those already autograded and not resubmitted since are skipped,
   as nbgrader does);
2. make sure the gradebook knows the assignment (else record it from ``source``);
3. pre-check each submission without running it: a notebook that is not valid JSON, or
   a notebook saved under another name, cannot be graded; it is recorded as zero and
   flagged with a message that says how to fix it. Answer cells that use ``course_lib``
   are noted and the submission is flagged for a human to look at;
4. grade the others in parallel (`runner`), each under the limits of `limits`;
5. merge each result into the real course as it arrives (`record`): the autograded
   notebooks are copied to ``autograded/<student>/<assignment>/`` and the grades are
   recorded by nbgrader's own preprocessors; a submission that could not be graded gets
   zero and a flag. The grading log of every student is kept next to it, in
   ``autograded/<student>/<assignment>.log``.

The result is the gradebook that sequential ``nbgrader autograde`` would give for every
submission nbgrader can grade (the test suite checks this grade cell by grade cell).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading.course import Course, CourseError, quiet_logger
from course_lib.grading.limits import Limits
from course_lib.grading.record import (
    ensure_recorded,
    flag,
    record_failed,
    record_graded,
    recorded_notebooks,
    remove_tree,
    replace_tree,
    scores,
    split_preprocessors,
    template_gradebook,
)
from course_lib.grading.reference_guard import scan_notebook
from course_lib.grading.runner import Job, JobResult, run_jobs


@dataclass
class Outcome:
    """What happened to one submission."""

    assignment: str
    student: str
    status: str  # "graded", "failed" or "skipped"
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> bool:
        return self.status == "failed" or bool(self.notes)


def precheck(folder: Path, expected: list[str]) -> tuple[str, list[str]]:
    """(reason it cannot be graded or "", notes) for a submitted folder, without running it."""
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    names = [f"{name}.ipynb" for name in expected]
    found = [n for n in names if n in present]
    if not found:
        others = ", ".join(repr(n) for n in present) or "no notebook at all"
        return (
            f"renamed or missing notebook: expected {', '.join(names)}, found {others}; "
            "rename it in the submitted folder and regrade with --student",
            [],
        )
    notes = []
    for name in found:
        try:
            json.loads((folder / name).read_bytes())
        except ValueError as error:
            return f"{name} is not a valid notebook (not JSON: {error})", []
        notes += [f"{name}: {note}" for note in scan_notebook(folder / name)]
    return "", notes


def _needs_grading(course: Course, assignment: str, student: str) -> bool:
    """nbgrader's rule without --force: grade if never graded or resubmitted since."""
    graded = course.folder("autograded", student, assignment)
    if not graded.is_dir():
        return True
    coursedir = course.coursedir()
    new = coursedir.get_existing_timestamp(str(course.folder("submitted", student, assignment)))
    old = coursedir.get_existing_timestamp(str(graded))
    return new is not None and old is not None and new > old


class _GradebookWatch:
    """Notices a gradebook file changed by someone other than this command while grading
    (a submission writing it by absolute path, or another nbgrader process)."""

    def __init__(self, path: Path | None):
        self.path = path
        self.digest = self._digest()
        self.changed = False

    def _digest(self) -> str | None:
        if self.path is None or not self.path.exists():
            return None
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    def before_write(self) -> None:
        if self._digest() != self.digest:
            self.changed = True

    def after_write(self) -> None:
        self.digest = self._digest()


def autograde(
    course: Course,
    assignment: str,
    limits: Limits,
    students: list[str] | None = None,
    force: bool = False,
    progress: Callable[[Outcome], None] | None = None,
    log: logging.Logger | None = None,
    announce_total: Callable[[int], None] | None = None,
) -> tuple[list[Outcome], bool]:
    """Grade the submissions; return the outcomes and whether the gradebook was changed
    behind the grader's back."""
    log = log or quiet_logger()
    course.require_assignment(assignment)
    submissions = course.submissions(assignment)
    if not submissions:
        where = course.folder("submitted", "<student>", assignment)
        raise CourseError(f"no submissions of {assignment}: expected folders like {where}")
    if students:
        unknown = [s for s in students if s not in submissions]
        if unknown:
            raise CourseError(
                f"no submission of {assignment} from {', '.join(unknown)} under "
                f"{course.folder('submitted')}"
            )
        submissions = {s: submissions[s] for s in students}

    ensure_recorded(course, assignment, log)
    expected = recorded_notebooks(course, assignment)
    _, recorders = split_preprocessors(course.config)
    watch = _GradebookWatch(course.db_path)
    outcomes: list[Outcome] = []
    jobs: list[Job] = []

    def finish(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if progress:
            progress(outcome)

    def note_log(student: str, text: str) -> None:
        path = course.folder("autograded", student, assignment)
        path = path.with_name(path.name + ".log")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    if announce_total:
        announce_total(len(submissions))
    notes_of: dict[str, list[str]] = {}
    for student, folder in submissions.items():
        if not force and not _needs_grading(course, assignment, student):
            finish(Outcome(assignment, student, "skipped", reason="already graded (--force)"))
            continue
        reason, notes = precheck(folder, expected)
        if reason:
            watch.before_write()
            record_failed(course, assignment, student)
            watch.after_write()
            note_log(student, f"not graded: {reason}\n")
            finish(Outcome(assignment, student, "failed", 0.0, _max(course, assignment, student),
                           reason=reason, notes=notes))
        else:
            jobs.append(Job(assignment, student, folder))
            notes_of[student] = notes

    def on_result(result: JobResult) -> None:
        student = result.job.student
        notes = notes_of[student]
        watch.before_write()
        if result.ok:
            replace_tree(result.autograded, course.folder("autograded", student, assignment))
            record_graded(course, assignment, student, recorders, log)
            if notes:
                flag(course, assignment, student)
            status = "graded"
        else:
            record_failed(course, assignment, student)
            status = "failed"
        watch.after_write()
        note_log(student, result.log)
        score, maximum = scores(course, assignment, student)
        finish(Outcome(assignment, student, status, score, maximum, result.seconds,
                       result.reason, notes))

    # Largest submissions first: a notebook that was run and answered takes longer to
    # grade than an untouched one, and starting long jobs first keeps the last worker
    # from finishing alone (longest-processing-time-first scheduling).
    jobs.sort(key=lambda job: -_size(job.submission))
    if jobs:
        with tempfile.TemporaryDirectory(prefix="course-grading-") as scratch:
            scratch = Path(scratch)
            template = template_gradebook(course, scratch / "template" / "gradebook.db")
            try:
                run_jobs(course, jobs, limits, template, scratch, on_result)
            finally:
                for leftover in scratch.iterdir():
                    remove_tree(leftover)
    outcomes.sort(key=lambda o: o.student)
    return outcomes, watch.changed


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _max(course: Course, assignment: str, student: str) -> float:
    return scores(course, assignment, student)[1]

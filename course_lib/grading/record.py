"""Merging one submission's results into the course gradebook, with nbgrader's own code.

``nbgrader autograde`` does two things for a submission: it *executes* the sanitised
notebook (in the student's kernel) and it *records* the grades (``SaveAutoGrades`` and
``AssignLatePenalties``, two preprocessors that only read the executed notebook and
write the gradebook). The parallel grader splits them:

- the worker runs nbgrader's Autograde with the recording preprocessors removed, in a
  private course directory with a private copy of the gradebook;
- the parent then runs exactly those removed preprocessors, with the course's own
  configuration, on the autograded notebook against the real gradebook, one submission
  at a time.

The end state is what sequential ``nbgrader autograde`` gives (the test suite compares
every grade cell), and the student's code never runs while the real gradebook is open,
nor can it change what is recorded by tampering with its private gradebook.

What is recorded comes from trusted data only:

- the parent records only after the runner reported that nbgrader finished (a grading
  process that died means "not graded, flagged"), and copies back only the expected
  notebook files (`copy_graded`), nothing else the kernel wrote;
- a test cell passes or fails: nbgrader's partial credit (a test cell's first
  ``execute_result``, which an answer cell can fake with a display hook) is switched
  off by dropping the ``execute_result`` outputs of the test cells before recording
  (`without_partial_credit`);
- a score outside ``[0, max]`` is never kept (`out_of_range`): it is recorded as zero,
  flagged, with a comment;
- grade cells of a part the scan flagged (`scan`) are recorded as zero, flagged, with the
  reason in the answer cell's comment (`zero_flagged`); the instructor can give a manual
  score in the formgrader.
"""

from __future__ import annotations

import copy
import logging
import shutil
import sqlite3
import tempfile
from pathlib import Path

import nbformat
from traitlets.config import Config

from course_lib.grading.course import Course, CourseError

RECORDING = ("SaveAutoGrades", "AssignLatePenalties")


def _name(preprocessor) -> str:
    if isinstance(preprocessor, str):
        return preprocessor.rsplit(".", 1)[-1]
    if isinstance(preprocessor, type):
        return preprocessor.__name__
    return type(preprocessor).__name__


def _resolve(preprocessor):
    if isinstance(preprocessor, str):
        module, name = preprocessor.rsplit(".", 1)
        return getattr(__import__(module, fromlist=[name]), name)
    return preprocessor


def split_preprocessors(config: Config) -> tuple[list, list]:
    """(execution preprocessors for the worker, recording preprocessors for the parent).

    Starts from the course's configured ``Autograde.autograde_preprocessors`` (or
    nbgrader's default list) and moves every recording step to the parent, in order.
    """
    from nbgrader.converters.autograde import Autograde

    configured = list(Autograde(config=config).autograde_preprocessors)
    execute = [p for p in configured if _name(p) not in RECORDING]
    record = [_resolve(p) for p in configured if _name(p) in RECORDING]
    return execute, record


# ------------------------------------------------------------------ the gradebook


def gradebook(course: Course):
    from nbgrader.api import Gradebook

    return Gradebook(course.db_url, course.coursedir().course_id)


def is_recorded(course: Course, assignment: str) -> bool:
    """Whether the gradebook knows the assignment and every one of its notebooks."""
    from nbgrader.api import MissingEntry

    with gradebook(course) as gb:
        try:
            recorded = {nb.name for nb in gb.find_assignment(assignment).notebooks}
        except MissingEntry:
            return False
    return set(course.source_notebooks(assignment)) <= recorded


def recorded_notebooks(course: Course, assignment: str) -> list[str]:
    """The assignment's notebook names, as the gradebook records them."""
    with gradebook(course) as gb:
        return sorted(nb.name for nb in gb.find_assignment(assignment).notebooks)


def ensure_recorded(course: Course, assignment: str, log: logging.Logger) -> bool:
    """Record the assignment in the gradebook if it is not there yet (cells, checksums,
    hidden tests), as ``nbgrader generate_assignment`` does, but without touching the
    committed release: the student version is written to a scratch folder.

    Returns True if it had to be recorded now.
    """
    if course.db_path is not None and course.db_path.exists() and is_recorded(course, assignment):
        return False
    with tempfile.TemporaryDirectory(prefix="course-release-") as scratch:
        config = copy.deepcopy(course.config)
        config.CourseDirectory.release_directory = scratch
        result = course.run_nbgrader(
            "GenerateAssignment", assignment, config=config, log=log,
            force=True, create_assignment=True,
        )
    if not result["success"]:
        raise CourseError(
            f"could not record {assignment} in the gradebook: {last_line(result.get('error'))}"
        )
    return True


def template_gradebook(course: Course, destination: Path) -> Path:
    """A copy of the gradebook with the assignments but without any student.

    Each submission is graded against its own copy of this file: it has the cells and
    checksums nbgrader needs, and no other student's names or grades (the student's
    code can read whatever is in its private course directory).
    """
    from nbgrader.api import Gradebook

    destination.parent.mkdir(parents=True, exist_ok=True)
    source = sqlite3.connect(f"{course.db_path.as_uri()}?mode=ro", uri=True)
    target = sqlite3.connect(destination)
    with target:
        source.backup(target)
    source.close()
    target.close()
    with Gradebook(f"sqlite:///{destination}") as gb:
        for student in [s.id for s in gb.students]:
            gb.remove_student(student)
    target = sqlite3.connect(destination)
    target.execute("VACUUM")  # deleted rows would otherwise stay readable in free pages
    target.close()
    return destination


def timestamp_of(course: Course, folder: Path):
    """The submission time in ``folder/timestamp.txt``, or None if absent, empty or not a
    date (nbgrader's own reader raises on the latter)."""
    try:
        return course.coursedir().get_existing_timestamp(str(folder))
    except (Exception, SystemExit):  # noqa: BLE001 - nbgrader's fail() raises either
        return None


def _open_submission(gb, course: Course, assignment: str, student: str) -> None:
    """What nbgrader's Autograde.init_assignment records before grading."""
    gb.update_or_create_student(student)
    timestamp = timestamp_of(course, course.folder("submitted", student, assignment))
    if timestamp:
        gb.update_or_create_submission(assignment, student, timestamp=timestamp)
    else:
        gb.update_or_create_submission(assignment, student)


def _zero(gb, assignment: str, student: str, notebooks) -> None:
    """nbgrader's rule for a notebook that was not submitted: every grade is 0."""
    for name in notebooks:
        submitted = gb.find_submission_notebook(name, assignment, student)
        for grade in submitted.grades:
            grade.auto_score = 0
            grade.needs_manual_grade = False
    gb.db.commit()


def without_partial_credit(nb) -> int:
    """Drop the ``execute_result`` outputs of the test cells (grade cells that are not
    answers), so that nbgrader scores each test cell pass or fail. Returns how many."""
    dropped = 0
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
            continue
        kept = [o for o in cell.get("outputs", []) if o.get("output_type") != "execute_result"]
        dropped += len(cell.get("outputs", [])) - len(kept)
        cell["outputs"] = kept
    return dropped


def record_graded(
    course: Course, assignment: str, student: str, recorders: list, log: logging.Logger
) -> list[str]:
    """Record the grades of ``autograded/<student>/<assignment>/*.ipynb``; return notes
    for the instructor (scores out of range, set to zero)."""
    folder = course.folder("autograded", student, assignment)
    graded = {p.stem: p for p in sorted(folder.glob("*.ipynb"))}
    with gradebook(course) as gb:
        _open_submission(gb, course, assignment, student)
        expected = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        _zero(gb, assignment, student, [n for n in expected if n not in graded])
    for name, path in graded.items():
        if name not in expected:
            continue  # nbgrader skips notebooks it does not know
        nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
        without_partial_credit(nb)
        resources = {
            "nbgrader": {
                "notebook": name,
                "assignment": assignment,
                "student": student,
                "db_url": course.db_url,
            }
        }
        for recorder in recorders:
            nb, resources = recorder(config=course.config, log=log)(nb, resources)
    return out_of_range(course, assignment, student)


def out_of_range(course: Course, assignment: str, student: str) -> list[str]:
    """Set every automatic score outside [0, max] (or not a number) to zero, with a
    comment and a flag; return one note per such score."""
    notes = []
    with gradebook(course) as gb:
        for submitted in gb.find_submission(assignment, student).notebooks:
            for grade in submitted.grades:
                score = grade.auto_score
                if score is None or 0 <= score <= grade.max_score:
                    continue
                notes.append(f"{submitted.name}/{grade.name}: score {score} outside "
                             f"0..{grade.max_score:g}, recorded as 0")
                grade.auto_score = 0
                grade.needs_manual_grade = True
                submitted.flagged = True
        gb.db.commit()
    return notes


def zero_flagged(
    course: Course, assignment: str, student: str, notebook: str,
    zeroed: dict[str, str], comments: dict[str, str],
) -> None:
    """Record zero for the grade cells in ``zeroed`` (grade_id -> reason), marked for a
    manual grade; write ``comments`` (answer grade_id -> text) as the answer cells'
    automatic comments; flag the notebook."""
    from nbgrader.api import MissingEntry

    with gradebook(course) as gb:
        submitted = gb.find_submission_notebook(notebook, assignment, student)
        for grade in submitted.grades:
            if grade.name in zeroed:
                grade.auto_score = 0
                grade.needs_manual_grade = True
        for cell, text in comments.items():
            try:
                comment = gb.find_comment(cell, notebook, assignment, student)
            except MissingEntry:
                continue
            comment.auto_comment = text
        submitted.flagged = True
        gb.db.commit()


def record_failed(course: Course, assignment: str, student: str) -> None:
    """A submission that could not be graded: every grade 0, every notebook flagged, and
    no autograded copy (as nbgrader leaves it after a failure)."""
    folder = course.folder("autograded", student, assignment)
    if folder.exists():
        remove_tree(folder)
    with gradebook(course) as gb:
        _open_submission(gb, course, assignment, student)
        expected = [nb.name for nb in gb.find_assignment(assignment).notebooks]
        _zero(gb, assignment, student, expected)
    flag(course, assignment, student)


def flag(course: Course, assignment: str, student: str) -> None:
    """Flag every notebook of the submission for the instructor (shown in the formgrader).
    Flags are only ever set here, never cleared: an instructor's own flag survives."""
    with gradebook(course) as gb:
        for submitted in gb.find_submission(assignment, student).notebooks:
            submitted.flagged = True
        gb.db.commit()


def scores(course: Course, assignment: str, student: str) -> tuple[float, float]:
    with gradebook(course) as gb:
        submission = gb.find_submission(assignment, student)
        return submission.score, submission.max_score


# ------------------------------------------------------------------ files


def remove_tree(path: Path) -> None:
    """rmtree that also removes read-only files and folders (nbgrader writes 444)."""

    def make_writable_and_retry(function, name, _):
        try:
            Path(name).parent.chmod(0o700)
            Path(name).chmod(0o700)
        except OSError:
            pass
        function(name)

    shutil.rmtree(path, onerror=make_writable_and_retry)


def copy_graded(
    private: Path, destination: Path, notebooks: list[str], timestamp: Path | None
) -> None:
    """Fill ``destination`` with the expected notebooks of the private autograded folder
    (regular files only) and the submission's own ``timestamp.txt``: nothing else the
    kernel wrote reaches the course."""
    if destination.exists():
        remove_tree(destination)
    destination.mkdir(parents=True)
    for name in notebooks:
        notebook = private / f"{name}.ipynb"
        if notebook.is_file() and not notebook.is_symlink():
            shutil.copyfile(notebook, destination / notebook.name)
    if timestamp is not None and timestamp.is_file() and not timestamp.is_symlink():
        shutil.copyfile(timestamp, destination / timestamp.name)


def last_line(text: str | None) -> str:
    lines = [ln.strip() for ln in (text or "").strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "unknown error"

"""``course autograde``: every submission of an assignment, in parallel, safely.

Steps, for one assignment:

1. find ``submitted/<student>/<assignment>/`` folders (optionally only some students;
   without ``force``, those already autograded and not resubmitted since are skipped,
   as nbgrader does);
2. make sure the gradebook knows the assignment (else record it from ``source``);
3. pre-check each submission without running it (`precheck`): a notebook that is
   empty, not UTF-8, not JSON, not a notebook, not nbformat 4, or saved under another
   name cannot be graded; it is recorded as zero and flagged with one line that says
   why. The answer cells and every cell the student added are scanned (`scan`);
4. grade the others in parallel (`runner`, or on a Dask cluster: `cluster`), each under
   the limits of `limits`;
5. merge each result into the real course as it arrives (`record`): the expected
   notebooks (only they) are copied to ``autograded/<student>/<assignment>/`` and the
   grades are recorded by nbgrader's own preprocessors, test cells pass or fail (no
   partial credit), scores out of range are zeroed, and the parts the scan flagged score
   zero with the reason in the answer cell's comment; a submission that could not be
   graded gets zero and a flag. The grading log of every student is kept next to it, in
   ``autograded/<student>/<assignment>.log``.

Whatever goes wrong with one submission (including an error in this program while
handling it) becomes one line about that student; the others are graded. Apart from
the scan's zeros, the result is the gradebook that sequential ``nbgrader autograde``
would give for every submission nbgrader can grade (the test suite checks this grade
cell by grade cell).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading.course import Course, CourseError, quiet_logger
from course_lib.grading.limits import Limits
from course_lib.grading.record import (
    copy_graded,
    ensure_recorded,
    flag,
    record_failed,
    record_graded,
    recorded_notebooks,
    remove_tree,
    scores,
    split_preprocessors,
    template_gradebook,
    timestamp_of,
    zero_flagged,
)
from course_lib.grading.runner import Job, JobResult, run_jobs
from course_lib.grading.scan import Flag, answer_cell_of, scan_notebook, zeroed_cells


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


@dataclass
class Precheck:
    """What reading a submitted folder, without running it, says."""

    reason: str = ""  # why it cannot be graded, or ""
    flags: dict[str, list[Flag]] = field(default_factory=dict)  # notebook -> scan flags
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """One note per flagged cell: its first reason, and how many more."""
        lines = []
        for notebook, flags in self.flags.items():
            by_cell: dict[str, list[Flag]] = {}
            for found in flags:
                by_cell.setdefault(found.cell, []).append(found)
            for found in by_cell.values():
                more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
                scope = ("every part zero" if found[0].whole_notebook
                         else "zero from this part on")
                lines.append(f"{notebook}: {found[0]}{more} [{scope}]")
        return self.notes + lines


def read_notebook(path: Path) -> tuple[dict | None, str]:
    """(the notebook as JSON, "") or (None, one line saying why it cannot be graded)."""
    import nbformat

    name = path.name
    data = path.read_bytes()
    if not data.strip():
        return None, f"{name} is empty"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return None, f"{name} is not UTF-8 text (byte {error.start}): not a saved notebook"
    try:
        nb = json.loads(text)
    except ValueError as error:
        return None, f"{name} is not a valid notebook (not JSON: {error})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells", nb.get("worksheets")), list):
        return None, f"{name} is JSON but not a notebook (no list of cells)"
    if nb.get("nbformat") != 4:
        return None, (f"{name} is in notebook format {nb.get('nbformat')!r}, not 4: open it "
                      "in Jupyter, save it, and regrade with --student")
    try:
        with warnings.catch_warnings():  # nbformat's notes on ids it would repair
            warnings.simplefilter("ignore")
            nbformat.validate(nbformat.from_dict(copy.deepcopy(nb)))
    except Exception as error:  # noqa: BLE001 - nbformat raises several kinds
        return None, f"{name} is not a valid notebook: {str(error).splitlines()[0][:200]}"
    return nb, ""


def precheck(folder: Path, expected: list[str], source: Path | None = None) -> Precheck:
    """Read a submitted folder without running it; ``source`` is the assignment's source
    folder (for the scan; no scan without it)."""
    present = sorted(p.name for p in folder.glob("*.ipynb"))
    names = [f"{name}.ipynb" for name in expected]
    found = [n for n in names if n in present]
    if not found:
        others = ", ".join(repr(n) for n in present) or "no notebook at all"
        return Precheck(
            f"renamed or missing notebook: expected {', '.join(names)}, found {others}; "
            "rename it in the submitted folder and regrade with --student"
        )
    result = Precheck()
    for name in found:
        nb, reason = read_notebook(folder / name)
        if reason:
            return Precheck(reason)
        if source is not None and (source / name).is_file():
            flags = scan_notebook(nb, source / name)
            if flags:
                result.flags[name] = flags
    if (folder / "timestamp.txt").is_file() and _bad_timestamp(folder):
        result.notes.append("timestamp.txt is not a date: graded without a submission time")
    return result


def _bad_timestamp(folder: Path) -> bool:
    from nbgrader.utils import parse_utc

    text = (folder / "timestamp.txt").read_text(errors="replace").strip()
    try:
        return bool(text) and parse_utc(text) is None
    except Exception:  # noqa: BLE001 - dateutil raises several kinds
        return True


def _needs_grading(course: Course, assignment: str, student: str) -> bool:
    """nbgrader's rule without --force: grade if never graded or resubmitted since."""
    graded = course.folder("autograded", student, assignment)
    if not graded.is_dir():
        return True
    new = timestamp_of(course, course.folder("submitted", student, assignment))
    old = timestamp_of(course, graded)
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
    runner: Callable[..., None] | None = None,
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
    source = course.folder("source", ".", assignment)
    _, recorders = split_preprocessors(course.config)
    watch = _GradebookWatch(course.db_path)
    outcomes: list[Outcome] = []
    jobs: list[Job] = []
    checked: dict[str, Precheck] = {}

    def finish(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if progress:
            progress(outcome)

    def note_log(student: str, text: str) -> None:
        path = course.folder("autograded", student, assignment)
        path = path.with_name(path.name + ".log")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def fail(student: str, reason: str, notes: list[str], log_text: str = "",
             seconds: float = 0.0) -> None:
        """Zero and a flag for a submission that could not be graded; never raises."""
        try:
            watch.before_write()
            record_failed(course, assignment, student)
            watch.after_write()
            # the reason first: `report` lists it for the submissions to look at
            note_log(student, f"not graded: {reason}\n" + log_text)
            maximum = _max(course, assignment, student)
        except Exception as error:  # noqa: BLE001 - one student never stops the class
            reason += f" (and it could not be recorded as zero: {_one_line(error)})"
            maximum = 0.0
        finish(Outcome(assignment, student, "failed", 0.0, maximum, seconds, reason, notes))

    def on_result(result: JobResult) -> None:
        student = result.job.student
        check = checked[student]
        if not result.ok:
            fail(student, result.reason, check.summary(), result.log, result.seconds)
            return
        try:
            # a graded run can still carry a warning (the memory limit stopped a process)
            warning = [result.reason] if result.reason else []
            notes = warning + check.summary() + _record(
                course, assignment, student, result, expected, source, check, recorders,
                log, watch)
            note_log(student, result.log)
            score, maximum = scores(course, assignment, student)
        except Exception as error:  # noqa: BLE001 - one student never stops the class
            reason = f"grades could not be recorded: {_one_line(error)}"
            fail(student, reason, check.summary(), result.log, result.seconds)
            return
        finish(Outcome(assignment, student, "graded", score, maximum, result.seconds,
                       "", notes))

    if announce_total:
        announce_total(len(submissions))
    with tempfile.TemporaryDirectory(prefix="course-grading-") as scratch:
        scratch = Path(scratch)
        for student, folder in submissions.items():
            try:
                if not force and not _needs_grading(course, assignment, student):
                    finish(Outcome(assignment, student, "skipped",
                                   reason="already graded (--force)"))
                    continue
                check = precheck(folder, expected, source)
            except Exception as error:  # noqa: BLE001 - one student never stops the class
                check = Precheck(f"could not be read: {_one_line(error)}")
            if check.reason:
                fail(student, check.reason, check.summary())
                continue
            checked[student] = check
            jobs.append(Job(assignment, student, _gradable_copy(folder, scratch, student)))

        # Largest submissions first: a notebook that was run and answered takes longer to
        # grade than an untouched one, and starting long jobs first keeps the last worker
        # from finishing alone (longest-processing-time-first scheduling).
        jobs.sort(key=lambda job: -_size(job.submission))
        if jobs:
            template = template_gradebook(course, scratch / "template" / "gradebook.db")
            try:
                # the local runner, or `cluster.ClusterRunner` (the same call, on Dask)
                (runner or run_jobs)(course, jobs, limits, template, scratch, on_result)
            finally:
                for leftover in scratch.iterdir():
                    remove_tree(leftover)
    outcomes.sort(key=lambda o: o.student)
    return outcomes, watch.changed


def _record(course: Course, assignment: str, student: str, result: JobResult,
            expected: list[str], source: Path, check: Precheck, recorders: list,
            log: logging.Logger, watch: _GradebookWatch) -> list[str]:
    """Copy back the graded notebooks and record their grades; return notes."""
    submitted = course.folder("submitted", student, assignment)
    valid = timestamp_of(course, submitted) is not None
    copy_graded(result.autograded, course.folder("autograded", student, assignment),
                expected, submitted / "timestamp.txt" if valid else None)
    watch.before_write()
    try:
        notes = record_graded(course, assignment, student, recorders, log)
        for notebook, flags in check.flags.items():
            _zero_flagged_parts(course, assignment, student, source / notebook, flags)
        if check.flags or check.notes:
            flag(course, assignment, student)
    finally:
        watch.after_write()
    return notes


def _zero_flagged_parts(course: Course, assignment: str, student: str, source: Path,
                        flags: list[Flag]) -> None:
    """Zero the grade cells of the parts the scan flagged; the reason goes to the
    comment of each affected part's answer cell."""
    zeroed = zeroed_cells(source, flags)
    comments: dict[str, list[str]] = {}
    for grade_cell, found in zeroed.items():
        answer = answer_cell_of(source, grade_cell)
        if answer is not None:
            text = (f"Scored zero by the grader's scan: {found} (see the module "
                    "course_lib.grading.scan). An instructor may give a manual score.")
            if text not in comments.setdefault(answer, []):
                comments[answer].append(text)
    zero_flagged(course, assignment, student, source.stem,
                 {cell: str(found) for cell, found in zeroed.items()},
                 {cell: " ".join(texts) for cell, texts in comments.items()})


def _gradable_copy(folder: Path, scratch: Path, student: str) -> Path:
    """The submitted folder, or a copy without its ``timestamp.txt`` when that is not a
    date (nbgrader's autograde stops on it; the submission is graded without a time)."""
    if not (folder / "timestamp.txt").is_file() or not _bad_timestamp(folder):
        return folder
    copy = scratch / "without-timestamp" / student
    shutil.copytree(folder, copy, symlinks=True, ignore=shutil.ignore_patterns("timestamp.txt"))
    return copy


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0][:200] if text else ''}"


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _max(course: Course, assignment: str, student: str) -> float:
    return scores(course, assignment, student)[1]

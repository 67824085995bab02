"""Feedback HTML without the hidden tests' source.

The autograded notebook holds each test cell as the instructor wrote it, hidden tests
included (nbgrader restores them before running), and ``nbgrader generate_feedback``
renders it as it is: the hidden tests' code is shown to the student, along with the
traceback lines that quote it. `HideHiddenTests` runs inside nbgrader's
GenerateFeedback, after ``GetGrades``: it removes every hidden-test region (with
nbgrader's own ``ClearHiddenTests`` logic) and shortens the traceback of an error raised
in such a cell to its last line, which is the checker's message to the student.

Then every page is checked before a student can see it (`leaking_lines`): as text and
after undoing common encodings of long outputs (`leaks.decoded_views`), for any solution
line, model answer or hidden-test line of **every** assignment, and for the distinctive
lines of the other students' submissions. The student's own submitted code and the
releases are allowed. A page that fails is deleted (withheld) and named to the
instructor; the feedback folder keeps the graded notebook's page only.

One student's problem (nbgrader failing on the notebook, a withheld page) never stops
the others: every student is handled, then the problems are reported together.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool, List

from course_lib.grading.course import Course, CourseError
from course_lib.grading.leaks import (
    MARKERS,
    code_and_answers,
    decoded_views,
    secret_lines,
    visible_text,
)
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
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution"):
            return cell, resources  # markers typed into an answer are the student's text
        try:
            removed = self._remove_hidden_test_region(cell)
        except RuntimeError:  # unbalanced markers
            if meta.get("grade"):
                raise  # a test cell as the instructor wrote it: a real problem
            return cell, resources  # in a cell of the student's own: their text
        if removed:
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


@dataclass
class FeedbackRun:
    """The pages written, and one line per student whose page is missing."""

    pages: list[tuple[str, Path]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


# Shorter lines of other students are too common to tell whose they are.
DISTINCTIVE_LENGTH = 20


@dataclass
class Secrets:
    """What no feedback page may show: the secret lines of every assignment, and each
    student's distinctive submitted lines (secret from the other students)."""

    lines: set[str]
    public: set[str]  # lines of the releases
    by_student: dict[str, set[str]]

    @classmethod
    def of(cls, course: Course, assignment: str) -> Secrets:
        public: set[str] = set()
        lines: set[str] = set()
        for name in course.assignments():
            for source in sorted(course.folder("source", ".", name).glob("*.ipynb")):
                release = course.folder("release", ".", name) / source.name
                if release.exists():
                    public |= {ln.strip() for ln in visible_text(release).splitlines()}
                lines |= secret_lines(source)
        by_student = {
            student: set().union(*[set(code_and_answers(p)) for p in folder.glob("*.ipynb")])
            for student, folder in course.submissions(assignment).items()
        }
        return cls(lines - public, public, by_student)

    def found_in(self, page: Path, student: str) -> list[str]:
        """What of the secrets the page shows (plain or decoded); the student's own
        submitted lines are allowed."""
        own = self.by_student.get(student, set())
        others = set().union(*[v for k, v in self.by_student.items() if k != student])
        forbidden = {ln: "a solution or hidden-test line" for ln in self.lines - own}
        # another student's line is theirs only if it is long enough to be distinctive and
        # is no part of what this page may show anyway ('return weight' is part of the
        # owner's 'return weight * self.mask')
        allowed = "\n".join(own | self.public | self.lines)
        for line in others - own - self.public - self.lines:
            if len(line) >= DISTINCTIVE_LENGTH and line not in allowed:
                forbidden[line] = "another student's submission"
        text = visible_text(page)
        found = [f"{what}: {line[:60]!r}"
                 for view in decoded_views(text) for line, what in forbidden.items()
                 if line in view]
        found += [f"the marker {m!r}" for m in MARKERS
                  if m in text and not any(m in ln for ln in own)]
        return sorted(set(found))


def _students(course: Course, assignment: str, students: list[str] | None) -> list[str]:
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
    return graded


def _keep_pages_only(folder: Path) -> list[Path]:
    """Delete from a feedback folder everything but the notebooks' pages (and nbgrader's
    timestamp.txt); return the pages."""
    from course_lib.grading.record import remove_tree

    pages = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file() and not path.is_symlink() and path.suffix == ".html":
            pages.append(path)
        elif not (path.name == "timestamp.txt" and path.is_file() and not path.is_symlink()):
            remove_tree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return pages


def feedback(
    course: Course, assignment: str, students: list[str] | None, log: logging.Logger
) -> FeedbackRun:
    """Feedback pages of the autograded submissions, each checked for secrets."""
    course.require_assignment(assignment)
    graded = _students(course, assignment, students)
    config = feedback_config(course)
    secrets = Secrets.of(course, assignment)
    run = FeedbackRun()
    for student in graded:
        try:
            result = course.run_nbgrader(
                "GenerateFeedback", assignment, student, config=config, log=log, force=True
            )
            folder = course.folder("feedback", student, assignment)
            pages = _keep_pages_only(folder)
            if not result["success"]:
                for page in pages:
                    page.unlink()
                run.problems.append(f"{student}: nbgrader could not generate feedback: "
                                    f"{last_line(result.get('error'))}")
                continue
            for page in pages:
                found = secrets.found_in(page, student)
                if found:
                    page.unlink()
                    run.problems.append(f"{student}: {page.name} withheld, it shows "
                                        f"{found[0]}" + (f" (+{len(found) - 1} more)"
                                                         if len(found) > 1 else ""))
                else:
                    run.pages.append((student, page))
        except Exception as error:  # noqa: BLE001 - one student never stops the others
            run.problems.append(f"{student}: feedback failed: {type(error).__name__}: "
                                f"{last_line(str(error))}")
    return run


def generate_feedback(
    course: Course, assignment: str, students: list[str] | None, log: logging.Logger
) -> list[tuple[str, Path]]:
    """Feedback pages of the autograded submissions; [(student, html), ...]. Every
    student is handled; then, if any page is missing, one CourseError names them."""
    run = feedback(course, assignment, students, log)
    if run.problems:
        for problem in run.problems:
            log.warning(problem)
        missing = [problem.split(":", 1)[0] for problem in run.problems]
        raise CourseError(
            f"feedback written for {len({s for s, _ in run.pages})} student(s); missing for "
            f"{len(missing)}, see the lines above: {', '.join(missing)}"
        )
    return run.pages

"""Regenerating ``exercises/`` from ``solutions/``, and checking that it is fresh.

``course release`` is ``nbgrader generate_assignment --force`` for every assignment: it
rewrites the release and records the assignment (cells, checksums, hidden tests) in the
course gradebook, which autograding needs. `stale_files` regenerates into a scratch
folder with a scratch gradebook and compares, so checking never changes the course.
"""

from __future__ import annotations

import copy
import fnmatch
import json
import logging
import tempfile
from pathlib import Path

from course_lib.grading.course import Course, CourseError
from course_lib.grading.record import last_line


def release(course: Course, assignments: list[str], log: logging.Logger) -> list[Path]:
    """Regenerate the release of each assignment; return the release folders."""
    folders = []
    for assignment in assignments:
        course.require_assignment(assignment)
        result = course.run_nbgrader(
            "GenerateAssignment", assignment, log=log, force=True, create_assignment=True
        )
        if not result["success"]:
            raise CourseError(
                f"nbgrader could not release {assignment}: {last_line(result.get('error'))}"
            )
        folders.append(course.folder("release", ".", assignment))
    return folders


def _files(folder: Path, ignore: list[str]) -> dict[str, Path]:
    found = {}
    if folder.is_dir():
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            if path.is_file() and not any(
                fnmatch.fnmatch(part, pattern) for part in relative.parts for pattern in ignore
            ):
                found[relative.as_posix()] = path
    return found


def _same(a: Path, b: Path) -> bool:
    if a.suffix == ".ipynb":
        try:
            return json.loads(a.read_text()) == json.loads(b.read_text())
        except ValueError:
            return False
    return a.read_bytes() == b.read_bytes()


def stale_files(course: Course, assignment: str, log: logging.Logger) -> list[str]:
    """How the committed release differs from what nbgrader generates now ([] if fresh)."""
    with tempfile.TemporaryDirectory(prefix="course-check-release-") as scratch:
        config = copy.deepcopy(course.config)
        config.CourseDirectory.release_directory = str(Path(scratch) / "release")
        config.CourseDirectory.db_url = f"sqlite:///{Path(scratch) / 'gradebook.db'}"
        result = course.run_nbgrader(
            "GenerateAssignment", assignment, config=config, log=log,
            force=True, create_assignment=True,
        )
        if not result["success"]:
            return [f"nbgrader could not generate it: {last_line(result.get('error'))}"]
        ignore = list(course.coursedir().ignore)
        scratch_dir = course.coursedir(config=config)
        generated = scratch_dir.format_path(scratch_dir.release_directory, ".", assignment)
        fresh = _files(Path(generated), ignore)
        committed = _files(course.folder("release", ".", assignment), ignore)
        problems = [f"{name} is missing" for name in fresh if name not in committed]
        problems += [f"{name} is not generated from the source" for name in committed
                     if name not in fresh]
        problems += [f"{name} differs from the source" for name in fresh
                     if name in committed and not _same(fresh[name], committed[name])]
        return problems

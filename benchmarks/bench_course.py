"""Wall time of each chapter's execution and of each assignment's autograde.

Goals (DEVELOPERS.md): a chapter executes in under a minute, an assignment autogrades in
under 30 s per submission, on a 2-core machine. Run from the repository root:

    .venv/bin/python benchmarks/bench_course.py [--chapters] [--assignments] [00 01 ...]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def time_chapters(only: list[str]) -> list[tuple[str, float]]:
    rows = []
    for chapter in sorted((ROOT / "book").glob("[0-9][0-9]_*.md")):
        if only and not any(chapter.stem.startswith(prefix) for prefix in only):
            continue
        notebook = jupytext.read(chapter)
        start = time.perf_counter()
        NotebookClient(
            notebook,
            timeout=600,
            kernel_name="python3",
            resources={"metadata": {"path": str(ROOT / "book")}},
        ).execute()
        rows.append((f"chapter {chapter.stem}", time.perf_counter() - start))
    return rows


def time_assignments(only: list[str]) -> list[tuple[str, float]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        course = Path(tmp) / "course"
        course.mkdir()
        shutil.copy(ROOT / "nbgrader_config.py", course)
        for folder in ("solutions", "exercises"):
            shutil.copytree(ROOT / folder, course / folder)
        for assignment in sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir()):
            if only and not any(assignment.startswith(prefix) for prefix in only):
                continue
            subprocess.run(
                ["nbgrader", "generate_assignment", assignment, "--force"],
                cwd=course,
                env=ENV,
                check=True,
                capture_output=True,
            )
            for student, origin in (("solution", "solutions"), ("blank", "exercises")):
                target = course / "submitted" / student / assignment
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(course / origin / assignment / f"{assignment}.ipynb", target)
                start = time.perf_counter()
                subprocess.run(
                    ["nbgrader", "autograde", assignment, "--student", student],
                    cwd=course,
                    env=ENV,
                    check=True,
                    capture_output=True,
                )
                rows.append((f"autograde {assignment} ({student})", time.perf_counter() - start))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chapters", action="store_true", help="only the chapters")
    parser.add_argument("--assignments", action="store_true", help="only the assignments")
    parser.add_argument("only", nargs="*", help="slug prefixes to time, e.g. 00 01 (default: all)")
    args = parser.parse_args()
    both = not (args.chapters or args.assignments)
    rows = []
    if args.chapters or both:
        rows += time_chapters(args.only)
    if args.assignments or both:
        rows += time_assignments(args.only)
    width = max(len(name) for name, _ in rows)
    print(f"{'what':<{width}}  wall time (s)")
    for name, seconds in rows:
        print(f"{name:<{width}}  {seconds:8.1f}")


if __name__ == "__main__":
    main()

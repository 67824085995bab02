"""What the bubblewrap sandbox costs per submission (issue 12: at most 10 %).

    .venv/bin/python benchmarks/bench_sandbox.py [--students 4] [--rounds 3]

A copy of the course gets ``--students`` submissions of assignment 01 (the solution
notebook, which runs every test). The class is graded with ``course autograde --workers 1
--force``, in the sandbox and with ``--no-sandbox``, the two interleaved ``--rounds`` times.
Printed per run: the wall time of the whole command and the median of the per-submission
seconds of its summary table. The overhead is the ratio of the fastest round of each
(the round least disturbed by other work on a shared machine). One worker, so that the
comparison is the sandbox, not the scheduling of parallel submissions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ASSIGNMENT = "01_sparse_connectivity"
sys.path.insert(0, str(ROOT / "tests"))

from conftest import copy_course  # noqa: E402


def make_class(folder: Path, students: int) -> Path:
    course = copy_course(folder / "course")
    solution = ROOT / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    for index in range(students):
        submitted = course / "submitted" / f"student{index:02d}" / ASSIGNMENT
        submitted.mkdir(parents=True)
        shutil.copy(solution, submitted / solution.name)
    return course


def grade(course: Path, sandbox: bool) -> tuple[float, float]:
    """(wall seconds of the command, median seconds per submission)."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
           "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "course"), "autograde", ASSIGNMENT, "--workers", "1", "--force",
               "--no-progress", *([] if sandbox else ["--no-sandbox"])]
    start = time.monotonic()
    done = subprocess.run(command, cwd=course, env=env, capture_output=True, text=True)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"course autograde failed:\n{done.stdout}\n{done.stderr}")
    seconds = [float(line.split()[5]) for line in done.stdout.splitlines()
               if line.startswith("student") and line.split()[1] == "graded"]
    return wall, statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-sandbox-") as scratch:
        course = make_class(Path(scratch), args.students)
        grade(course, sandbox=True)  # warm-up: gradebook, caches
        runs: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for sandbox in (True, False):
                wall, per_submission = grade(course, sandbox)
                runs[sandbox].append((wall, per_submission))
                label = "sandbox   " if sandbox else "no sandbox"
                print(f"round {round_ + 1} {label}: {wall:6.1f} s for {args.students} "
                      f"submissions, median {per_submission:5.2f} s per submission",
                      flush=True)
    best = {sandbox: min(r[1] for r in results) for sandbox, results in runs.items()}
    overhead = best[True] / best[False] - 1
    print(f"\nper submission (fastest round): sandbox {best[True]:.2f} s, "
          f"no sandbox {best[False]:.2f} s: overhead {overhead:+.1%} (goal: at most +10 %)")


if __name__ == "__main__":
    main()

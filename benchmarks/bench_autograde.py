"""Plain ``nbgrader autograde`` against ``course autograde``: the hostile corpus and the time.

    .venv/bin/python benchmarks/bench_autograde.py [--only corpus|timing] [--case NAME ...]
        [--grader both|course|nbgrader] [--students 20] [--rounds 1] [--workers N]

**Corpus** (issue 12). The corpus of hostile and broken submissions of
``tests/grading_corpus.py`` is graded twice, each time in a fresh copy of the course:

- by ``course autograde`` as one class (sandbox on, two workers), then ``course feedback``;
- by plain nbgrader, as an instructor without this course's tooling would grade it:
  ``nbgrader autograde`` then ``nbgrader generate_feedback``, one student at a time (one
  submission can kill a whole ``nbgrader autograde`` run, which would hide what the
  others do), with the files a submission may have changed restored in between.

Printed: one row per case with what it should get, what ``course`` gave and what plain
nbgrader gave, and what else happened under plain nbgrader (files changed outside the
graded folders, secrets in the feedback, a process left behind, the network reached).
Both graders run with a throw-away HOME; plain nbgrader's processes are capped at 8 GiB
of address space so that the memory bombs cannot take a shared machine down (plain
nbgrader itself sets no limit).

**Timing**. A class of synthetic submissions of assignment 01 (three in five solved, one
in five untouched, one in five with an answer cell that raises) is graded by sequential
``nbgrader autograde`` and by ``course autograde`` (one worker per core by default), and,
when ``course`` has the option, by ``course autograde --no-sandbox``: the sandbox's
overhead per submission. All run their kernels with one OpenMP thread, so the comparison
is about running submissions side by side, not about threads inside a submission. The
gradebooks must agree on every grade cell, or the benchmark fails. With ``--rounds N``
the runs are interleaved N times and the fastest round of each is reported (the round
least disturbed by other work on a shared machine); each run also reports how many cores
*other* processes used meanwhile (from /proc/stat). Goals: a speed-up of at least 1.8x
on an otherwise idle 2-core machine, a sandbox overhead of at most 10 %.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import copy_course  # noqa: E402 - the corpus lives in tests/
from grading_corpus import (  # noqa: E402
    ASSIGNMENT,
    CANARY,
    CORPUS_CONFIG,
    GRADING_OUTPUTS,
    Listener,
    build_corpus,
    differences,
    filled,
    fingerprint,
    isolated_env,
    leaks,
    own_text,
    secrets,
    survivors,
)

BIN = Path(sys.executable).parent
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
WALL_TIME = 45  # seconds per submission, as in tests/test_grading_corpus.py
MEMORY_MB = 2048
PLAIN_MEMORY = 8 * 2**30  # address-space cap on plain nbgrader (see the docstring)
PLAIN_TIMEOUT = 300  # seconds for one plain `nbgrader autograde --student`


# ------------------------------------------------------------------ the corpus


def corpus_course(base: Path, cases, env) -> Path:
    """A copy of the course with the short cell timeout and every case submitted."""
    course = copy_course(base / "course")
    config = course / "nbgrader_config.py"
    config.write_text(config.read_text() + CORPUS_CONFIG)
    for case in cases:
        case.write(course)
    subprocess.run(["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=course,
                   env=env, check=True, capture_output=True)
    return course


def scores(course: Path) -> dict[str, tuple[float, bool]]:
    """student -> (total score, flagged) in the gradebook (manual scores count)."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {
            s.student.id: (s.score, any(nb.flagged for nb in s.notebooks))
            for s in gb.assignment_submissions(ASSIGNMENT)
        }


def feedback_notes(course: Path, case, secret_lines: set[str]) -> list[str]:
    student = case.student
    notes = []
    for page in (course / "feedback" / student / ASSIGNMENT).glob("*.html"):
        data = page.read_bytes()
        if len(data) > 10 * 2**20:
            notes.append(f"feedback page {len(data) / 2**20:.0f} MB")
            data = data[: 10 * 2**20]
        found = leaks(data, secret_lines, own=own_text(case))
        if found:
            notes.append(f"{len(found)} secrets in its feedback")
    return notes


def _plain_limits() -> None:
    os.setsid()
    resource.setrlimit(resource.RLIMIT_AS, (PLAIN_MEMORY, PLAIN_MEMORY))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _restore(course: Path, pristine: Path, home: Path, pristine_home: Path) -> None:
    """Put back what a submission may have changed outside the graded folders: every
    file that differs from the pristine copy is copied back, every new file removed."""
    for folder, clean in ((course, pristine), (home, pristine_home)):
        skip = GRADING_OUTPUTS if folder == course else ()
        for path in differences(fingerprint(clean, skip), fingerprint(folder, skip)):
            target, source = folder / path, clean / path
            if target.is_symlink() or target.is_file():
                target.unlink()
            if source.is_symlink() or source.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target, follow_symlinks=False)


def _kill_survivors(since: float) -> int:
    found = survivors(since)
    for process in found:
        process.kill()
    return len(found)


def corpus_cases(names: list[str] | None, port: int):
    """The corpus (only ``names`` and the honest solution, if given) for a listener's port."""
    cases = build_corpus(ROOT, port=port)
    if names:  # the cases that attack other students need someone to attack
        cases = [c for c in cases if c.student in names or c.student == "solution"]
    return cases


def plain_nbgrader(base: Path, names, secret_lines) -> dict[str, tuple[str, list[str]]]:
    """student -> (result, notes) under plain nbgrader, one student at a time."""
    home = base / "home"
    env = isolated_env(home, BIN)
    results = {}
    with Listener() as server:
        cases = corpus_cases(names, server.port)
        course = corpus_course(base, cases, env)
        pristine = base / "pristine"
        shutil.copytree(course, pristine, symlinks=True)
        shutil.copytree(home, base / "pristine-home", symlinks=True)
        clean, clean_home = fingerprint(course, GRADING_OUTPUTS), fingerprint(home)
        for case in cases:
            start, heard = time.time(), len(server.received)
            notes = []
            shutil.copy2(course / "gradebook.db", base / "gradebook.backup")
            try:
                run = subprocess.run(
                    ["nbgrader", "autograde", ASSIGNMENT, "--student", case.student, "--force"],
                    cwd=course, env=env, capture_output=True, text=True,
                    timeout=PLAIN_TIMEOUT, preexec_fn=_plain_limits,
                )
                if run.returncode != 0:
                    errors = [ln for ln in run.stderr.splitlines() if "Error" in ln]
                    notes.append(f"nbgrader exit {run.returncode}"
                                 + (f" ({errors[-1].strip()[:80]})" if errors else ""))
            except subprocess.TimeoutExpired:
                notes.append(f"nbgrader still running after {PLAIN_TIMEOUT} s")
            if survivors(start):
                time.sleep(8)  # what the process left behind does meanwhile
                notes.append(f"{_kill_survivors(start)} process(es) outlived nbgrader")
            try:
                graded = scores(course)
            except Exception as error:  # noqa: BLE001 - whatever the submission did to it
                notes.append(f"gradebook unreadable afterwards ({type(error).__name__})")
                shutil.copy2(base / "gradebook.backup", course / "gradebook.db")
                graded = {}
            if case.student in graded:
                score, flagged = graded[case.student]
                result = f"{score:g}" + (", flagged" if flagged else "")
            else:
                result = "not graded"
            try:
                subprocess.run(["nbgrader", "generate_feedback", ASSIGNMENT, "--student",
                                case.student, "--force"], cwd=course, env=env,
                               capture_output=True, timeout=PLAIN_TIMEOUT,
                               preexec_fn=_plain_limits)
            except subprocess.TimeoutExpired:
                notes.append("nbgrader generate_feedback timed out")
            notes += feedback_notes(course, case, secret_lines)
            folder = course / "autograded" / case.student / ASSIGNMENT
            size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) \
                if folder.is_dir() else 0
            if size > 10 * 2**20:
                notes.append(f"autograded folder {size / 2**20:.0f} MB")
            changed = differences(clean, fingerprint(course, GRADING_OUTPUTS))
            changed += [f"~/{p}" for p in differences(clean_home, fingerprint(home))]
            if changed:
                notes.append("changed " + ", ".join(changed[:3])
                             + (f" (+{len(changed) - 3})" if len(changed) > 3 else ""))
            if len(server.received) > heard:
                notes.append("reached the network")
            results[case.student] = (result, notes)
            print(f"  plain nbgrader {case.student}: {result}; {'; '.join(notes)}", flush=True)
            _restore(course, pristine, home, base / "pristine-home")
    return results


def course_autograde(base: Path, names, secret_lines) -> tuple[dict[str, str], list[str]]:
    """student -> result under `course autograde` (one batch), and notes on the run."""
    home = base / "home"
    env = isolated_env(home, BIN)
    with Listener() as server:
        cases = corpus_cases(names, server.port)
        course = corpus_course(base, cases, env)
        clean, clean_home = fingerprint(course, GRADING_OUTPUTS), fingerprint(home)
        start = time.time()
        run = subprocess.run(
            [str(BIN / "course"), "autograde", ASSIGNMENT, "--no-progress", "--workers", "2",
             "--wall-time", str(WALL_TIME), "--memory-limit", str(MEMORY_MB)],
            cwd=course, env=env, capture_output=True, text=True, timeout=3600,
        )
        seconds = time.time() - start
        feedback = subprocess.run([str(BIN / "course"), "feedback", ASSIGNMENT], cwd=course,
                                  env=env, capture_output=True, text=True, timeout=3600)
    notes = [f"course autograde: exit {run.returncode} after {seconds:.0f} s; "
             f"course feedback: exit {feedback.returncode}"]
    if "Traceback" in run.stderr + feedback.stderr:
        notes.append("a traceback: " + (run.stderr + feedback.stderr)[-500:])
    lines = {ln.split(" ")[0]: ln for ln in run.stdout.splitlines() if ln.strip()}
    graded = scores(course)
    results = {}
    for case in cases:
        line = lines.get(case.student, "")
        if " failed " in f" {line} ":
            result = "not graded"
        elif case.student in graded:
            result = f"{graded[case.student][0]:g}"
        else:
            result = "missing from the summary"
        if graded.get(case.student, (0, False))[1]:
            result += ", flagged"
        extra = feedback_notes(course, case, secret_lines)
        results[case.student] = result + (f" ({'; '.join(extra)})" if extra else "")
    changed = differences(clean, fingerprint(course, GRADING_OUTPUTS))
    changed += [f"~/{p}" for p in differences(clean_home, fingerprint(home))]
    if changed:
        notes.append("files changed outside the graded folders: " + ", ".join(changed))
    left = _kill_survivors(start)
    if left:
        notes.append(f"{left} process(es) outlived the grading")
    if server.received:
        notes.append(f"{len(server.received)} connection(s) reached the network")
    return results, notes


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def corpus(args) -> None:
    cases = corpus_cases(args.case, 0)
    secret_lines = secrets(ROOT)
    print(f"{len(cases)} submissions; {len(secret_lines)} secret lines; canary {CANARY}")
    course_results = {c.student: "-" for c in cases}
    plain = {c.student: ("-", []) for c in cases}
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        if args.grader in ("both", "course"):
            course_results, course_notes = course_autograde(Path(a), args.case, secret_lines)
            for note in course_notes:
                print(f"course: {note}")
        if args.grader in ("both", "nbgrader"):
            plain = plain_nbgrader(Path(b), args.case, secret_lines)
    rows = [("case", "kind", "expected", "course autograde", "plain nbgrader",
             "also under plain nbgrader")]
    for case in cases:
        result, notes = plain[case.student]
        rows.append((case.student, case.kind, case.summary(), course_results[case.student],
                     result, "; ".join(notes)))
    print()
    print(table(rows))


# ------------------------------------------------------------------ timing


def class_of(n: int) -> dict[str, bytes]:
    """student id -> submitted notebook."""
    name = f"{ASSIGNMENT}.ipynb"
    release = nbformat.read(ROOT / "exercises" / ASSIGNMENT / name, as_version=4)
    solution = nbformat.read(ROOT / "solutions" / ASSIGNMENT / name, as_version=4)
    solved = filled(release, solution)
    raising = filled(release, solution)
    answers = [c for c in raising.cells if c.metadata.get("nbgrader", {}).get("solution")
               and c.cell_type == "code"]
    answers[-1].source = 'raise RuntimeError("not finished")\n' + answers[-1].source
    kinds = [solved, solved, solved, release, raising]
    return {f"student{i:02d}": nbformat.writes(kinds[i % 5]).encode() for i in range(n)}


def fresh_course(base: Path, submissions: dict[str, bytes]) -> Path:
    course = base / "course"
    course.mkdir(parents=True)
    shutil.copy(ROOT / "nbgrader_config.py", course)
    for folder in ("solutions", "exercises"):
        shutil.copytree(ROOT / folder, course / folder)
    subprocess.run(["nbgrader", "generate_assignment", ASSIGNMENT, "--force"], cwd=course,
                   env=ENV, check=True, capture_output=True)
    for student, content in submissions.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        (folder / f"{ASSIGNMENT}.ipynb").write_bytes(content)
    return course


def grades(course: Path) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {
            (s.student.id, g.name): (g.auto_score, g.needs_manual_grade)
            for s in gb.assignment_submissions(ASSIGNMENT)
            for nb in s.notebooks
            for g in nb.grades
        }


def _busy_seconds() -> float:
    """CPU time used by everything on the machine so far (all cores, from /proc/stat)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def timed(command: list[str], course: Path) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of the command and its children, cores that other
    processes on the machine used meanwhile, on average)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = _busy_seconds()
    start = time.perf_counter()
    result = subprocess.run(command, cwd=course, env=ENV, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    busy = _busy_seconds() - busy
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, max(0.0, busy - cpu) / seconds


def _has_option(option: str) -> bool:
    usage = subprocess.run([str(BIN / "course"), "autograde", "--help"], env=ENV,
                           capture_output=True, text=True).stdout
    return option in usage


def timing(args) -> None:
    submissions = class_of(args.students)
    course_command = [str(BIN / "course"), "autograde", ASSIGNMENT, "--no-progress"]
    if args.workers:
        course_command += ["--workers", str(args.workers)]
    commands = {"nbgrader autograde": ["nbgrader", "autograde", ASSIGNMENT],
                "course autograde": course_command}
    if _has_option("--no-sandbox"):
        commands["course --no-sandbox"] = course_command + ["--no-sandbox"]
    runs: dict[str, list] = {name: [] for name in commands}
    print(f"cores available: {len(os.sched_getaffinity(0))}")
    for round_ in range(args.rounds):
        gradebooks = []
        for name, command in commands.items():
            with tempfile.TemporaryDirectory() as folder:
                course = fresh_course(Path(folder), submissions)
                runs[name].append(timed(command, course))
                gradebooks.append(grades(course))
            wall, cpu, others = runs[name][-1]
            print(f"round {round_ + 1} {name:>20}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
                  f"other processes used {others:.2f} cores meanwhile")
        if any(g != gradebooks[0] for g in gradebooks):
            sys.exit("the gradebooks differ: the parallel grader is wrong")
    best = {name: min(found) for name, found in runs.items()}
    n = args.students
    print(f"\n{'':22}{'wall (s)':>10}{'per submission (s)':>20}{'CPU per submission (s)':>24}"
          f"{'others (cores)':>16}")
    for name, (wall, cpu, others) in best.items():
        print(f"{name:22}{wall:10.1f}{wall / n:20.2f}{cpu / n:24.2f}{others:16.2f}")
    print(f"\nspeed-up: {best['nbgrader autograde'][0] / best['course autograde'][0]:.2f}x "
          f"for {n} submissions (goal: at least 1.8x); identical gradebooks.")
    if "course --no-sandbox" in best:
        sandboxed, bare = best["course autograde"], best["course --no-sandbox"]
        print(f"sandbox overhead: {100 * (sandboxed[0] / bare[0] - 1):+.1f} % wall, "
              f"{100 * (sandboxed[1] / bare[1] - 1):+.1f} % CPU per submission (goal: at most "
              "10 %).")
    print("On a shared machine, the cores that other processes used are not available to "
          "the parallel grader: compare runs with 'others' near 0.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("corpus", "timing"), default=None)
    parser.add_argument("--case", action="append", help="only this corpus case (repeatable)")
    parser.add_argument("--grader", choices=("both", "course", "nbgrader"), default="both",
                        help="grade the corpus with one of the two only")
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up temporary folders
    if args.only in (None, "corpus"):
        corpus(args)
    if args.only in (None, "timing"):
        timing(args)


if __name__ == "__main__":
    main()

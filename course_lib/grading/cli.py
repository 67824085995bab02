"""``course``: the instructor's command line over nbgrader.

    course check                      verify the whole course (exit 1 on any failure)
    course release [ASSIGNMENT ...]   regenerate exercises/ from solutions/
    course autograde ASSIGNMENT       grade every submission, in parallel, with limits
    course feedback ASSIGNMENT        feedback HTML without the hidden tests' source
    course export                     grades to CSV, per assignment and per question
    course report ASSIGNMENT          the class report: difficulty, discrimination, mistakes

Run it from the course directory (the folder with ``nbgrader_config.py``) or pass
``--course DIR``. ``course COMMAND --help`` describes each command. A problem the
instructor can fix (unknown assignment, no submissions, no configuration) is one line on
stderr and exit status 2; a failed check or a submission that could not be graded is
exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Sequence

from course_lib.grading.course import Course, CourseError, quiet_logger, venv_scripts_first

EXIT_FAILED = 1  # a check failed, or a submission could not be graded
EXIT_USAGE = 2  # the instructor must fix something before the command can run


# ------------------------------------------------------------------ output helpers


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, columns as wide as their widest cell."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def progress_bar(args, total: int, what: str, unit: str = "submission"):
    """tqdm on the terminal's stderr; off with --no-progress or when stderr is no TTY."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: grading processes are forked from here
    disabled = args.no_progress or not sys.stderr.isatty()
    return tqdm(total=total, desc=what, unit=unit, disable=disabled, file=sys.stderr,
                leave=False, dynamic_ncols=True)


def _score(value: float) -> str:
    return f"{value:g}"


# ------------------------------------------------------------------ commands


def cmd_check(args, course: Course, log: logging.Logger) -> int:
    from course_lib.grading.check import CHECKS, check_course

    assignments = [course.require_assignment(a) for a in args.assignment] or course.assignments()
    if not assignments:
        raise CourseError(f"no assignments in {course.folder('source')}")
    limits = _limits(args, course)
    with progress_bar(args, len(assignments), "check", unit="assignment") as bar:
        findings = check_course(course, assignments, limits, log, on_step=lambda _: bar.update(),
                                variant_ids=args.variant_ids)
    by_assignment = {a: {f.check: f for f in findings if f.assignment == a} for a in assignments}
    rows = [
        (a, *("ok" if by_assignment[a][c].ok else "FAIL" for c in CHECKS)) for a in assignments
    ]
    print(table(("assignment", *CHECKS), rows))
    failures = [f for f in findings if not f.ok]
    for finding in failures:
        print(f"\n{finding.assignment}: {finding.check} FAILED")
        for problem in finding.problems:
            print(f"  - {problem}")
    print(
        f"\n{len(assignments)} assignment(s): "
        + ("all checks passed." if not failures else f"{len(failures)} check(s) failed.")
    )
    print(_sandbox_summary(limits))
    print(_variants_summary())
    return EXIT_FAILED if failures else 0


def cmd_release(args, course: Course, log: logging.Logger) -> int:
    from course_lib.grading.release import release

    assignments = [course.require_assignment(a) for a in args.assignment] or course.assignments()
    folders = release(course, assignments, log)
    for folder in folders:
        print(f"released {folder.relative_to(course.root)}")
    return 0


def cmd_feedback(args, course: Course, log: logging.Logger) -> int:
    from course_lib.grading.feedback import generate_feedback

    pages = generate_feedback(course, args.assignment, args.student, log)
    for student, page in pages:
        print(f"{student}: {page.relative_to(course.root)}")
    print(f"\n{len(pages)} feedback page(s), hidden tests removed.")
    return 0


def cmd_export(args, course: Course, log: logging.Logger) -> int:
    from pathlib import Path

    from course_lib.grading.export import export

    destination = Path(args.to) if args.to else course.root
    for path in export(course, destination, args.assignment, log):
        print(f"wrote {path}")
    return 0


def cmd_report(args, course: Course, log: logging.Logger) -> int:
    import math
    from pathlib import Path

    from course_lib.grading.report import report

    destination = Path(args.to) if args.to else None
    page, csvs, results, stats = report(course, args.assignment, destination)

    def number(value: float) -> str:
        return "-" if math.isnan(value) else f"{value:.2f}"  # undefined (NaN) as "-"

    rows = [(s.question.name, len(s.scores), number(s.difficulty), number(s.discrimination),
             ", ".join(f"{m} ({n})" for m, n, _ in s.mistakes[:3]) or "-") for s in stats]
    print(table(("question", "students", "difficulty", "discrimination", "top mistakes"), rows))
    for path in (page, *csvs):
        shown = path.relative_to(course.root) if path.is_relative_to(course.root) else path
        print(f"wrote {shown}")
    return 0


def _limits(args, course: Course, sandbox_here: bool = True):
    from course_lib.grading.limits import Limits
    from course_lib.grading.sandbox import sandbox_problem

    try:
        limits = Limits.from_config(
            course.config,
            memory_mb=getattr(args, "memory_limit", None),
            wall_time=getattr(args, "wall_time", None),
            workers=args.workers,
            sandbox=not args.no_sandbox,
        )
    except ValueError as error:
        raise CourseError(str(error)) from None
    if limits.sandbox and sandbox_here:  # refuse before anything is graded or recorded
        problem = sandbox_problem()
        if problem:
            raise CourseError(problem)
    return limits


def _sandbox_summary(limits) -> str:
    if limits.sandbox:
        return "Each kernel ran in the bubblewrap sandbox."
    return ("WARNING: graded WITHOUT the sandbox (--no-sandbox): the students' code ran as "
            "your user, with your files and the network within reach.")


def _variants_summary() -> str:
    from course_lib.grading.variants import summary

    return summary()


def cmd_autograde(args, course: Course, log: logging.Logger) -> int:
    from course_lib.grading.autograde import autograde

    # on a cluster the sandbox runs on the workers, which are checked there
    limits = _limits(args, course, sandbox_here=not args.cluster)
    cluster = None
    if args.cluster:
        from course_lib.grading.cluster import ClusterRunner

        cluster = ClusterRunner(args.cluster, limits)
    bar = None

    def start(total: int) -> None:
        nonlocal bar
        bar = progress_bar(args, total, f"autograde {args.assignment}")

    def advance(outcome) -> None:
        if bar is not None:
            bar.set_postfix_str(outcome.student, refresh=False)
            bar.update(1)

    try:
        # connected, and its workers checked, before anything is graded or recorded
        with cluster or contextlib.nullcontext():
            outcomes, tampered = autograde(
                course, args.assignment, limits, students=args.student, force=args.force,
                progress=advance, log=log, announce_total=start,
                runner=cluster,
            )
    finally:
        if bar is not None:
            bar.close()
    rows = [
        (o.student, o.status, f"{_score(o.score)} / {_score(o.max_score)}",
         f"{o.seconds:.1f}" if o.seconds else "-", "; ".join(filter(None, [o.reason, *o.notes])))
        for o in outcomes
    ]
    print(table(("student", "status", "score", "seconds", "notes"), rows))
    graded = sum(o.status == "graded" for o in outcomes)
    failed = [o.student for o in outcomes if o.status == "failed"]
    flagged = [o.student for o in outcomes if o.flagged]
    where = (f"on {len(cluster.able)} Dask worker(s) at {args.cluster}" if cluster
             else f"with {limits.workers} workers")
    print(
        f"\n{args.assignment}: {graded} graded, {len(failed)} could not be graded, "
        f"{sum(o.status == 'skipped' for o in outcomes)} skipped, {where}, "
        f"{limits.memory_mb} MiB and {limits.wall_time:g} s per submission."
    )
    for problem in cluster.problems if cluster else []:
        print(f"WARNING: {problem}")
    print(_sandbox_summary(limits))
    print(_variants_summary())
    if flagged:
        print(f"Flagged for review in the formgrader: {', '.join(flagged)}.")
    if tampered:
        print(
            "WARNING: the gradebook changed while grading, not through this command "
            "(a submission writing to it by absolute path, or another nbgrader process). "
            "Check it, then regrade with --force."
        )
    return EXIT_FAILED if failed or tampered else 0


# ------------------------------------------------------------------ parser


def _add_no_sandbox(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-sandbox", action="store_true",
        help="run the kernels without bubblewrap (only where it cannot be installed; "
             "the summary says so): students' code then sees your files and the network",
    )


def _add_progress(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress", action="store_true",
        help="no progress bar (it is also off when stderr is not a terminal)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course",
        description="The instructor's command line over nbgrader for this course.",
    )
    parser.add_argument(
        "--course", metavar="DIR", default=None,
        help="the course directory, with nbgrader_config.py (default: the current directory)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show nbgrader's log")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an unexpected error"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    check = commands.add_parser(
        "check",
        help="verify the whole course (exit status 1 on any failure)",
        description=(
            "For every assignment (or those named): the committed release is what nbgrader "
            "generates from the source now; it holds no solution, hidden test or model "
            "answer; the solution gets full marks and the untouched release gets zero, "
            "graded by the same parallel grader as `autograde`, in a scratch copy of the "
            "course. Prints a summary table."
        ),
    )
    check.add_argument("assignment", nargs="*", metavar="ASSIGNMENT")
    check.add_argument("--workers", type=int, default=None, metavar="N",
                       help="submissions graded at the same time (default: one per core)")
    check.add_argument("--variant-ids", type=int, default=50, metavar="N",
                       help="random student ids for which the solution must get full marks "
                            "and the untouched release zero (default: 50; 0: none)")
    _add_no_sandbox(check)
    _add_progress(check)
    check.set_defaults(handler=cmd_check)

    release = commands.add_parser(
        "release",
        help="regenerate the release (exercises/) from the source (solutions/)",
        description=(
            "Run nbgrader generate_assignment --force for every assignment (or those "
            "named): rewrites the release folder and records the assignment in the "
            "gradebook, which autograding needs."
        ),
    )
    release.add_argument("assignment", nargs="*", metavar="ASSIGNMENT")
    release.set_defaults(handler=cmd_release)

    grade = commands.add_parser(
        "autograde",
        help="grade every submission of an assignment, in parallel",
        description=(
            "Grade every submitted/<student>/ASSIGNMENT/ with nbgrader, several students at "
            "a time, each in a private copy of the course with memory, disk, output and "
            "wall-time limits, the student's kernel in a bubblewrap sandbox (refused "
            "where bubblewrap cannot run, unless --no-sandbox). Ends with the gradebook "
            "that sequential `nbgrader autograde` gives. "
            "Defaults come from c.SubmissionLimits in nbgrader_config.py."
        ),
    )
    grade.add_argument("assignment", metavar="ASSIGNMENT")
    grade.add_argument(
        "--student", action="append", metavar="ID",
        help="grade only this student (repeatable)",
    )
    grade.add_argument(
        "--workers", type=int, default=None, metavar="N",
        help="submissions graded at the same time (default: one per core)",
    )
    grade.add_argument(
        "--memory-limit", type=int, default=None, metavar="MIB",
        help="address-space limit of each grading process and kernel (default 4096 MiB)",
    )
    grade.add_argument(
        "--wall-time", type=float, default=None, metavar="SECONDS",
        help="time limit for one whole submission (default 300 s)",
    )
    grade.add_argument(
        "--force", action="store_true",
        help="regrade submissions that are already autograded",
    )
    grade.add_argument(
        "--cluster", metavar="ADDRESS", default=None,
        help="grade on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786; "
             "pip install course-lib[cluster]): each submission's private job runs on a "
             "worker with the same limits and sandbox; the gradebook is merged here",
    )
    _add_no_sandbox(grade)
    _add_progress(grade)
    grade.set_defaults(handler=cmd_autograde)

    feedback = commands.add_parser(
        "feedback",
        help="feedback HTML for the autograded submissions, without the hidden tests",
        description=(
            "Run nbgrader generate_feedback for the autograded submissions of ASSIGNMENT, "
            "with the hidden tests' code removed (nbgrader shows it by default) and their "
            "tracebacks shortened to the checker's message. Writes feedback/<student>/"
            "ASSIGNMENT/*.html; fails if any page still shows a hidden test."
        ),
    )
    feedback.add_argument("assignment", metavar="ASSIGNMENT")
    feedback.add_argument("--student", action="append", metavar="ID",
                          help="only this student (repeatable)")
    feedback.set_defaults(handler=cmd_feedback)

    export = commands.add_parser(
        "export",
        help="grades to CSV, per assignment and per question",
        description=(
            "Write grades.csv (nbgrader's export: one row per student and assignment) and "
            "grades_per_question.csv (one row per student, assignment and graded cell, "
            "with automatic and manual scores)."
        ),
    )
    export.add_argument("--to", metavar="DIR", default=None,
                        help="folder for the two files (default: the course directory)")
    export.add_argument("--assignment", action="append", metavar="NAME",
                        help="only this assignment (repeatable)")
    export.set_defaults(handler=cmd_export)

    class_report = commands.add_parser(
        "report",
        help="the class report of an assignment: scores, difficulty, misconceptions",
        description=(
            "From the gradebook and the autograded notebooks of ASSIGNMENT: per question, "
            "the score distribution, difficulty (mean score / max) and discrimination "
            "(item-rest correlation); how many students hit each checker's mistake id; "
            "the submissions that could not be graded or were flagged. Writes report.html "
            "and CSV files into reports/ASSIGNMENT/ (they name students: keep them out "
            "of git)."
        ),
    )
    class_report.add_argument("assignment", metavar="ASSIGNMENT")
    class_report.add_argument("--to", metavar="DIR", default=None,
                              help="folder for the report (default: reports/ASSIGNMENT)")
    class_report.set_defaults(handler=cmd_report)
    return parser


def _silence_known_upstream_warnings() -> None:
    """nbgrader 0.9.6's Gradebook.add_submission triggers SQLAlchemy 2.x "not in session"
    warnings on every new submission; they are harmless and nbgrader's own autograde
    prints them too. Only those are hidden."""
    import warnings

    warnings.filterwarnings("ignore", message=r".*not in session, add operation along")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    venv_scripts_first()
    _silence_known_upstream_warnings()
    log = quiet_logger(level=logging.INFO if args.verbose else logging.WARNING)
    try:
        course = Course.load(args.course)
        return args.handler(args, course, log)
    except CourseError as error:
        print(f"course {args.command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"course {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - one line unless --debug
        if args.debug:
            raise
        print(
            f"course {args.command}: unexpected error: {type(error).__name__}: {error} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())

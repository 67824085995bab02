"""Grading many submissions in parallel, each in its own private course directory.

For every submission the runner builds a private course directory in a fresh temporary
folder (mode 0700)::

    <job>/course/nbgrader_config.py          copy of the course's configuration
    <job>/course/<source>/<assignment>/      the assignment's non-notebook files only
    <job>/course/<submitted>/<student>/<assignment>/   this student's submission only
    <job>/course/gradebook.db                the assignments, no student (see record)
    <job>/home, <job>/tmp, <job>/runtime     HOME, TMPDIR and Jupyter's runtime dir

and grades it in a process of its own, forked from the ``course`` process and confined
as `limits` describes, while at most ``workers`` such processes run at once. The
kernel's working directory is the private ``autograded/<student>/<assignment>/``, so
relative paths (``../../../gradebook.db``), ``~`` and temporary files all land in the
private folder, which is deleted afterwards. The parent merges each result into the
real course (`record`), one submission at a time, while the others keep running.

What this does **not** give, without OS-level sandboxing (a container, another Unix
user, or Linux namespaces): the student's code runs as the instructor's user, so it can
still open files by **absolute path** -- the real course directory (its location is
visible, e.g. in ``course_lib.__file__`` for an editable install), other private
folders under the same temporary directory, the network. The private copy keeps honest
mistakes and relative-path accidents away from other students and the gradebook, and the
parent detects a gradebook changed behind its back; for adversarial students, run the
``course`` command itself inside a container that sees only the course directory.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from course_lib.grading.course import Course
from course_lib.grading.limits import Limits, kill_tree
from course_lib.grading.record import remove_tree


def _context():
    """Grading processes are forked from this process, which has already imported
    nbgrader (importing it costs about 3 s of CPU, as much as grading a short notebook;
    paying it once per class rather than once per student is what makes the parallel
    grader fast). This process runs no other thread when it forks (the progress bar's
    monitor thread is turned off), so forking is safe."""
    import course_lib.grading.worker  # noqa: F401 - imports nbgrader before forking

    return multiprocessing.get_context("fork")


@dataclass
class Job:
    assignment: str
    student: str
    submission: Path  # the real submitted folder


@dataclass
class JobResult:
    job: Job
    ok: bool  # nbgrader finished and wrote the autograded notebooks
    reason: str  # why not, in one line
    seconds: float
    autograded: Path | None  # the private autograded folder
    log: str  # the grading process's log (nbgrader and kernel messages)


def _copy_without_links(source: Path, destination: Path) -> None:
    """Copy a submission; symbolic links are left out (one could point at /dev/zero or at
    another student's folder)."""

    def links(folder, names):
        return [n for n in names if os.path.islink(os.path.join(folder, n))]

    shutil.copytree(source, destination, ignore=links)


def _seed_matplotlib_cache(destination: Path) -> None:
    """Give the private HOME a copy of matplotlib's font cache, so that a kernel that
    plots does not spend seconds rebuilding it (a copy: no student can alter another's)."""
    source = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
    destination.mkdir(parents=True)
    for cache in source.glob("fontlist-*.json"):
        shutil.copy2(cache, destination / cache.name)


def prepare(course: Course, job: Job, template_db: Path, scratch: Path) -> dict:
    """Build the private course directory of one submission; return the worker's job."""
    from course_lib.grading.worker import host_paths

    work = Path(tempfile.mkdtemp(prefix=f"{job.student}-", dir=scratch))
    private = work / "course"
    private.mkdir()
    shutil.copy2(course.root / "nbgrader_config.py", private / "nbgrader_config.py")
    coursedir = course.coursedir()

    def inside(step: str, student: str) -> Path:
        """Where nbgrader looks in the private course (same directory_structure)."""
        relative = coursedir.directory_structure.format(
            nbgrader_step=getattr(coursedir, f"{step}_directory"),
            student_id=student,
            assignment_id=job.assignment,
        )
        return Path(os.path.normpath(private / relative))

    # Autograde copies the source folder's other files (data, helpers) over the
    # submission; the source notebooks themselves (the solutions) stay out.
    shutil.copytree(
        course.folder("source", ".", job.assignment), inside("source", "."),
        ignore=shutil.ignore_patterns("*.ipynb"),
    )
    submission = inside("submitted", job.student)
    submission.parent.mkdir(parents=True, exist_ok=True)
    _copy_without_links(job.submission, submission)
    shutil.copy2(template_db, private / "gradebook.db")
    for name in ("home", "tmp", "runtime"):
        (work / name).mkdir()
    _seed_matplotlib_cache(work / "home" / ".matplotlib")
    autograded = str(inside("autograded", job.student))
    return {
        "workdir": str(work),
        "course": str(private),
        "assignment": job.assignment,
        "student": job.student,
        "autograded": autograded,
        "log": str(work / "worker.log"),
        "result": str(work / "result.json"),
        **host_paths(),
    }


def _explain(error: str, log: str) -> str:
    """One line saying why nbgrader could not grade a submission."""
    if "DeadKernelError" in error + log or "Kernel died" in error + log:
        return "the kernel died (a crash, os._exit, or killed by the memory limit)"
    if "CellTimeoutError" in error + log:
        return "a cell ignored the per-cell timeout's interrupt (Execute.timeout)"
    if "MemoryError" in error:
        return "the grading process ran out of memory (memory limit)"
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "nbgrader failed without a message"


def _result(job: Job, spec: dict, exitcode: int | None, seconds: float, timed_out: bool,
            limits: Limits) -> JobResult:
    log_path = Path(spec["log"])
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    autograded = Path(spec["autograded"])
    produced = autograded.is_dir() and any(autograded.glob("*.ipynb"))
    if timed_out:
        reason = f"stopped at the wall-time limit ({limits.wall_time:g} s)"
        return JobResult(job, False, reason, seconds, None, log)
    result_path = Path(spec["result"])
    try:
        result = json.loads(result_path.read_text())
    except (OSError, ValueError):
        result = None
    if result is None:
        if exitcode is not None and exitcode < 0:
            reason = f"the grading process was killed by signal {-exitcode}"
        else:
            reason = f"the grading process exited with status {exitcode} and no result"
        return JobResult(job, False, reason, seconds, None, log)
    if not result.get("success") or not produced:
        return JobResult(job, False, _explain(result.get("error", ""), log), seconds, None, log)
    return JobResult(job, True, "", seconds, autograded, log)


def run_jobs(
    course: Course,
    jobs: Iterable[Job],
    limits: Limits,
    template_db: Path,
    scratch: Path,
    on_result: Callable[[JobResult], None],
    on_start: Callable[[Job], None] | None = None,
) -> None:
    """Grade every job, at most ``limits.workers`` at a time; call ``on_result`` (in this
    thread, one at a time) as each finishes. Private folders are removed afterwards."""
    context = _context()
    from course_lib.grading.worker import run

    gc.collect()
    gc.freeze()  # forked children then share the parent's objects instead of copying them

    pending = deque(jobs)
    running: dict[int, tuple[Job, dict, multiprocessing.Process, float]] = {}

    def fill() -> None:
        while pending and len(running) < limits.workers:
            job = pending.popleft()
            spec = prepare(course, job, template_db, scratch)
            spec["memory_mb"] = limits.memory_mb
            process = context.Process(target=run, args=(spec,), daemon=False)
            process.start()
            running[process.sentinel] = (job, spec, process, time.monotonic())
            if on_start:
                on_start(job)

    try:
        while pending or running:
            fill()
            ready = multiprocessing.connection.wait(list(running), timeout=0.25)
            now = time.monotonic()
            finished = []
            for sentinel, (job, spec, process, start) in list(running.items()):
                stopped = sentinel not in ready and now - start > limits.wall_time
                if sentinel in ready or stopped:
                    if stopped:  # at the time limit: the whole tree
                        kill_tree(process.pid)
                    process.join()
                    del running[sentinel]
                    finished.append(
                        (_result(job, spec, process.exitcode, now - start, stopped, limits), spec)
                    )
            fill()  # the freed cores start on the next submissions while this one merges
            for result, spec in finished:
                on_result(result)
                remove_tree(Path(spec["workdir"]))
    finally:
        for _job, spec, process, _ in running.values():
            kill_tree(process.pid)
            process.join()
            remove_tree(Path(spec["workdir"]))

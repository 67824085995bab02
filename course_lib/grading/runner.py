"""Grading many submissions in parallel, each in its own private course directory.

For every submission the runner builds a private course directory in a fresh temporary
folder (mode 0700)::

    <job>/course/nbgrader_config.py          copy of the course's configuration
    <job>/course/<source>/<assignment>/      the assignment's non-notebook files only
    <job>/course/<submitted>/<student>/<assignment>/   this student's submission only
    <job>/course/gradebook.db                the assignments, no student (see record)
    <job>/private/home, <job>/private/tmp    the kernel's HOME and TMPDIR
    <job>/private/work                       the kernel's working folder (a copy)
    <job>/runtime, <job>/worker.log, <job>/kernel.log

and grades it in a process of its own, forked from the ``course`` process and confined
as `limits` describes, while at most ``workers`` such processes run at once. The parent
merges each result into the real course (`record`), one submission at a time, while the
others keep running.

**The sandbox.** The grading process (nbgrader) runs here, outside; the student's kernel
runs in bubblewrap (`sandbox`), which sees only the Python installations, a read-only
snapshot of ``course_lib`` made once per run, and its private folders: not the course
directory, other submissions, the gradebook, the instructor's HOME or this scratch
folder. Without bubblewrap, `run_jobs` refuses unless ``Limits.sandbox`` is off
(``course autograde --no-sandbox``); the kernel then runs as the instructor's user and
can open files by absolute path.

**What the parent trusts.** The result of a grading process comes through a pipe from
that process, never from a file (the kernel could write one); a grading process that
died, was killed or sent nothing is "not graded", whatever its folder holds. The parent
also enforces the limits of the whole submission: wall time, memory of the whole tree
(when no memory cgroup does it) and bytes written in the private folders.
"""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.connection
import os
import shutil
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from course_lib.grading.course import Course, CourseError
from course_lib.grading.limits import (
    Limits,
    MemoryGroup,
    end_orphans,
    kill_tree,
    set_child_subreaper,
    tree_rss,
)
from course_lib.grading.record import remove_tree
from course_lib.grading.sandbox import private_folder_size, sandbox_problem, snapshot_course_lib
from course_lib.grading.variants import CONFIG_SECTION, job_key

KERNEL_LOG_SHOWN = 64 * 1024  # bytes of the kernel's own output kept in the student's log
WATCH_EVERY = 0.25  # seconds between two looks at the running submissions


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


def _short_folder(parent: Path) -> str:
    """A folder for the kernel's IPC sockets, with a path short enough for a Unix
    socket (at most 107 bytes, with the socket's own name)."""
    parent.mkdir(exist_ok=True)
    folder = tempfile.mkdtemp(prefix="", dir=parent)
    if len(folder) > 80:
        os.rmdir(folder)
        folder = tempfile.mkdtemp(prefix="course-ipc-", dir="/tmp")
    return folder


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
    (work / "runtime").mkdir()
    for name in ("home", "tmp"):
        (work / "private" / name).mkdir(parents=True)
    _seed_matplotlib_cache(work / "private" / "home" / ".matplotlib")
    autograded = str(inside("autograded", job.student))
    # the student's variant key (never the secret), also in the job's own configuration,
    # which is what a cluster worker receives (see `variants`)
    key = job_key(course.config, job.assignment, job.student)
    if key:
        with open(private / "nbgrader_config.py", "a") as config:
            config.write(f"\nc.{CONFIG_SECTION}.key = {key!r}\n")
    return {
        "workdir": str(work),
        "course": str(private),
        "private": str(work / "private"),
        "ipc": _short_folder(scratch / "ipc"),
        "hidden": [str(course.root), str(scratch)],
        "assignment": job.assignment,
        "student": job.student,
        "autograded": autograded,
        "log": str(work / "worker.log"),
        "kernel_log": str(work / "kernel.log"),
        "variant": key,
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


@dataclass
class _Running:
    """One submission being graded, as the parent watches it."""

    job: Job
    spec: dict
    process: multiprocessing.Process
    results: multiprocessing.connection.Connection  # reading end of the worker's pipe
    start: float
    baseline: int  # bytes in the private folders before grading
    group: MemoryGroup | None
    stopped: str = ""  # why the parent killed it, if it did
    result: dict | None = field(default=None)


def _read_log(spec: dict) -> str:
    log_path = Path(spec["log"])
    log = log_path.read_text(errors="replace") if log_path.exists() else ""
    kernel_log = Path(spec["kernel_log"])
    if kernel_log.exists() and kernel_log.stat().st_size:
        with kernel_log.open("rb") as stream:
            text = stream.read(KERNEL_LOG_SHOWN).decode("utf-8", "replace")
        log += "\n--- the kernel's own output (written by the submission's code) ---\n" + text
    return log


def _receive(running: _Running) -> dict | None:
    """The worker's result, if it sent one before it ended."""
    try:
        if running.results.poll(0):
            result = running.results.recv()
            return result if isinstance(result, dict) else None
    except (EOFError, OSError):
        pass
    return None


def _result(running: _Running, seconds: float) -> JobResult:
    job, spec, process = running.job, running.spec, running.process
    log = _read_log(spec)
    if running.stopped:
        return JobResult(job, False, running.stopped, seconds, None, log)
    memory_note = ""
    if running.group is not None and running.group.killed_by_limit():
        memory_note = (f"its processes used more than {spec['tree_memory_mb']} MiB together: "
                       "the memory limit of the whole submission stopped some of them")
    result = running.result
    exitcode = process.exitcode
    if result is None or exitcode != 0:
        # a grading process that died is never read as graded, whatever its folder holds
        if memory_note:
            reason = memory_note
        elif exitcode is not None and exitcode < 0:
            reason = f"the grading process was killed by signal {-exitcode}"
        else:
            reason = f"the grading process exited with status {exitcode} and no result"
        return JobResult(job, False, reason, seconds, None, log)
    autograded = Path(spec["autograded"])
    produced = autograded.is_dir() and any(autograded.glob("*.ipynb"))
    if not result.get("success") or not produced:
        reason = memory_note or _explain(str(result.get("error", "")), log)
        return JobResult(job, False, reason, seconds, None, log)
    return JobResult(job, True, memory_note, seconds, autograded, log)


def _over_limit(running: _Running, limits: Limits, now: float) -> str:
    """Why this submission must be stopped now, or ""."""
    if now - running.start > limits.wall_time:
        return f"stopped at the wall-time limit ({limits.wall_time:g} s)"
    written = private_folder_size(Path(running.spec["workdir"])) - running.baseline
    if written > limits.disk_mb * 2**20:
        return (f"stopped: it wrote more than {limits.disk_mb} MiB in its folder "
                "(disk limit; SubmissionLimits.disk_mb)")
    if running.group is None and tree_rss(running.process.pid) > limits.tree_memory_mb * 2**20:
        return (f"stopped: its processes used more than {limits.tree_memory_mb} MiB "
                "together (memory limit of the whole submission)")
    return ""


def _job_spec(spec: dict, limits: Limits, packages: Path | None, group) -> dict:
    spec.update(
        memory_mb=limits.memory_mb, tree_memory_mb=limits.tree_memory_mb,
        disk_mb=limits.disk_mb, cell_output_kb=limits.cell_output_kb,
        notebook_output_kb=limits.notebook_output_kb, sandbox=limits.sandbox,
        packages=str(packages) if packages else None,
        cgroup=str(group.path) if group else None,
        cgroup_version=group.version if group else None,
    )
    return spec


def run_jobs(
    course: Course,
    jobs: Iterable[Job],
    limits: Limits,
    template_db: Path,
    scratch: Path,
    on_result: Callable[[JobResult], None],
    on_start: Callable[[Job], None] | None = None,
    context: multiprocessing.context.BaseContext | None = None,
) -> None:
    """Grade every job, at most ``limits.workers`` at a time; call ``on_result`` (in this
    thread, one at a time) as each finishes. Private folders are removed afterwards.
    Raises CourseError when the sandbox is asked for and cannot run here.

    Grading processes are forked from this process (`_context`) unless ``context`` says
    otherwise: a Dask worker, which runs other threads, starts them from a forkserver
    (see `cluster`)."""
    packages = None
    if limits.sandbox:
        problem = sandbox_problem()
        if problem:
            raise CourseError(problem)
        packages = snapshot_course_lib(Path(tempfile.mkdtemp(prefix="packages-", dir=scratch)))
    context = context or _context()
    from course_lib.grading.worker import run

    gc.collect()
    gc.freeze()  # forked children then share the parent's objects instead of copying them

    pending = deque(jobs)
    running: dict[int, _Running] = {}
    # Orphans of a grading process that died come to this process, which ends them.
    set_child_subreaper(True)
    children_before = {child.pid for child in psutil.Process().children()}

    def fill() -> None:
        while pending and len(running) < limits.workers:
            job = pending.popleft()
            spec = prepare(course, job, template_db, scratch)
            group = MemoryGroup.create(
                f"course-{os.getpid()}-{Path(spec['workdir']).name}",
                limits.tree_memory_mb * 2**20,
            ) if limits.memory_cgroup else None
            _job_spec(spec, limits, packages, group)
            results, channel = context.Pipe(duplex=False)
            process = context.Process(target=run, args=(spec, channel), daemon=False)
            process.start()
            channel.close()  # only the worker writes
            baseline = private_folder_size(Path(spec["workdir"]))
            running[process.sentinel] = _Running(
                job, spec, process, results, time.monotonic(), baseline, group
            )
            if on_start:
                on_start(job)

    def end(entry: _Running) -> None:
        entry.results.close()
        end_orphans(children_before | {e.process.pid for e in running.values()})
        if entry.group is not None:
            entry.group.kill_all()
            entry.group.remove()
        remove_tree(Path(entry.spec["workdir"]))
        ipc = Path(entry.spec["ipc"])
        if ipc.exists():
            remove_tree(ipc)

    try:
        while pending or running:
            fill()
            ready = multiprocessing.connection.wait(list(running), timeout=WATCH_EVERY)
            now = time.monotonic()
            finished = []
            for sentinel, entry in list(running.items()):
                if sentinel not in ready:
                    entry.stopped = _over_limit(entry, limits, now)
                if sentinel in ready or entry.stopped:
                    entry.result = _receive(entry)
                    if entry.stopped:  # at a limit: the whole tree
                        kill_tree(entry.process.pid)
                    entry.process.join()
                    if entry.result is None:
                        entry.result = _receive(entry)
                    del running[sentinel]
                    finished.append((_result(entry, now - entry.start), entry))
            fill()  # the freed cores start on the next submissions while this one merges
            for result, entry in finished:
                on_result(result)
                end(entry)
    finally:
        for entry in list(running.values()):
            kill_tree(entry.process.pid)
            entry.process.join()
            del running[entry.process.sentinel]
            end(entry)
        set_child_subreaper(False)

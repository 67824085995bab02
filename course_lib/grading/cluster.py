"""Grading on a Dask cluster: ``course autograde ASSIGNMENT --cluster ADDRESS``.

The local runner (`runner`) builds a private course directory for each submission and
grades it in a confined process on this machine. On a cluster the same happens, only
elsewhere:

1. **here**, the instructor's process builds the submission's private course directory
   with the runner's own `runner.prepare` (the configuration, the assignment's files
   without its source notebooks, this one submission, the gradebook template) and packs
   it into bytes: the solutions never leave this machine;
2. **on a Dask worker** (`grade_on_worker`), the bytes are unpacked into a scratch folder
   and graded by `runner.run_jobs` itself, one job, with the same limits and the same
   sandbox, and the same `worker.run` in a confined process of its own. A Dask worker
   runs other threads, so that process is forked from a clean single-threaded
   forkserver (which has imported nbgrader once) rather than from the worker;
3. the worker sends back the autograded notebooks (packed) and the log; **here**, they
   are unpacked and handed to ``on_result`` exactly as the local runner hands its
   results, so `autograde` merges them into the gradebook the same way.

A worker that dies while grading loses nothing: the scheduler gives the job to another
worker (once more workers died with it than ``distributed.scheduler.allowed-failures``,
3 by default, the job is "not graded" with that reason), and a result exists only once
a worker returned it whole. (The dead worker's grading process, orphaned, runs on until
its notebook ends, under nbgrader's per-cell timeout but no longer under the wall-time
limit, which the worker enforced; what it produces goes nowhere.)

Before grading, every worker is asked what it has (`environment`): a worker that cannot
import the course, runs another version of ``course_lib``, nbgrader or torch, or cannot
run the sandbox is reported in one line and given no job.

Dask (``pip install course-lib[cluster]``) is imported only here, only when used.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import multiprocessing.forkserver
import sys
import tarfile
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from course_lib.grading.course import Course, CourseError
from course_lib.grading.limits import Limits
from course_lib.grading.record import remove_tree
from course_lib.grading.runner import Job, JobResult, prepare, run_jobs

#: Packages whose versions must match the instructor's (they decide a grade).
SAME_VERSIONS = ("nbgrader", "torch", "numpy", "ipykernel", "nbclient")
#: Jobs waiting on the cluster per worker thread: enough to keep every worker busy
#: while a result travels, few enough not to hold a whole class in memory.
JOBS_PER_THREAD = 2
#: A job whose worker raised (not the submission: a submission's failure is a result)
#: is tried this many more times.
RETRIES = 2
CONNECT_TIMEOUT = 30  # seconds to reach the scheduler and see a first worker


# ------------------------------------------------------------------ packing folders


def pack(folder: Path) -> bytes:
    """A folder as the bytes of a gzipped tar (symbolic links are not followed)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=3) as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


def unpack(data: bytes, folder: Path) -> Path:
    """The bytes of `pack` into a new folder; tarfile's "data" filter refuses absolute
    paths, ``..``, links leading outside and device files."""
    folder.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    return folder


# ------------------------------------------------------------------ on a Dask worker


def _course_lib_digest() -> str:
    """A digest of the ``course_lib`` source this process imports (checkers included)."""
    import course_lib

    digest = hashlib.sha256()
    root = Path(course_lib.__file__).parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def environment(sandbox: bool) -> dict[str, str]:
    """What this machine grades with: Python, ``course_lib``, the packages that decide
    a grade, and why the sandbox cannot run here ("" when it can)."""
    from course_lib.grading.sandbox import sandbox_problem

    found = {"python": "{}.{}".format(*sys.version_info), "course_lib": _course_lib_digest()}
    for name in SAME_VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "missing"
    found["sandbox"] = sandbox_problem() if sandbox else ""
    return found


def _forkserver() -> multiprocessing.context.BaseContext:
    """A forkserver that has imported the grading code once (as the ``course`` process
    has locally), started now: `run_jobs` counts this process's children before grading
    and must find the forkserver among them. It imports the worker's main module once
    too (multiprocessing's default), which each grading process would import again."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", "course_lib.grading.worker"])
    multiprocessing.forkserver.ensure_running()
    return context


def grade_on_worker(bundle: bytes, assignment: str, student: str, limits: Limits) -> dict:
    """Grade one packed private course directory with `run_jobs`, on this worker."""
    from distributed import get_worker

    # A Nanny starts its worker as a daemonic process, and multiprocessing forbids those
    # to start children; `run_jobs` ends its grading processes itself.
    multiprocessing.current_process().daemon = False
    where = Path(tempfile.mkdtemp(prefix="course-cluster-"))
    sent: dict = {}

    def keep(result: JobResult) -> None:
        # called while the private folders still exist: pack the graded notebooks now
        sent.update(ok=result.ok, reason=result.reason, seconds=result.seconds, log=result.log,
                    autograded=pack(result.autograded) if result.ok else None)

    try:
        course = Course.load(unpack(bundle, where / "course"))
        job = Job(assignment, student, course.folder("submitted", student, assignment))
        scratch = where / "scratch"
        scratch.mkdir()
        run_jobs(course, [job], replace(limits, workers=1), course.root / "gradebook.db",
                 scratch, keep, context=_forkserver())
    finally:
        remove_tree(where)
    sent["worker"] = get_worker().address
    return sent


# ------------------------------------------------------------------ in the instructor's process


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}".rstrip(": ")


def differences(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """What keeps a worker whose environment is ``theirs`` from grading like this one."""
    found = []
    for name, value in mine.items():
        other = theirs.get(name, "missing")
        if name == "sandbox":
            if other:
                found.append(other)
        elif other != value:
            what = "another version of the course" if name == "course_lib" else f"yours: {value}"
            found.append(f"{name} {other} ({what})")
    return found


class ClusterRunner:
    """`run_jobs` on a Dask cluster: called with the same arguments, it grades each job on
    a worker and calls ``on_result`` here, one result at a time. Used as a context
    manager, which connects and checks the workers before anything is graded::

        with ClusterRunner("tcp://scheduler:8786", limits) as runner:
            autograde(course, assignment, limits, runner=runner)

    ``problems`` holds one line per worker that was given no job, and why."""

    def __init__(self, address: str, limits: Limits):
        self.address, self.limits = address, limits
        self.problems: list[str] = []
        self.able: dict[str, int] = {}  # address -> threads, of the workers that grade
        self.client = None

    def __enter__(self) -> ClusterRunner:
        from distributed import Client

        try:
            self.client = Client(self.address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as error:
            raise CourseError(f"no Dask scheduler at {self.address}: {_one_line(error)}") from None
        try:
            self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            self.client.close()
            raise CourseError(f"the Dask cluster at {self.address} has no worker "
                              f"(none joined within {CONNECT_TIMEOUT} s)") from None
        try:
            self._check_workers()
        except BaseException:
            self.client.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.client.close()

    def _check_workers(self) -> None:
        """Find the workers that can grade like this machine; one line in ``problems``
        for each of the others."""
        found = self.client.run(environment, self.limits.sandbox, on_error="return")
        mine = environment(sandbox=False)  # the sandbox runs on the workers, not here
        threads = {address: info["nthreads"]
                   for address, info in self.client.scheduler_info()["workers"].items()}
        for address, theirs in sorted(found.items()):
            if isinstance(theirs, BaseException):
                reasons = [f"it cannot run the course's code ({_one_line(theirs)})"]
            else:
                reasons = differences(mine, theirs)
            if reasons:
                self.problems.append(f"Dask worker {address} was given no job: "
                                     + "; ".join(reasons))
            else:
                self.able[address] = threads.get(address, 1)
        if not self.able:
            raise CourseError(f"no worker of the Dask cluster at {self.address} can grade: "
                              + " | ".join(self.problems))

    def __call__(
        self,
        course: Course,
        jobs: Iterable[Job],
        limits: Limits,
        template_db: Path,
        scratch: Path,
        on_result: Callable[[JobResult], None],
        on_start: Callable[[Job], None] | None = None,
    ) -> None:
        from distributed import as_completed

        client, pending = self.client, deque(jobs)
        in_flight: dict = {}  # future -> its job
        # only the able workers, unless none of them is left (a worker restarted after a
        # crash comes back at a new address)
        where = {"workers": list(self.able), "allow_other_workers": True} if self.problems else {}
        finished = as_completed()

        def submit() -> None:
            while pending and len(in_flight) < JOBS_PER_THREAD * sum(self.able.values()):
                job = pending.popleft()
                future = client.submit(
                    grade_on_worker, _bundle(course, job, template_db, scratch),
                    job.assignment, job.student, limits, pure=False, retries=RETRIES,
                    key=f"grade-{job.assignment}-{job.student}-{time.time_ns()}", **where,
                )
                in_flight[future] = job
                finished.add(future)
                if on_start:
                    on_start(job)

        try:
            submit()
            for future in finished:
                job = in_flight.pop(future)
                submit()  # the next job travels while this result is merged
                result = _job_result(job, future, scratch)
                future.release()
                try:
                    on_result(result)
                finally:
                    if result.autograded is not None:
                        remove_tree(result.autograded.parent)
        finally:
            client.cancel(list(in_flight))  # left only by an error or an interrupt here


def _bundle(course: Course, job: Job, template_db: Path, scratch: Path) -> bytes:
    """The submission's private course directory, built by the local runner's `prepare`,
    packed (the rest of the private job, its HOME and sockets, is made on the worker)."""
    spec = prepare(course, job, template_db, scratch)
    try:
        return pack(Path(spec["course"]))
    finally:
        remove_tree(Path(spec["workdir"]))
        remove_tree(Path(spec["ipc"]))


def _job_result(job: Job, future, scratch: Path) -> JobResult:
    """The worker's result as the local runner's `JobResult`; a job the cluster could not
    grade is "not graded", with the reason."""
    from distributed import KilledWorker

    try:
        sent = future.result()
    except KilledWorker:
        return JobResult(job, False, "the Dask workers grading it died again and again "
                         "(KilledWorker: distributed.scheduler.allowed-failures)", 0.0, None, "")
    except Exception as error:  # noqa: BLE001 - whatever the worker raised, one line
        return JobResult(job, False, f"the Dask cluster could not grade it: {_one_line(error)}",
                         0.0, None, "")
    log = f"graded on the Dask worker {sent['worker']}\n{sent['log']}"
    autograded = None
    if sent["ok"]:
        autograded = unpack(sent["autograded"],
                            Path(tempfile.mkdtemp(prefix=f"{job.student}-", dir=scratch)) / "nb")
    return JobResult(job, sent["ok"], sent["reason"], sent["seconds"], autograded, log)

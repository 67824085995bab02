"""Grading on a Dask cluster (`course_lib.grading.cluster`) against the local runner.

A `LocalCluster` of two worker processes, plus a third worker whose ``course_lib``
cannot be imported (a folder on its PYTHONPATH holds a ``course_lib`` that fails to
import, as on a node where the course's environment is missing). The same submissions
are graded by the local runner (``course autograde``, a subprocess) and on the cluster;
the gradebooks must be the same grade by grade. Then a worker is killed while it grades,
and the class must still come out whole.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT, copy_course
from grading_corpus import ASSIGNMENT, build_corpus

distributed = pytest.importorskip("distributed")  # the optional extra course-lib[cluster]

from course_lib.grading import autograde as autograde_module  # noqa: E402
from course_lib.grading.cluster import ClusterRunner, pack, unpack  # noqa: E402
from course_lib.grading.course import Course  # noqa: E402
from course_lib.grading.limits import Limits  # noqa: E402
from course_lib.grading.record import remove_tree  # noqa: E402

BIN = Path(sys.executable).parent
STUDENTS = ("solution", "untouched", "raises")
BROKEN_IMPORT = "course_lib is not installed on this worker"


def _submitted_course(base: Path, students=STUDENTS) -> Path:
    course = copy_course(base / "course")
    cases = {c.student: c for c in build_corpus(ROOT)}
    for student in students:
        cases[student].write(course)
    return course


def gradebook(course: Path) -> dict:
    """(student, notebook, grade cell) -> everything the gradebook says about it."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for submission in gb.assignment_submissions(ASSIGNMENT):
            for notebook in submission.notebooks:
                comments = {c.name: (c.auto_comment, c.manual_comment) for c in notebook.comments}
                for grade in notebook.grades:
                    rows[(submission.student.id, notebook.name, grade.name)] = (
                        grade.auto_score, grade.manual_score, grade.max_score,
                        grade.needs_manual_grade, notebook.flagged,
                        comments.get(grade.name),
                    )
    return rows


def grade_on_cluster(course: Path, address: str, monkeypatch):
    """`autograde` itself, its runner swapped for the cluster's (what ``--cluster`` does);
    returns the outcomes and the runner."""
    monkeypatch.setenv("PATH", f"{BIN}{os.pathsep}{os.environ['PATH']}")  # alembic
    loaded = Course.load(course)
    limits = Limits.from_config(loaded.config, workers=2)
    with ClusterRunner(address, limits) as runner:
        monkeypatch.setattr(autograde_module, "run_jobs", runner)
        outcomes, tampered = autograde_module.autograde(loaded, ASSIGNMENT, limits)
    assert not tampered
    return {o.student: o for o in outcomes}, runner


@pytest.fixture(scope="module")
def local_grades(tmp_path_factory, tool_env):
    """The local runner's gradebook for the three students (before any cluster starts:
    the command forks its grading processes)."""
    course = _submitted_course(tmp_path_factory.mktemp("local"))
    result = subprocess.run(
        [str(BIN / "course"), "autograde", ASSIGNMENT, "--no-progress", "--workers", "2"],
        cwd=course, env=tool_env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return gradebook(course)


@pytest.fixture(scope="module")
def cluster(local_grades, tmp_path_factory, tool_env):
    """Two good workers (processes, one thread each) and one without the course."""
    shadow = tmp_path_factory.mktemp("shadow") / "course_lib"
    shadow.mkdir()
    (shadow / "__init__.py").write_text(f"raise ImportError({BROKEN_IMPORT!r})\n")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, silence_logs=logging.ERROR) as local:
        env = {**tool_env, "PYTHONPATH": str(shadow.parent)}
        broken = subprocess.Popen(
            [str(BIN / "dask"), "worker", local.scheduler_address, "--nthreads", "1",
             "--no-nanny", "--no-dashboard", "--name", "without-course-lib"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            with distributed.Client(local) as client:
                client.wait_for_workers(3, timeout=120)
                broken_address = next(a for a, w in client.scheduler_info()["workers"].items()
                                      if w["name"] == "without-course-lib")
            yield local, broken_address
        finally:
            broken.kill()
            broken.wait()


# ------------------------------------------------------------------ packing, no cluster


def test_a_packed_folder_comes_back_whole_and_nothing_escapes_it(tmp_path):
    folder = tmp_path / "private"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "graded.ipynb").write_bytes(b"\x00\xff notebook")
    (folder / "gradebook.db").write_text("grades")
    back = unpack(pack(folder), tmp_path / "back")
    assert (back / "sub" / "graded.ipynb").read_bytes() == b"\x00\xff notebook"
    assert (back / "gradebook.db").read_text() == "grades"

    # a tar naming a file outside its folder is refused, not written there
    outside = tmp_path / "outside.txt"
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(folder / "gradebook.db", arcname="../outside.txt")
    with pytest.raises(tarfile.FilterError):
        unpack(bad.read_bytes(), tmp_path / "bad")
    assert not outside.exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path, monkeypatch):
    from course_lib.grading import cluster as cluster_module
    from course_lib.grading.course import CourseError

    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT", 2)
    limits = Limits(memory_mb=4096, wall_time=60, workers=1)
    # the discard port: nobody listens
    with pytest.raises(CourseError, match=r"no Dask scheduler at tcp://127.0.0.1:9") as error:
        with ClusterRunner("tcp://127.0.0.1:9", limits):
            pass
    assert "\n" not in str(error.value)


class _Failed:
    """A future whose task ended in an error on the cluster."""

    def __init__(self, error: BaseException):
        self.error = error

    def result(self):
        raise self.error


@pytest.mark.parametrize(("error", "words"), [
    (distributed.KilledWorker("grade-x", None, 3), "died again and again"),
    (ImportError("No module named 'course_lib'"), "No module named 'course_lib'"),
])
def test_a_job_the_cluster_could_not_grade_is_not_graded_with_one_line(error, words,
                                                                       tmp_path):
    from course_lib.grading.cluster import _job_result
    from course_lib.grading.runner import Job

    job = Job(ASSIGNMENT, "alice", tmp_path)
    result = _job_result(job, _Failed(error), tmp_path)
    assert (result.ok, result.autograded, result.job) == (False, None, job)
    assert words in result.reason and "\n" not in result.reason


# ------------------------------------------------------------------ on the LocalCluster


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*not in session:Warning")  # nbgrader + SQLAlchemy 2
def test_the_cluster_gives_the_local_runners_gradebook(cluster, local_grades, tmp_path,
                                                       monkeypatch):
    local, broken_address = cluster
    course = _submitted_course(tmp_path)
    outcomes, runner = grade_on_cluster(course, local.scheduler_address, monkeypatch)

    assert {s: o.status for s, o in outcomes.items()} == dict.fromkeys(STUDENTS, "graded")
    assert gradebook(course) == local_grades
    # the worker without the course: one line, naming it and why, and no job
    assert len(runner.problems) == 1, runner.problems
    line = runner.problems[0]
    assert "\n" not in line and broken_address in line and BROKEN_IMPORT in line
    assert len(runner.able) == 2
    for student in STUDENTS:
        log = (course / "autograded" / student / f"{ASSIGNMENT}.log").read_text()
        assert log.startswith("graded on the Dask worker tcp://")
        assert broken_address not in log.splitlines()[0]


def _grading_student(worker: psutil.Process, students) -> str | None:
    """The student whose kernel runs under this worker process, if a kernel runs."""
    try:
        tree = worker.children(recursive=True)
    except psutil.Error:
        return None
    kernel = any("ipykernel" in " ".join(p.cmdline()) for p in tree if _exists(p))
    for process in tree if kernel else []:
        try:
            match = re.search(r"/([^/]+)-[^/-]+/course$", process.cwd())
        except psutil.Error:
            continue
        if match and match.group(1) in students:
            return match.group(1)
    return None


def _exists(process: psutil.Process) -> bool:
    try:
        process.cmdline()
        return True
    except psutil.Error:
        return False


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*not in session:Warning")
def test_a_worker_killed_while_grading_loses_nothing(cluster, local_grades, tmp_path,
                                                     monkeypatch):
    local, broken_address = cluster
    students = ("solution", "untouched")
    course = _submitted_course(tmp_path, students)
    with distributed.Client(local) as client:
        pids = {address: pid for address, pid in client.run(os.getpid).items()
                if address != broken_address}
    killed: dict = {}

    def kill_one_mid_job() -> None:
        """SIGKILL the first worker seen running a student's kernel (a node lost)."""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for address, pid in pids.items():
                student = _grading_student(psutil.Process(pid), students)
                if student:
                    orphans = psutil.Process(pid).children(recursive=True)
                    os.kill(pid, signal.SIGKILL)
                    killed.update(address=address, student=student, orphans=orphans)
                    return
            time.sleep(0.1)

    scratch_before = set(Path(tempfile.gettempdir()).glob("course-cluster-*"))
    killer = threading.Thread(target=kill_one_mid_job)
    killer.start()
    try:
        outcomes, _ = grade_on_cluster(course, local.scheduler_address, monkeypatch)
    finally:
        killer.join()
        for process in killed.get("orphans", []):  # what the dead worker left running
            try:
                process.kill()
            except psutil.Error:
                pass
        # and its scratch folder (a lost node's is the batch system's to clean)
        for folder in set(Path(tempfile.gettempdir()).glob("course-cluster-*")) - scratch_before:
            remove_tree(folder)
    assert killed, "no worker was seen grading: the test did not kill anything"

    assert {s: o.status for s, o in outcomes.items()} == dict.fromkeys(students, "graded")
    expected = {key: value for key, value in local_grades.items() if key[0] in students}
    assert gradebook(course) == expected
    log = (course / "autograded" / killed["student"] / f"{ASSIGNMENT}.log").read_text()
    first = log.splitlines()[0]
    assert first.startswith("graded on the Dask worker ") and killed["address"] not in first

"""A variant per student: hidden tests on seeds derived from a course secret.

A hidden test calls its checker with ``seed=variant(1992)`` instead of ``seed=1992``.
When a submission is graded, its kernel gets ``COURSE_VARIANT=<key>``, where

    key = HMAC-SHA256(secret, "<assignment>/<student>")

and `course_lib.checks._common.variant` turns the literal seed into a 31-bit seed of
that key. So two students' hidden cases differ (an output copied from someone else, or
hard-coded for the literal seed, fails), and re-grading a submission gives the same
seeds and the same score. Without a secret, hidden tests use the literal seeds.

**The secret** is the instructor's: ``c.CourseVariants.secret = "<hex>"`` in their own
``~/.jupyter/nbgrader_config.py`` (outside the repository; ``python -m
course_lib.grading.variants`` prints a new one), or the environment variable
``COURSE_VARIANT_SECRET`` (CI, tests).
It stays in the instructor's process: only the per-student key travels with a job, and
the key of one student says nothing about another's. (The course's own
``nbgrader_config.py`` must not hold it: the repository is public to the class.)

**The property** (`fairness_problems`, run by `course check`): for many random student
ids, the solution passes every test cell and the untouched release fails every one. Each
notebook is executed once, in a sandboxed kernel as the grader runs it, and each test
cell is run again under every id's key, right where it stands in the notebook; a cell's
grade is nbgrader's own `determine_grade` of its outputs.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
from pathlib import Path

SECRET_ENV = "COURSE_VARIANT_SECRET"
KERNEL_ENV = "COURSE_VARIANT"  # what the kernel gets: the student's key, never the secret
CONFIG_SECTION = "CourseVariants"
#: Random student ids the property is checked on (``course check --variant-ids N``).
DEFAULT_IDS = 50
#: The kernel's environment as the grader sets it (see `worker.kernel_environment`).
KERNEL_SETTINGS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                   "MPLBACKEND": "Agg", "NBGRADER_EXECUTION": "autograde"}


def make_secret() -> str:
    """A new course secret: 32 random bytes, hexadecimal."""
    return secrets.token_hex(32)


def _user_config_secret() -> str:
    """``c.CourseVariants.secret`` of the instructor's own ``nbgrader_config.py``."""
    from jupyter_core.paths import jupyter_config_dir
    from traitlets.config.loader import PyFileConfigLoader

    folder = Path(jupyter_config_dir())
    if not (folder / "nbgrader_config.py").is_file():
        return ""
    config = PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()
    return str(config[CONFIG_SECTION].get("secret", "") or "") \
        if CONFIG_SECTION in config else ""


def load_secret() -> str:
    """The course secret: ``$COURSE_VARIANT_SECRET``, else the instructor's own
    configuration; "" when there is none (variants off)."""
    return os.environ.get(SECRET_ENV, "") or _user_config_secret()


def variant_key(secret: str, assignment: str, student: str) -> str:
    """The student's key for an assignment (hexadecimal HMAC-SHA256)."""
    message = f"{assignment}/{student}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def job_key(course_config, assignment: str, student: str) -> str:
    """The key a grading job carries: the one already in the job's configuration (a job
    built by the instructor's process and unpacked on a cluster worker), else derived
    from the secret here; "" when variants are off."""
    given = course_config[CONFIG_SECTION].get("key", "") \
        if CONFIG_SECTION in course_config else ""
    if given:
        return str(given)
    secret = load_secret()
    return variant_key(secret, assignment, student) if secret else ""


def summary() -> str:
    """One line for ``course check`` and ``course autograde``."""
    if load_secret():
        return "Variants are on: hidden tests use each student's own seeds."
    return (f"Variants are off (no {CONFIG_SECTION}.secret in ~/.jupyter/nbgrader_config.py "
            f"and no ${SECRET_ENV}): hidden tests use the literal seeds.")


# ------------------------------------------------------------------ the property


def random_ids(count: int) -> list[str]:
    """``count`` random student ids (new ones on every run)."""
    return [f"student-{secrets.token_hex(4)}" for _ in range(count)]


def _is_test_cell(cell) -> bool:
    grading = cell.get("metadata", {}).get("nbgrader", {})
    return cell.cell_type == "code" and grading.get("grade") and not grading.get("solution")


def as_graded(notebook, source):
    """``notebook`` with its test cells replaced by the source's, as nbgrader's
    ``OverwriteCells`` does at autograde (the release holds no hidden tests)."""
    tests = {c.metadata.nbgrader["grade_id"]: c.source for c in source.cells if _is_test_cell(c)}
    for cell in notebook.cells:
        if _is_test_cell(cell) and cell.metadata.nbgrader["grade_id"] in tests:
            cell.source = tests[cell.metadata.nbgrader["grade_id"]]
    return notebook


def _set_key(key: str) -> str:
    return f"import os as _os\n_os.environ[{KERNEL_ENV!r}] = {key!r}\ndel _os"


def _run(client, source: str, index: int):
    """Run ``source`` in the kernel as if at cell ``index``; the notebook keeps its own
    cell (nbclient's ``execute_cell`` stores the cell it ran in the notebook)."""
    from nbformat.v4 import new_code_cell

    kept = client.nb.cells[index]
    cell = client.execute_cell(new_code_cell(source), index)
    client.nb.cells[index] = kept
    return cell


def grades_under_keys(notebook, keys: list[str], client) -> dict[str, list[float]]:
    """Execute ``notebook`` with ``client`` (an nbclient ``NotebookClient`` on it, kernel
    started); after each test cell, run it again under every key. Returns, per test
    cell, the fraction of its points it earned under each key (nbgrader's own
    `determine_grade`: no error and nothing on stderr)."""
    from nbgrader.utils import determine_grade

    passed: dict[str, list[float]] = {}
    # short tracebacks: the grade depends on whether a cell failed, not on how IPython
    # formats the failure (its long tracebacks cost more than the checks themselves)
    _run(client, "%xmode Minimal", 0)
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        client.execute_cell(cell, index)
        if not _is_test_cell(cell):
            continue
        results = []
        for key in keys:
            _run(client, _set_key(key), index)
            trial = _run(client, cell.source, index)
            trial.metadata = cell.metadata
            score, points = determine_grade(trial)
            results.append((score or 0.0) / points)
        _run(client, _set_key(""), index)
        passed[cell.metadata.nbgrader["grade_id"]] = results
    return passed


def _client(notebook, workdir: Path, sandbox: bool, hidden: list[str], packages: Path | None,
            ipc: str):
    """An nbclient client whose kernel runs as the grader's does (sandboxed, one thread)."""
    from nbclient import NotebookClient

    from course_lib.grading.sandbox import SandboxedKernelManager

    os.environ.update(KERNEL_SETTINGS)
    os.environ.pop(KERNEL_ENV, None)
    os.environ.pop(SECRET_ENV, None)  # not in the kernel's environment, whatever happens
    client = NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    if sandbox:
        private = Path(tempfile.mkdtemp(prefix="private-", dir=workdir.parent))
        client.kernel_manager_class = SandboxedKernelManager
        client.km = SandboxedKernelManager(
            kernel_name="python3", private=str(private), hidden=hidden,
            packages=str(packages) if packages else "",
            ipc_folder=ipc,
        )
    return client


def fairness_problems(course, assignment: str, count: int = DEFAULT_IDS,
                      sandbox: bool = True, *, ids: list[str] | None = None,
                      secret: str = "") -> dict[str, list[str]]:
    """For ``count`` random student ids (or ``ids``), under a fresh secret (or
    ``secret``): the solution passes every test cell and the untouched release fails
    every one. Returns one line per (notebook, cell, id) that does not, under
    ``"solution"`` and ``"untouched"``."""
    import nbformat

    from course_lib.grading.runner import _short_folder
    from course_lib.grading.sandbox import snapshot_course_lib

    ids, secret = ids or random_ids(count), secret or make_secret()
    keys = [variant_key(secret, assignment, student) for student in ids]
    problems: dict[str, list[str]] = {"solution": [], "untouched": []}
    saved = {name: os.environ.get(name) for name in (SECRET_ENV, KERNEL_ENV, *KERNEL_SETTINGS)}
    with tempfile.TemporaryDirectory(prefix="course-variants-") as scratch:
        scratch = Path(scratch)
        packages = snapshot_course_lib(scratch / "packages") if sandbox else None
        for source_path in sorted(course.folder("source", ".", assignment).glob("*.ipynb")):
            source = nbformat.read(source_path, as_version=4)
            release_path = course.folder("release", ".", assignment) / source_path.name
            cases = [("solution", source, True)]
            if release_path.exists():
                untouched = as_graded(nbformat.read(release_path, as_version=4), source)
                cases.append(("untouched", untouched, False))
            for who, notebook, should_pass in cases:
                workdir = Path(tempfile.mkdtemp(prefix="work-", dir=scratch))
                ipc = _short_folder(scratch / "ipc")  # for the kernel's sockets
                client = _client(notebook, workdir, sandbox,
                                 [str(course.root), str(scratch)], packages, ipc)
                try:
                    with client.setup_kernel():
                        grades = grades_under_keys(notebook, keys, client)
                finally:
                    _restore(saved)
                    shutil.rmtree(ipc, ignore_errors=True)  # in /tmp if scratch's is too long
                for cell, results in grades.items():
                    for student, key, earned in zip(ids, keys, results, strict=True):
                        if earned != (1.0 if should_pass else 0.0):
                            problems[who].append(
                                f"{source_path.name}/{cell}: {earned:.0%} of its points for "
                                f"student id {student} ({KERNEL_ENV}={key})")
    return problems


def _restore(saved: dict) -> None:
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


if __name__ == "__main__":  # python -m course_lib.grading.variants: a new course secret
    print(make_secret())

"""What runs in the process that grades one submission.

The parallel grader forks one such process per submission from the ``course`` process,
which has already imported nbgrader (see `runner`). The process:

1. confines itself (`limits.confine_this_process`): own session, child subreaper,
   address-space limit inherited by the kernel, no core dumps;
2. sends its stdout and stderr (nbgrader's log, the kernel's own messages) to a log file;
3. gives the kernel a private environment: ``HOME``, ``TMPDIR`` and Jupyter's runtime
   folder inside the job's private directory, one thread for OpenMP/MKL/torch;
4. runs nbgrader's ``Autograde`` converter (as ``NbGraderAPI.autograde`` does) on the
   private course directory, with the recording preprocessors removed (see `record`)
   and nbgrader's duplicated-cell bug worked around (see `nbgrader_fixes`);
5. writes ``result.json`` and kills anything the submission left running.
"""

from __future__ import annotations

import json
import logging
import os
import site
import sys
import time
import traceback
from pathlib import Path

# Imported at module level, in the parent, so that every forked grading process has them.
import nbgrader.converters  # noqa: F401
import nbgrader.utils  # noqa: F401
from jupyter_core.paths import jupyter_data_dir

from course_lib.grading.course import Course, load_config
from course_lib.grading.limits import confine_this_process, kill_tree
from course_lib.grading.nbgrader_fixes import sanitize_preprocessors
from course_lib.grading.record import split_preprocessors


def kernel_environment(job: dict) -> dict[str, str]:
    """Environment variables for the grading process and the kernel it starts."""
    work = Path(job["workdir"])
    extra_paths = [p for p in (os.environ.get("JUPYTER_PATH"), job.get("user_data")) if p]
    env = {
        "HOME": str(work / "home"),
        "TMPDIR": str(work / "tmp"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"),
        "PWD": job["course"],
        # the kernels grading side by side share the cores: one thread each
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(work / "home" / ".matplotlib"),  # seeded with the font cache
    }
    if extra_paths:
        env["JUPYTER_PATH"] = os.pathsep.join(extra_paths)  # a kernel installed with --user
    if job.get("user_base"):
        env["PYTHONUSERBASE"] = job["user_base"]  # packages installed with pip --user
    return env


def host_paths() -> dict[str, str]:
    """Where the real HOME keeps user-installed kernels and packages (read before the
    grading process moves HOME into its private directory)."""
    paths = {"user_base": site.getuserbase()}
    paths["user_data"] = jupyter_data_dir()
    return paths


def grade(job: dict) -> dict:
    """Run nbgrader's autograde for one student in the private course directory."""
    course = Course(Path(job["course"]), load_config(Path(job["course"])))
    config = course.config
    config.CourseDirectory.db_url = f"sqlite:///{course.root / 'gradebook.db'}"
    execute, _ = split_preprocessors(config)
    config.Autograde.autograde_preprocessors = execute
    config.Autograde.sanitize_preprocessors = sanitize_preprocessors(config)

    log = logging.getLogger(f"course.worker.{job['student']}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)s] %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    result = course.run_nbgrader(
        "Autograde", job["assignment"], job["student"], log=log, force=True,
        create_student=True,
    )
    return {"success": bool(result.get("success")), "error": result.get("error", "")}


def run(job: dict) -> None:
    """Entry point of the grading process (a multiprocessing target)."""
    confine_this_process(job["memory_mb"])
    log_fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.update(kernel_environment(job))
    os.chdir(job["course"])
    preloaded = "nbgrader.converters" in sys.modules
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} grading {job['student']} in {job['course']} "
          f"(nbgrader {'already' if preloaded else 'not yet'} imported)", flush=True)
    try:
        result = grade(job)
    except BaseException:  # noqa: BLE001 - everything is reported to the parent
        result = {"success": False, "error": traceback.format_exc()}
    finally:
        kill_tree(os.getpid(), include_root=False, reap=True)
    Path(job["result"]).write_text(json.dumps(result))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

"""What runs in the process that grades one submission.

The parallel grader forks one such process per submission from the ``course`` process,
which has already imported nbgrader (see `runner`). The process:

1. confines itself (`limits.confine_this_process`): own session, child subreaper,
   address-space limit inherited by the kernel, no core dumps; and joins the
   submission's memory cgroup when there is one (`limits.MemoryGroup`);
2. sends its stdout and stderr (nbgrader's log) to a log file; the kernel's own output
   goes to another file, which the kernel cannot use to write the grader's log;
3. gives the kernel a private environment: ``HOME`` and ``TMPDIR`` inside the job's
   private folder, one thread for OpenMP/MKL/torch;
4. runs nbgrader's ``Autograde`` converter (as ``NbGraderAPI.autograde`` does) on the
   private course directory, with the recording preprocessors removed (see `record`),
   nbgrader's duplicated-cell bug worked around (see `nbgrader_fixes`), and nbgrader's
   ``Execute`` replaced by `GradingExecute`: the kernel in the sandbox (`sandbox`), and
   the output limits;
5. kills anything the submission left running and sends its result to the parent
   through a pipe (never a file: the kernel must not be able to write a result).
"""

from __future__ import annotations

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
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_data_dir
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Bool, Integer

from course_lib.grading.course import Course, load_config
from course_lib.grading.limits import MemoryGroup, confine_this_process, kill_tree
from course_lib.grading.nbgrader_fixes import sanitize_preprocessors
from course_lib.grading.record import split_preprocessors
from course_lib.grading.sandbox import SandboxedKernelManager

NOTE_CELL = "[output truncated: this cell printed more than {kb} KiB; the rest was dropped]\n"
NOTE_NOTEBOOK = ("[output truncated: the notebook printed more than {kb} KiB; "
                 "the rest was dropped]\n")
ERROR_SENT = 8000  # characters of nbgrader's error sent to the parent
SHORT = 2000  # characters kept of an error or stderr output past the limit


def _size(output) -> int:
    """Bytes an output takes in the notebook, roughly (its text and data)."""
    if output.output_type == "stream":
        return len(output.get("text", "").encode("utf-8", "replace"))
    if output.output_type == "error":
        return sum(len(line) for line in output.get("traceback", []))
    data = output.get("data", {})
    return sum(len(str(value)) for value in data.values())


def _shortened(output):
    """An error, stderr or execute_result output cut down to a few lines: past the
    output limit, it is kept (nbgrader grades a test cell on the first of them)."""
    if output.output_type == "stream":
        output.text = output.text[:SHORT]
    elif output.output_type == "error":
        output.traceback = [line[:SHORT] for line in output.traceback[:3]]
    else:  # execute_result
        output.data = {"text/plain": str(output.get("data", {}).get("text/plain", ""))[:SHORT]}
    return output


class GradingExecute(Execute):
    """nbgrader's ``Execute`` with the kernel in the sandbox and limits on the output it
    keeps (``c.Execute.*`` settings still apply).

    Past a cell's or the notebook's output budget, outputs are dropped and a note (on
    stdout, which does not change a grade) says so; what decides a test cell's grade is
    kept, shortened: every error, the first stderr output, the first result."""

    sandboxed = Bool(True, config=True, help="Start the kernel in bubblewrap.")
    cell_output_bytes = Integer(1024 * 1024, config=True)
    notebook_output_bytes = Integer(10 * 1024 * 1024, config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_manager_class = (
            SandboxedKernelManager if self.sandboxed else AsyncKernelManager
        )

    def reset_execution_trackers(self) -> None:
        """nbclient calls this before each notebook: the output budgets start afresh."""
        super().reset_execution_trackers()
        self._cell_bytes: dict[int, int] = {}
        self._notebook_bytes = 0
        self._kept_past_limit: dict[int, set] = {}

    def output(self, outs, msg, display_id, cell_index):
        out = super().output(outs, msg, display_id, cell_index)
        if out is None:
            return None
        size = _size(out)
        cell_left = self.cell_output_bytes - self._cell_bytes.get(cell_index, 0)
        left = min(cell_left, self.notebook_output_bytes - self._notebook_bytes)
        if size <= left:
            self._count(cell_index, size)
            return out
        self._forget(outs, out, display_id, cell_index)
        kept = self._kept_past_limit.setdefault(cell_index, set())
        kind = "stderr" if out.get("name") == "stderr" else out.output_type
        if out.output_type == "stream" and left > 0:  # the head of a long stream
            out.text = out.text.encode("utf-8")[:left].decode("utf-8", "ignore")
            self._count(cell_index, left)
            outs.append(out)
            kept.add(kind)
        if "note" not in kept:  # once per cell, right after the last output kept
            budget = self.cell_output_bytes if cell_left <= left else self.notebook_output_bytes
            text = (NOTE_CELL if cell_left <= left else NOTE_NOTEBOOK).format(kb=budget // 1024)
            outs.append(new_output("stream", name="stdout", text=text))
            kept.add("note")
        if kind == "error" or (kind in ("stderr", "execute_result") and kind not in kept):
            kept.add(kind)
            outs.append(_shortened(out))
        return None

    def _count(self, cell_index: int, size: int) -> None:
        self._cell_bytes[cell_index] = self._cell_bytes.get(cell_index, 0) + size
        self._notebook_bytes += size

    def _forget(self, outs, out, display_id, cell_index) -> None:
        """Undo what nbclient's ``output`` recorded for a dropped output."""
        if outs and outs[-1] is out:
            outs.pop()
        if display_id:
            indices = self._display_id_map.get(display_id, {}).get(cell_index, [])
            if indices:
                indices.pop()


def kernel_environment(job: dict) -> dict[str, str]:
    """Environment variables for the grading process and the kernel it starts (the
    sandbox gives its kernel only some of them, with its own paths; see `sandbox`)."""
    private = Path(job["private"])
    extra_paths = [p for p in (os.environ.get("JUPYTER_PATH"), job.get("user_data")) if p]
    env = {
        "HOME": str(private / "home"),
        "TMPDIR": str(private / "tmp"),
        "JUPYTER_RUNTIME_DIR": str(Path(job["workdir"]) / "runtime"),
        "PWD": job["course"],
        # the kernels grading side by side share the cores: one thread each
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(private / "home" / ".matplotlib"),  # seeded with the font cache
        "COURSE_VARIANT": job.get("variant", ""),  # the student's key: their hidden seeds
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


def _configure_execution(config, job: dict) -> None:
    """nbgrader's Execute replaced by GradingExecute, and the sandbox's settings."""
    config.GradingExecute.sandboxed = job["sandbox"]
    config.GradingExecute.cell_output_bytes = job["cell_output_kb"] * 1024
    config.GradingExecute.notebook_output_bytes = job["notebook_output_kb"] * 1024
    sandbox = config.SandboxedKernelManager
    sandbox.private = job["private"]
    sandbox.ipc_folder = job["ipc"]
    sandbox.packages = job["packages"] or ""
    sandbox.hidden = job["hidden"]
    sandbox.file_size = job["disk_mb"] * 2**20
    sandbox.kernel_log = job["kernel_log"]


def grade(job: dict) -> dict:
    """Run nbgrader's autograde for one student in the private course directory."""
    course = Course(Path(job["course"]), load_config(Path(job["course"])))
    config = course.config
    config.CourseDirectory.db_url = f"sqlite:///{course.root / 'gradebook.db'}"
    execute, _ = split_preprocessors(config)
    execute = [GradingExecute if _is_execute(p) else p for p in execute]
    config.Autograde.autograde_preprocessors = execute
    config.Autograde.sanitize_preprocessors = sanitize_preprocessors(config)
    _configure_execution(config, job)

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


def _is_execute(preprocessor) -> bool:
    if isinstance(preprocessor, str):
        return preprocessor.rsplit(".", 1)[-1] == "Execute"
    return preprocessor is Execute


def run(job: dict, channel) -> None:
    """Entry point of the grading process (a multiprocessing target); ``channel`` is the
    writing end of the pipe to the parent."""
    confine_this_process(job["memory_mb"])
    if job.get("cgroup"):
        MemoryGroup(Path(job["cgroup"]), job["cgroup_version"]).join()
    log_fd = os.open(job["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    os.environ.pop("COURSE_VARIANT_SECRET", None)  # not for the kernel, even unsandboxed
    os.environ.update(kernel_environment(job))
    os.chdir(job["course"])
    preloaded = "nbgrader.converters" in sys.modules
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} grading {job['student']} in {job['course']} "
          f"(nbgrader {'already' if preloaded else 'not yet'} imported, "
          f"{'in the sandbox' if job['sandbox'] else 'WITHOUT the sandbox'})", flush=True)
    try:
        result = grade(job)
    except BaseException:  # noqa: BLE001 - everything is reported to the parent
        result = {"success": False, "error": traceback.format_exc()}
    finally:
        kill_tree(os.getpid(), include_root=False, reap=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # short, so that it fits in the pipe's buffer before the parent reads it
    result["error"] = result["error"][-ERROR_SENT:]
    channel.send(result)
    channel.close()
    os._exit(0)

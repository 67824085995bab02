"""The student's kernel in a bubblewrap sandbox; nbgrader and the grader stay outside.

nbgrader executes a notebook with nbclient, which starts the kernel through a
``jupyter_client`` kernel manager. `SandboxedKernelManager` starts the same kernel
command inside ``bwrap`` (Debian package ``bubblewrap``; no daemon, no root needed):

- ``--unshare-all``: no network, its own PID namespace (no parent process, so no
  ``/proc/<pid>/cwd`` of the grader), ``--die-with-parent``: the whole sandbox dies with
  the grading process;
- the filesystem is **read-only** and holds only what Python needs: the system folders,
  a few files of ``/etc``, the Python installations, and a snapshot of ``course_lib``
  (`snapshot_course_lib`) at a neutral path on ``PYTHONPATH``, so ``course_lib.__file__``
  leads nowhere. The course directory (``solutions/``, ``submitted/``, the gradebook,
  ``nbgrader_config.py``), the instructor's HOME and Jupyter paths, and the other
  students' private folders are not there;
- writable: the kernel's working folder, HOME and ``/tmp``, all three inside one private
  host folder (``private``) that the grader watches for size. The working folder is a
  **copy** of the folder nbgrader runs the notebook in, bound at the same path: the
  kernel sees its files, but nothing it writes lands where nbgrader writes the graded
  notebook (a symbolic link planted there would make the grader write elsewhere);
- ZMQ runs over IPC sockets in a short folder bound into the sandbox at the same path;
- an interrupt (nbclient's per-cell timeout) is a SIGINT to the processes *inside* the
  sandbox: the process-group signal jupyter_client sends would kill ``bwrap`` itself.
"""

from __future__ import annotations

import compileall
import functools
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
from jupyter_client.manager import AsyncKernelManager
from traitlets import CaselessStrEnum, Integer, List, Unicode

#: Where the course_lib snapshot appears inside the sandbox (on PYTHONPATH).
PACKAGES = "/opt/course-packages"
#: The kernel's HOME inside the sandbox.
HOME = "/home/student"
#: Environment variables passed from the grading process to the kernel; nothing else
#: (the instructor's tokens and paths stay outside).
PASSED_ENV = ("LANG", "LC_ALL", "LC_CTYPE", "TZ", "MPLBACKEND", "OMP_NUM_THREADS",
              "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED", "PYTHONWARNINGS",
              "COURSE_VARIANT")
PASSED_PREFIXES = ("NBGRADER_", "JPY_")
#: System folders bound read-only (those that exist; symbolic links are recreated).
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
#: The few files of /etc a Python kernel reads (not /etc itself: /etc/shadow is readable
#: by a kernel whose user maps to root).
ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd",
       "group", "nsswitch.conf", "hosts", "alternatives", "mime.types", "fonts",
       "matplotlibrc", "ssl")
ENABLE = ("install Debian's bubblewrap package (apt-get install bubblewrap) and allow "
          "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1), "
          "or grade without the sandbox with --no-sandbox")


class SandboxError(RuntimeError):
    """The sandbox cannot be started (the message says how to enable it)."""


def bwrap_path() -> str | None:
    """The bwrap executable: ``$COURSE_BWRAP`` if set (tests point it at a missing file),
    else ``bwrap`` on PATH."""
    configured = os.environ.get("COURSE_BWRAP")
    if configured is not None:
        return configured
    return shutil.which("bwrap")


@functools.lru_cache(maxsize=8)
def _probe(bwrap: str | None) -> str:
    if not bwrap or not os.access(bwrap, os.X_OK):
        return f"bubblewrap not found ({bwrap or 'no bwrap on PATH'})"
    command = [bwrap, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent",
               "--proc", "/proc", "--dev", "/dev", "true"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"bubblewrap cannot run: {error}"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        return f"bubblewrap cannot create namespaces ({lines[-1]})"
    return ""


def sandbox_problem() -> str:
    """Why the sandbox cannot run here, in one line, or "" when it can."""
    problem = _probe(bwrap_path())
    return f"{problem}: {ENABLE}" if problem else ""


def snapshot_course_lib(destination: Path) -> Path:
    """A read-only copy of the ``course_lib`` package (byte-compiled once, so that no
    kernel compiles it again), made once per grading run outside the course directory.
    Returns the folder to put on ``PYTHONPATH``."""
    import course_lib

    source = Path(course_lib.__file__).resolve().parent
    target = destination / "course_lib"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    compileall.compile_dir(str(target), quiet=2, workers=1)
    return destination  # bound read-only into the sandbox


def _prefix(executable: str) -> Path:
    """The installation an interpreter belongs to (the parent of its ``bin/``)."""
    return Path(executable).parent.parent


def _covered(path: Path, folders: list[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def python_folders(kernel_executable: str | None = None) -> list[Path]:
    """The Python installations the kernel needs (this environment, its base, the
    kernel's own), outside the system folders."""
    candidates = [Path(sys.prefix), Path(sys.base_prefix)]
    if kernel_executable and os.path.isabs(kernel_executable):
        candidates += [_prefix(kernel_executable), _prefix(os.path.realpath(kernel_executable))]
    system = [Path(p) for p in SYSTEM]
    folders: list[Path] = []
    for path in candidates:
        for variant in {path, Path(os.path.realpath(path))}:
            if variant.is_dir() and not _covered(variant, system + folders):
                folders.append(variant)
    return folders


def _read_only(paths) -> list[str]:
    args = []
    for path in paths:
        path = str(path)
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.exists(path):
            args += ["--ro-bind", path, path]
    return args


def bwrap_command(bwrap: str, command: list[str], *, cwd: str, private: Path, ipc: Path,
                  packages: Path | None, hidden: list[Path]) -> list[str]:
    """The ``bwrap`` command line that runs ``command`` in the sandbox (see the module
    docstring). ``hidden`` are folders that must not be visible (the course directory);
    a Python installation inside one of them is refused."""
    pythons = python_folders(command[0] if command else None)
    for folder in pythons:
        for secret in hidden:
            if folder == secret or folder in secret.parents:
                raise SandboxError(
                    f"the Python installation {folder} contains {secret}, which the "
                    "sandbox must hide: install the environment outside the course directory"
                )
    args = [bwrap, "--unshare-all", "--die-with-parent", "--new-session",
            "--proc", "/proc", "--dev", "/dev",
            # the private /tmp first: the binds below may lie under /tmp (a course or an
            # environment cloned there) and must be mounted on top of it, not hidden by it
            "--bind", str(private / "tmp"), "/tmp"]
    args += _read_only(SYSTEM)
    args += _read_only(f"/etc/{name}" for name in ETC)
    args += _read_only(pythons)
    if packages is not None:
        args += ["--ro-bind", str(packages), PACKAGES]
    args += ["--bind", str(private / "home"), HOME,
             "--bind", str(private / "work"), cwd,
             "--bind", str(ipc), str(ipc),
             "--remount-ro", "/",  # the sandbox's own root folder too
             "--chdir", cwd,
             # jupyter_client tells the kernel to watch its parent; inside the PID
             # namespace that parent is bwrap's init, PID 1, which ipykernel knows not to
             # watch (the sandbox dies with the grader anyway: --die-with-parent)
             "--setenv", "JPY_PARENT_PID", "1", "--"]
    return args + command


def kernel_env(launch_env: dict[str, str], venv_bin: str, packages: Path | None) -> dict:
    """The kernel's environment: a few harmless variables of the grading process, and
    paths that exist inside the sandbox."""
    env = {k: v for k, v in launch_env.items()
           if k in PASSED_ENV or k.startswith(PASSED_PREFIXES)}
    env.update({
        "PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": HOME,
        "TMPDIR": "/tmp",
        "MPLCONFIGDIR": f"{HOME}/.matplotlib",
        "PYTHONNOUSERSITE": "1",
    })
    if packages is not None:
        env["PYTHONPATH"] = PACKAGES
    return env


def _limit_files(file_size: int) -> None:
    """In the kernel's process, before bwrap starts: no file larger than the disk limit
    (a write beyond it raises OSError), and the kernel, not the grader, is what the
    out-of-memory killer picks first."""
    if file_size > 0:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    try:
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write("1000")
    except OSError:
        pass


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel runs in bubblewrap (set by the worker as nbgrader's
    ``Execute.kernel_manager_class``; see `worker`)."""

    transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)
    bwrap = Unicode("", config=True, help="The bwrap executable.")
    private = Unicode(
        "", config=True,
        help="Host folder holding the sandbox's writable folders (work, home, tmp).",
    )
    ipc_folder = Unicode("", config=True, help="Short host folder for the IPC sockets.")
    packages = Unicode("", config=True, help="The course_lib snapshot (on PYTHONPATH).")
    hidden = List(Unicode(), config=True, help="Folders that must not be visible.")
    file_size = Integer(0, config=True, help="Largest file the kernel may write (bytes).")
    kernel_log = Unicode("", config=True, help="File for the kernel's own stdout/stderr.")

    async def _async_pre_start_kernel(self, **kw):
        # Unix socket paths are limited to 107 bytes: the sockets and the connection file
        # live in a short folder, bound into the sandbox at the same path.
        folder = Path(self.ipc_folder or tempfile.mkdtemp(prefix="course-ipc-"))
        self.connection_file = str(folder / "kernel.json")
        self.ip = str(folder / "k")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        private = Path(self.private)
        cwd = str(Path(kw.pop("cwd", None) or os.getcwd()).resolve())
        for name in ("tmp", "home"):
            (private / name).mkdir(parents=True, exist_ok=True)
        work = private / "work"
        if not work.exists():  # what nbgrader put next to the notebook, as a copy
            shutil.copytree(cwd, work, symlinks=False,
                            ignore=lambda d, names: [n for n in names
                                                     if os.path.islink(os.path.join(d, n))])
        packages = Path(self.packages) if self.packages else None
        command = bwrap_command(
            self.bwrap or bwrap_path() or "bwrap", kernel_cmd, cwd=cwd, private=private,
            ipc=Path(self.connection_file).parent, packages=packages,
            hidden=[Path(h) for h in self.hidden],
        )
        kw["env"] = kernel_env(kw.get("env") or dict(os.environ),
                               str(Path(sys.executable).parent), packages)
        kw["preexec_fn"] = functools.partial(_limit_files, self.file_size)
        kw["cwd"] = str(private)
        if not self.kernel_log:
            await super()._async_launch_kernel(command, **kw)
            return
        # the kernel's own output (a crash message) goes to a file of its own, never
        # into the grader's log
        with open(self.kernel_log, "ab") as log:
            kw["stdout"] = kw["stderr"] = log
            await super()._async_launch_kernel(command, **kw)

    async def _async_signal_kernel(self, signum: int) -> None:
        """Signal the processes inside the sandbox (the kernel and what it started), not
        ``bwrap``: a SIGINT to bwrap would end the sandbox instead of interrupting."""
        if not self.has_kernel:
            raise RuntimeError("Cannot signal kernel. No kernel is running!")
        for process in _inside(self.provisioner.pid):
            try:
                process.send_signal(signum)
            except psutil.Error:
                pass


def _inside(bwrap_pid: int) -> list[psutil.Process]:
    """The sandbox's own processes: bwrap's descendants that are not bwrap itself (its
    PID namespace's init)."""
    try:
        descendants = psutil.Process(bwrap_pid).children(recursive=True)
    except psutil.Error:
        return []
    inside = []
    for process in descendants:
        try:
            if os.path.basename(process.exe()) != "bwrap":
                inside.append(process)
        except psutil.Error:
            pass
    return inside


def private_folder_size(folder: Path) -> int:
    """Bytes on disk under ``folder`` (blocks actually used: a sparse file costs
    nothing), without following symbolic links."""
    total = 0
    stack = [str(folder)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                pass
    return total


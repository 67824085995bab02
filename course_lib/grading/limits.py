"""Per-submission limits, and ending a submission's whole process tree.

Defaults can be set in the course's ``nbgrader_config.py`` and overridden on the command
line::

    c.SubmissionLimits.memory_mb = 4096        # address space of each process, MiB
    c.SubmissionLimits.tree_memory_mb = 4096   # resident memory of the whole tree, MiB
    c.SubmissionLimits.disk_mb = 512           # bytes written in the private folder, MiB
    c.SubmissionLimits.cell_output_kb = 1024   # output kept per cell, KiB
    c.SubmissionLimits.notebook_output_kb = 10240  # output kept per notebook, KiB
    c.SubmissionLimits.wall_time = 300         # seconds for a whole submission
    c.SubmissionLimits.workers = 0             # parallel submissions; 0 = one per core

What the limits are, exactly (Linux):

- **memory of each process**: ``RLIMIT_AS`` (virtual address space) on the grading
  process, inherited by the kernel it starts. A kernel that asks for more gets
  ``MemoryError`` (or a failed allocation in torch) in the student's cell; the grader
  carries on. Virtual size is larger than resident memory (a kernel with torch loaded
  maps about 1.4 GiB but uses about 0.35 GiB), so the limit must leave room for that.
- **memory of the whole tree**: a kernel that forks would multiply the per-process
  limit, so the submission's processes together (grading process, kernel, anything it
  starts) are also limited: by a **memory cgroup** (v1 or v2) when this machine lets us
  create one (`MemoryGroup`; the kernel is the out-of-memory killer's first choice), else
  by the parent, which sums the tree's resident memory a few times a second and kills
  the tree at the limit (`tree_rss`).
- **disk**: no file the kernel writes may exceed ``disk_mb`` (``RLIMIT_FSIZE``: the
  write fails with ``OSError``), and the parent kills the submission when everything
  written in its private folder together exceeds it.
- **output**: a cell's outputs beyond ``cell_output_kb``, and a notebook's beyond
  ``notebook_output_kb``, are dropped with a visible note (errors and the first stderr
  output are always kept, shortened, so the grade is the same); see `worker`.
- **wall time**: the parent process kills the submission's whole process tree when its
  time is up (nbgrader's own per-cell ``Execute.timeout`` still applies inside it).
- **core dumps** are disabled (``RLIMIT_CORE = 0``), so a segfaulting kernel leaves no
  large file behind.
- Each grading process starts its own session and makes itself a *child subreaper*, so
  processes that a submission starts in the background (even double-forked ones) stay
  in its tree and are killed with it. In the sandbox (`sandbox`), the kernel's processes
  also live in their own PID namespace, which dies with it.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from traitlets import Bool, Float, Integer
from traitlets.config import Config, Configurable

PR_SET_DUMPABLE = 4  # linux/prctl.h
PR_SET_CHILD_SUBREAPER = 36


class SubmissionLimits(Configurable):
    """Limits for grading one submission (``c.SubmissionLimits.*`` in nbgrader_config.py)."""

    memory_mb = Integer(
        4096, help="Address-space limit of each grading process and its kernel, in MiB."
    ).tag(config=True)
    tree_memory_mb = Integer(
        4096, help="Resident memory of a submission's whole process tree, in MiB."
    ).tag(config=True)
    disk_mb = Integer(
        512, help="Bytes a submission may write in its private folder, in MiB."
    ).tag(config=True)
    cell_output_kb = Integer(
        1024, help="Output kept per cell (more is dropped with a note), in KiB."
    ).tag(config=True)
    notebook_output_kb = Integer(
        10240, help="Output kept per notebook (more is dropped with a note), in KiB."
    ).tag(config=True)
    memory_cgroup = Bool(
        True, help="Limit the tree's memory with a cgroup where this machine allows it "
        "(else, or when False, the grader watches the tree's resident memory)."
    ).tag(config=True)
    wall_time = Float(
        300.0, help="Wall-time limit for grading one whole submission, in seconds."
    ).tag(config=True)
    workers = Integer(
        0, help="Submissions graded at the same time; 0 means one per available core."
    ).tag(config=True)


@dataclass(frozen=True)
class Limits:
    memory_mb: int
    wall_time: float
    workers: int
    tree_memory_mb: int = 4096
    disk_mb: int = 512
    cell_output_kb: int = 1024
    notebook_output_kb: int = 10240
    memory_cgroup: bool = True
    sandbox: bool = True  # the kernel runs in bubblewrap (see `sandbox`)

    @classmethod
    def from_config(cls, config: Config, **overrides) -> Limits:
        configured = SubmissionLimits(config=config)
        names = ("memory_mb", "wall_time", "workers", "tree_memory_mb", "disk_mb",
                 "cell_output_kb", "notebook_output_kb", "memory_cgroup")
        values = {name: getattr(configured, name) for name in names}
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["workers"] <= 0:
            values["workers"] = available_cores()
        if min(values["memory_mb"], values["tree_memory_mb"]) < 512:
            raise ValueError("the memory limit must be at least 512 MiB (a kernel needs that)")
        if values["wall_time"] <= 0:
            raise ValueError("the wall-time limit must be positive")
        if min(values["disk_mb"], values["cell_output_kb"], values["notebook_output_kb"]) <= 0:
            raise ValueError("the disk and output limits must be positive")
        return cls(**values)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def confine_this_process(memory_mb: int) -> None:
    """Called first thing in a grading process: new session, subreaper, not dumpable
    (another process of the same user cannot open its pipes through /proc), rlimits."""
    os.setsid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def set_child_subreaper(on: bool) -> None:
    """Make this process the one that inherits orphans of its descendants."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def end_orphans(keep: set[int]) -> int:
    """Kill (and reap) every child of this process not in ``keep``: as a subreaper, this
    process inherits what a dead grading process left running. Returns how many."""
    ended = 0
    for child in psutil.Process().children():
        if child.pid in keep:
            continue
        ended += kill_tree(child.pid)
        try:
            os.waitpid(child.pid, 0)
        except ChildProcessError:
            pass
    return ended


def _alive(process: psutil.Process) -> bool:
    try:
        return process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def kill_tree(pid: int, include_root: bool = True, reap: bool = False) -> int:
    """SIGKILL a process and every descendant; return how many processes were killed.

    Descendants are stopped before they are killed, and the tree is walked again until
    it is empty, so that a process forking at the wrong moment does not escape. Only the
    grading process itself may ``reap`` (collect its dead children): the parent must
    not, or it would steal exit statuses that multiprocessing is waiting for.
    """
    killed = 0
    for _ in range(5):
        try:
            root = psutil.Process(pid)
            tree = root.children(recursive=True)
        except psutil.NoSuchProcess:
            tree, root = [], None
        if include_root and root is not None:
            tree.append(root)
        tree = [p for p in tree if p.pid != os.getpid() and _alive(p)]
        if not tree:
            break
        for process in tree:
            try:
                process.send_signal(signal.SIGSTOP)
            except psutil.Error:
                pass
        for process in tree:
            try:
                process.kill()
                killed += 1
            except psutil.Error:
                pass
        # the root is left for its parent to collect (multiprocessing wants its status)
        psutil.wait_procs([p for p in tree if p.pid != pid], timeout=2)
        if reap:
            reap_children()
    return killed


def reap_children() -> None:
    """Collect the exit status of finished children (a subreaper inherits orphans)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ------------------------------------------------------------------ the whole tree's memory


class MemoryGroup:
    """A memory cgroup holding one submission's process tree (cgroup v1 or v2), created
    under this process's own cgroup. `create` returns None where that is not allowed; the
    parent then watches the tree's resident memory instead (`tree_rss`)."""

    def __init__(self, path: Path, version: int):
        self.path = path
        self.version = version

    @classmethod
    def create(cls, name: str, limit_bytes: int) -> MemoryGroup | None:
        for version, base in _own_memory_cgroups():
            path = base / name
            try:
                path.mkdir()
            except OSError:
                continue
            group = cls(path, version)
            try:
                if version == 1:
                    (path / "memory.limit_in_bytes").write_text(str(limit_bytes))
                    _try_write(path / "memory.memsw.limit_in_bytes", str(limit_bytes))
                else:
                    (path / "memory.max").write_text(str(limit_bytes))
                    _try_write(path / "memory.swap.max", "0")
            except OSError:
                group.remove()
                continue
            return group
        return None

    def join(self) -> None:
        """Move the calling process (and so everything it starts later) into the group."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def kill_all(self) -> None:
        """SIGKILL every process still in the group (one that left the grading process's
        tree is still in its cgroup)."""
        for _ in range(5):
            pids = [int(p) for p in _read(self.path / "cgroup.procs").split()]
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.05)

    def killed_by_limit(self) -> bool:
        """Whether the out-of-memory killer acted in this group."""
        try:
            if self.version == 1:
                events = (self.path / "memory.oom_control").read_text()
            else:
                events = (self.path / "memory.events").read_text()
        except OSError:
            return False
        counts = dict(line.split() for line in events.splitlines() if len(line.split()) == 2)
        if "oom_kill" in counts:
            return int(counts["oom_kill"]) > 0
        return self.version == 1 and int(_read(self.path / "memory.failcnt") or 0) > 0

    def remove(self) -> None:
        """Remove the (empty) group; its processes must have ended."""
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.02)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _try_write(path: Path, value: str) -> None:
    try:
        path.write_text(value)
    except OSError:
        pass


def _own_memory_cgroups() -> list[tuple[int, Path]]:
    """(version, folder) of this process's memory cgroup, v1 first."""
    found = []
    for line in _read(Path("/proc/self/cgroup")).splitlines():
        _, controllers, relative = line.split(":", 2)
        relative = relative.lstrip("/")
        if "memory" in controllers.split(","):
            found.insert(0, (1, Path("/sys/fs/cgroup/memory") / relative))
        elif controllers == "":
            base = Path("/sys/fs/cgroup") / relative
            if "memory" in _read(base / "cgroup.subtree_control").split():
                found.append((2, base))
    return [(v, p) for v, p in found if p.is_dir()]


def tree_rss(pid: int) -> int:
    """Resident memory of a process and all its descendants, in bytes (shared pages are
    counted once per process, which overestimates: the fallback errs on the safe side)."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in tree:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total

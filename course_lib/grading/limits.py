"""Per-submission limits, and ending a submission's whole process tree.

Defaults can be set in the course's ``nbgrader_config.py`` and overridden on the command
line::

    c.SubmissionLimits.memory_mb = 4096   # address space of each process, MiB
    c.SubmissionLimits.wall_time = 300    # seconds for a whole submission
    c.SubmissionLimits.workers = 0        # parallel submissions; 0 = one per core

What the limits are, exactly (Linux):

- **memory**: ``RLIMIT_AS`` (virtual address space) on the grading process, inherited by
  the kernel it starts. It is per process, not per tree: the grading process and the
  kernel may each use up to the limit. A kernel that asks for more gets ``MemoryError``
  (or a failed allocation in torch) in the student's cell; the grader carries on.
  Virtual size is larger than resident memory (a kernel with torch loaded maps about
  1.4 GiB but uses about 0.35 GiB), so the limit must leave room for that.
- **wall time**: the parent process kills the submission's whole process tree when its
  time is up (nbgrader's own per-cell ``Execute.timeout`` still applies inside it).
- **core dumps** are disabled (``RLIMIT_CORE = 0``), so a segfaulting kernel leaves no
  large file behind.
- Each grading process starts its own session and makes itself a *child subreaper*, so
  processes that a submission starts in the background (even double-forked ones) stay
  in its tree and are killed with it.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
from dataclasses import dataclass

import psutil
from traitlets import Float, Integer
from traitlets.config import Config, Configurable

PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


class SubmissionLimits(Configurable):
    """Limits for grading one submission (``c.SubmissionLimits.*`` in nbgrader_config.py)."""

    memory_mb = Integer(
        4096, help="Address-space limit of each grading process and its kernel, in MiB."
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

    @classmethod
    def from_config(cls, config: Config, **overrides) -> Limits:
        configured = SubmissionLimits(config=config)
        values = {
            "memory_mb": configured.memory_mb,
            "wall_time": configured.wall_time,
            "workers": configured.workers,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values["workers"] <= 0:
            values["workers"] = available_cores()
        if values["memory_mb"] < 512:
            raise ValueError("the memory limit must be at least 512 MiB (a kernel needs that)")
        if values["wall_time"] <= 0:
            raise ValueError("the wall-time limit must be positive")
        return cls(**values)


def available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def confine_this_process(memory_mb: int) -> None:
    """Called first thing in a grading process: new session, subreaper, rlimits."""
    os.setsid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    limit = memory_mb * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


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

"""Grading on a Dask cluster against the local runner: throughput and the cost of shipping.

    .venv/bin/python benchmarks/bench_cluster.py [--students 10] [--rounds 1]

A class of synthetic submissions of assignment 01 (`bench_autograde.class_of`: three in
five solved, one untouched, one with an answer cell that raises) is graded twice, each
time in a fresh copy of the course, sandbox on:

- by the local runner, ``course autograde --workers 2`` (a subprocess);
- on a `LocalCluster` of 2 worker processes with one thread each, on this machine: the
  instructor's side is `autograde` with `cluster.ClusterRunner` as its runner (what
  ``course autograde --cluster`` does), the workers already started, each with its
  forkserver (which imports nbgrader once per worker): a cluster serves many runs.

The gradebooks must agree on every grade cell, or the benchmark fails. Printed for each:
submissions per minute (wall clock), CPU seconds per submission (every process involved,
sampled by `TreeMeter`: for the cluster, this process with its scheduler, the nannies,
workers and forkservers, and all they started), and how many cores other processes on
the shared machine used meanwhile. With ``--rounds N`` the two are interleaved N times
and the fastest round of each is kept. Then the cost of shipping one job, measured
apart: building and packing the private course directory here (`cluster._bundle`), its
size, and the round trip of such a bundle to a worker and back through Dask with
nothing graded.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from bench_autograde import BIN, ENV, _busy_seconds, class_of, fresh_course, grades  # noqa: E402

from course_lib.grading import autograde as autograde_module  # noqa: E402
from course_lib.grading import cluster  # noqa: E402
from course_lib.grading.course import Course  # noqa: E402
from course_lib.grading.limits import Limits  # noqa: E402
from course_lib.grading.record import template_gradebook  # noqa: E402
from course_lib.grading.runner import Job  # noqa: E402

ASSIGNMENT = "01_sparse_connectivity"
IDLE_SECONDS = 20  # how long the cluster's CPU at rest is measured


class TreeMeter:
    """CPU seconds (user + system) that processes and all their descendants use while it
    runs, sampled every few tenths of a second from /proc (psutil). A process's own times
    are read while it lives: unlike the rusage of waited-for children, nothing is lost
    when a kernel in its sandbox is ended by a signal or reaped by a namespace's init.
    The meter's own thread is not counted."""

    def __init__(self, roots: list[int], every: float = 0.2):
        self.roots, self.every = roots, every
        self.seen: dict[tuple[int, float], float] = {}
        self.before: dict[tuple[int, float], float] = {}
        self.own = 0.0
        self._stop = threading.Event()
        self._sample(self.before)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _sample(self, into: dict) -> None:
        for pid in self.roots:
            try:
                root = psutil.Process(pid)
                tree = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for process in tree:
                try:
                    times = process.cpu_times()
                    into[(process.pid, process.create_time())] = times.user + times.system
                except psutil.Error:
                    pass

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self._sample(self.seen)
        self._sample(self.seen)
        self.own = time.thread_time()

    def stop(self) -> float:
        self._stop.set()
        self.thread.join()
        used = sum(t - self.before.get(key, 0.0) for key, t in self.seen.items())
        return used - self.own


def _warm_up() -> None:
    cluster._forkserver()


def local_run(course: Path) -> tuple[float, float, float]:
    """(wall s, CPU s, other processes' cores) of ``course autograde --workers 2``."""
    import subprocess

    command = [str(BIN / "course"), "autograde", ASSIGNMENT, "--no-progress", "--workers", "2"]
    busy, start = _busy_seconds(), time.perf_counter()
    process = subprocess.Popen(command, cwd=course, env=ENV, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    meter = TreeMeter([process.pid])
    out, err = process.communicate()
    cpu, wall = meter.stop(), time.perf_counter() - start
    if process.returncode != 0:
        sys.exit(f"course autograde failed:\n{out[-2000:]}{err[-2000:]}")
    return wall, cpu, max(0.0, _busy_seconds() - busy - cpu) / wall


def cluster_run(course: Path, address: str) -> tuple[float, float, float]:
    """The same on the cluster, graded by `autograde` with the cluster's runner."""
    loaded = Course.load(course)
    limits = Limits.from_config(loaded.config, workers=2)
    busy, start = _busy_seconds(), time.perf_counter()
    meter = TreeMeter([os.getpid()])  # this process, its scheduler, nannies and workers
    with cluster.ClusterRunner(address, limits) as runner:
        autograde_module.run_jobs = runner  # what --cluster does
        outcomes, _ = autograde_module.autograde(loaded, ASSIGNMENT, limits)
    cpu, wall = meter.stop(), time.perf_counter() - start
    if any(o.status != "graded" for o in outcomes):
        sys.exit(f"not graded on the cluster: {[o for o in outcomes if o.status != 'graded']}")
    return wall, cpu, max(0.0, _busy_seconds() - busy - cpu) / wall


def shipping(course: Path, client) -> None:
    """The cost of shipping one job, apart from grading it."""
    loaded = Course.load(course)
    students = sorted(loaded.submissions(ASSIGNMENT))
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        template = template_gradebook(loaded, scratch / "template" / "gradebook.db")
        bundles, cpu = [], []
        for student in students:
            job = Job(ASSIGNMENT, student, loaded.folder("submitted", student, ASSIGNMENT))
            start = time.process_time()
            bundles.append(cluster._bundle(loaded, job, template, scratch))
            cpu.append(time.process_time() - start)
        round_trips = []
        for bundle in bundles:  # one at a time: the latency of one job, nothing graded
            start = time.perf_counter()
            client.submit(len, bundle, pure=False).result()
            round_trips.append(time.perf_counter() - start)
    sizes = [len(b) / 1024 for b in bundles]
    print(f"\nshipping one job ({len(bundles)} jobs): building and packing its private course "
          f"here {1000 * statistics.median(cpu):.0f} ms CPU (median), "
          f"{statistics.median(sizes):.0f} KiB packed; the round trip of that bundle to a "
          f"worker and back with nothing graded {1000 * statistics.median(round_trips):.0f} ms "
          "(median, wall).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    os.environ.update(OMP_NUM_THREADS="1", PATH=ENV["PATH"])
    # nbgrader 0.9.6 with SQLAlchemy 2 (as `course` itself hides them)
    warnings.filterwarnings("ignore", message=r".*not in session, add operation along")
    from distributed import Client, LocalCluster

    submissions = class_of(args.students)
    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, silence_logs=logging.ERROR) as local, \
            Client(local) as client:
        client.run(_warm_up)
        print(f"cluster start-up (2 worker processes and their forkservers): "
              f"{time.perf_counter() - start:.1f} s wall")
        time.sleep(5)  # the forkservers import nbgrader
        meter = TreeMeter([os.getpid()])
        time.sleep(IDLE_SECONDS)
        idle = meter.stop() / IDLE_SECONDS
        print(f"the cluster at rest (scheduler, nannies, workers: heartbeats, profiling) "
              f"uses {idle:.3f} cores")
        runs: dict[str, list] = {"local runner": [], "LocalCluster": []}
        for round_ in range(args.rounds):
            gradebooks = []
            for name in runs:
                with tempfile.TemporaryDirectory() as folder:
                    course = fresh_course(Path(folder), submissions)
                    if name == "local runner":
                        runs[name].append(local_run(course))
                    else:
                        runs[name].append(cluster_run(course, local.scheduler_address))
                    gradebooks.append(grades(course))
                    if round_ == 0 and name == "LocalCluster":
                        shipping(course, client)
                wall, cpu, others = runs[name][-1]
                print(f"round {round_ + 1} {name:>13}: {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
                      f"other processes used {others:.2f} cores meanwhile")
            if gradebooks[0] != gradebooks[1]:
                sys.exit("the gradebooks differ: the cluster grades differently")
    n = args.students
    best = {name: min(found) for name, found in runs.items()}
    cores = len(os.sched_getaffinity(0))

    def per_free_core(wall: float, others: float) -> float:
        """Submissions per minute for each core that other processes left free: on a
        shared machine, the fair comparison of two runs that met different loads."""
        return 60 * n / wall / max(cores - others, 0.1)

    print(f"\n{'':14}{'submissions/min':>17}{'per free core':>15}{'wall (s)':>10}"
          f"{'CPU per submission (s)':>24}{'others (cores)':>16}")
    for name, (wall, cpu, others) in best.items():
        print(f"{name:14}{60 * n / wall:17.1f}{per_free_core(wall, others):15.1f}{wall:10.1f}"
              f"{cpu / n:24.2f}{others:16.2f}")
    (lw, lc, lo), (cw, cc, co) = best["local runner"], best["LocalCluster"]
    print(f"\nCPU per submission on the cluster without its machinery at rest: "
          f"{(cc - idle * cw) / n:.2f} s")
    print(f"throughput ratio, cluster / local: {lw / cw:.2f} as measured, "
          f"{per_free_core(cw, co) / per_free_core(lw, lo):.2f} per free core ({cores} cores); "
          f"CPU per submission on the cluster {cc / n - lc / n:+.2f} s "
          f"({100 * (cc / lc - 1):+.0f} %) against the local runner; identical gradebooks "
          f"({n} submissions).")

if __name__ == "__main__":
    main()

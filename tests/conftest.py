"""Shared fixtures: the repository root, an environment for subprocesses, and the book
built once per test run (used by test_book.py and test_browser.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtual environment's scripts (nbgrader, alembic)
ARTIFACTS = ROOT / "artifacts"  # screenshots and timings of a test run (gitignored)
BUILD_COMMAND = ["jupyter-book", "build", "--warningiserror", "--nitpick", "--keep-going"]

# Lines that tests add for the summary at the end of the run (pages checked, timings).
REPORT: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("course report")
        for line in REPORT:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """The suite's tensors are small: one thread is faster than two fighting each other."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def tool_env() -> dict[str, str]:
    """Environment for jupyter-book / nbgrader subprocesses: the venv's scripts first."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def toc_pages() -> list[str]:
    """Every page of the book's table of contents, the root first (book/02_dales_law)."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries):
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))
            walk(entry.get("chapters", []))

    walk(toc.get("parts", []))
    return pages


def copy_course(destination: Path) -> Path:
    """A copy of the course files (no venv, no build output, no grading state)."""
    ignore = shutil.ignore_patterns(
        ".venv",
        "_build",
        ".git",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        "gradebook.db",
        "submitted",
        "autograded",
        "feedback",
        "reports",
        "*.egg-info",
        "artifacts",
    )
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination


@dataclass(frozen=True)
class BookBuild:
    """The built book: its HTML folder and, if this run built it, the two build times."""

    html: Path
    cold_seconds: float | None = None
    cached_seconds: float | None = None


def _build_book(course: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(
        [*BUILD_COMMAND[:2], str(course), *BUILD_COMMAND[2:]],
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    seconds = time.perf_counter() - start
    assert result.returncode == 0, (
        f"jupyter-book build failed after {seconds:.0f} s:\n"
        + result.stdout[-5000:]
        + result.stderr[-5000:]
    )
    return seconds


@pytest.fixture(scope="session")
def book_build(tmp_path_factory, tool_env) -> BookBuild:
    """The book, built once per test run from a clean copy of the course, exactly as
    `make book` builds it (warnings are errors, every chapter executed, cold cache).

    The same copy is then built a second time with no change, to time the cached rebuild;
    both times are printed and written to ``artifacts/book_build_times.json``.

    For developing the browser tests only: set ``COURSE_BOOK_HTML=/path/to/_build/html``
    to use an existing build instead (nothing is built or timed then, and the build-time
    test is skipped with that reason). CI never sets it.
    """
    existing = os.environ.get("COURSE_BOOK_HTML")
    if existing:
        html = Path(existing).resolve()
        assert (html / "index.html").is_file(), f"COURSE_BOOK_HTML={existing}: no index.html"
        REPORT.append(f"book: existing build {html} (COURSE_BOOK_HTML), not built or timed")
        return BookBuild(html=html)
    course = copy_course(tmp_path_factory.mktemp("book") / "course")
    env = dict(tool_env, COURSE_PROGRESS="0")  # as the Makefile sets it for `make book`
    cold = _build_book(course, env)
    cached = _build_book(course, env)
    times = {
        "cold_seconds": round(cold, 1),
        "cached_seconds": round(cached, 1),
        "cached_fraction": round(cached / cold, 3),
        "command": " ".join(BUILD_COMMAND),
    }
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "book_build_times.json").write_text(json.dumps(times, indent=2) + "\n")
    line = f"book build: cold {cold:.0f} s, cached rebuild (no change) {cached:.1f} s"
    print(line)
    REPORT.append(line)
    return BookBuild(html=course / "_build" / "html", cold_seconds=cold, cached_seconds=cached)


@pytest.fixture(scope="session")
def html(book_build) -> Path:
    """The built book's HTML folder."""
    return book_build.html

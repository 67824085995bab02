"""Shared fixtures: the repository root and an environment for subprocesses."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the virtual environment's scripts (nbgrader, alembic)


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
        "*.egg-info",
        "artifacts",
    )
    shutil.copytree(ROOT, destination, ignore=ignore)
    return destination

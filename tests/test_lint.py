"""The code students read is linted with ruff (settings in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_finds_nothing(root):
    result = subprocess.run(
        [str(RUFF), "check", "--output-format", "concise", "."],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr

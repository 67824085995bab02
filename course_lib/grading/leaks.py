"""Which text of the source notebooks must never reach students, and finding it.

Secret text is every line between ``### BEGIN SOLUTION`` / ``### END SOLUTION``, every
line between ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS``, and every line of a
model answer (a markdown answer cell of the source). Short lines (``return mask``) are
left out: a student may well write them too. A line that also appears in the release
is not secret either (the stub, a visible test).
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

MIN_LENGTH = 13  # characters, after stripping
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")


def cells(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text())["cells"]


def source(cell: dict) -> str:
    text = cell.get("source", "")
    return "".join(text) if isinstance(text, list) else text


def _between(text: str, begin: str, end: str) -> list[str]:
    pattern = rf"### {begin}[^\n]*\n(.*?)### {end}"
    return [ln for block in re.findall(pattern, text, re.S) for ln in block.splitlines()]


def secret_lines(source_notebook: Path, hidden_only: bool = False) -> set[str]:
    """The secret lines of a source notebook (or only its hidden tests)."""
    lines: list[str] = []
    for cell in cells(source_notebook):
        text = source(cell)
        lines += _between(text, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        if hidden_only:
            continue
        lines += _between(text, "BEGIN SOLUTION", "END SOLUTION")
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.get("cell_type") == "markdown" and meta.get("solution"):
            lines += text.splitlines()
    return {ln.strip() for ln in lines if len(ln.strip()) >= MIN_LENGTH}


def visible_text(path: Path) -> str:
    """The text a reader sees: a notebook's cell sources, or an HTML page without tags."""
    path = Path(path)
    if path.suffix == ".ipynb":
        return "\n".join(source(c) for c in cells(path))
    page = path.read_text(errors="replace")
    page = re.sub(r"<(script|style)\b.*?</\1>", "", page, flags=re.S | re.I)
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def find_leaks(text: str, secrets: set[str], allowed: str = "") -> list[str]:
    """Secret lines (and nbgrader markers) present in ``text``, except those in ``allowed``."""
    leaked = sorted(s for s in secrets if s in text and s not in allowed)
    leaked += [m for m in MARKERS if m in text and m not in allowed]
    return leaked

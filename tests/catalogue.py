"""What every catalogue of wrong answers (tests/test_checks_*.py) needs.

A catalogue test hands a checker a plausible wrong answer and asserts that it is
rejected with its own mistake id and a message in the student's terms.
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import ROOT


def rejects(check, wrong, mistake: str, message: str, **check_kwargs) -> None:
    """``check(wrong)`` fails with ``mistake`` and a message matching ``message``."""
    with pytest.raises(AssertionError, match=message) as excinfo:
        check(wrong, **check_kwargs)
    assert excinfo.value.mistake == mistake, excinfo.value


def not_implemented(*args, **kwargs):
    """The untouched exercise: its body still raises NotImplementedError."""
    raise NotImplementedError()


class AlwaysEqual(torch.Tensor):
    """A forged answer that claims to equal anything it is compared with."""

    def __eq__(self, other):
        return True


def solution_answers(assignment: str, namespace: dict | None = None) -> dict:
    """``namespace`` (default: only ``torch``) after running the answer cells of the
    assignment's source notebook: the solution's functions, by name."""
    notebook = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    namespace = {"torch": torch} if namespace is None else namespace
    for cell in json.loads(notebook.read_text())["cells"]:
        if cell["metadata"]["nbgrader"].get("solution") and cell["cell_type"] == "code":
            exec("".join(cell["source"]), namespace)  # noqa: S102 - our own notebook
    return namespace

"""What every catalogue of wrong answers (tests/test_checks_*.py) needs.

A catalogue test hands a checker a plausible wrong answer and asserts that it is
rejected with its own mistake id and a message in the student's terms.
"""

from __future__ import annotations

import pytest
import torch


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

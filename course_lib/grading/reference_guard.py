"""Detecting a submission that uses the course's reference code instead of its own.

The reference implementations ship with ``course_lib`` (students install it to run the
checkers), so ``from course_lib.connectivity import random_sparse_mask`` passes every
test. Two detectors, for two places:

- `ReferenceWatch` / `forbid_reference`, for **checkers** (they run in the graded
  kernel): while the student's function runs, a profile hook watches for the reference's
  own code object. It catches a direct alias, a wrapper, a wrapper of a wrapper, and
  ``importlib`` tricks alike, since it looks at what executes, not at names. It is cheap
  (a set lookup per Python call) and is removed as soon as the call returns.
- `scan_notebook`, for the **grader** (outside the kernel): the static scan of
  `course_lib.grading.scan` on one notebook file, whose imports of ``course_lib`` (and
  every other construct the assignments never need) it reports. The grader scans with
  the assignment's source notebook, and zeroes the flagged parts.

Nothing here imports nbgrader or torch, so a checker can import it cheaply.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import CodeType


def _code_objects(reference) -> set[CodeType]:
    """The code objects whose execution means "the reference ran"."""
    codes = set()
    target = getattr(reference, "__func__", reference)
    if isinstance(target, type):
        for value in vars(target).values():
            value = getattr(value, "__func__", value)
            if hasattr(value, "__code__"):
                codes.add(value.__code__)
    else:
        target = getattr(target, "__wrapped__", target)
        if hasattr(target, "__code__"):
            codes.add(target.__code__)
    if not codes:
        raise TypeError(f"cannot watch {reference!r}: it has no Python code")
    return codes


class ReferenceWatch:
    """Context manager: ``with ReferenceWatch(ref) as watch: fn(...)``; then
    ``watch.called`` says whether the reference's code ran inside the block."""

    def __init__(self, *references):
        self.codes = set().union(*(_code_objects(r) for r in references))
        self.called = False
        self._previous = None

    def _profile(self, frame, event, arg):
        if event == "call" and frame.f_code in self.codes:
            self.called = True
        if self._previous is not None:
            self._previous(frame, event, arg)

    def __enter__(self) -> ReferenceWatch:
        self._previous = sys.getprofile()
        sys.setprofile(self._profile)
        return self

    def __exit__(self, *exc) -> None:
        sys.setprofile(self._previous)


def is_reference(candidate, *references) -> bool:
    """The student's object *is* a reference (imported, not written)."""
    for reference in references:
        if candidate is reference:
            return True
        if isinstance(reference, type) and isinstance(candidate, type):
            if issubclass(candidate, reference):
                return True
        unwrapped = getattr(candidate, "__wrapped__", None)
        if unwrapped is not None and unwrapped is reference:
            return True
    return False


def forbid_reference(
    student: Callable, *references, what: str, allow: bool = False
) -> Callable:
    """Wrap the student's callable so that using a reference raises ``AssertionError``
    with a message for the student. For a checker::

        def check_random_sparse_mask(random_sparse_mask, seed=0, *, allow_reference=False):
            random_sparse_mask = forbid_reference(
                random_sparse_mask, connectivity.random_sparse_mask,
                what="random_sparse_mask", allow=allow_reference)

    ``allow=True`` returns the callable unchanged: the library's own tests check the
    checkers with implementations built on the reference.
    """
    if allow:
        return student
    names = ", ".join(f"{getattr(r, '__module__', '?')}.{getattr(r, '__qualname__', r)}"
                      for r in references)
    message = (
        f"{what} uses the course's reference implementation ({names}) instead of your own "
        "code: write it yourself; the reference is there to check your work, not to be "
        "submitted."
    )
    if is_reference(student, *references):
        raise AssertionError(message)

    @functools.wraps(student)
    def watched(*args, **kwargs):
        with ReferenceWatch(*references) as watch:
            result = student(*args, **kwargs)
        if watch.called:
            raise AssertionError(message)
        return result

    return watched


# ------------------------------------------------------------------ the grader's scan


def scan_notebook(path: Path, source: Path | None = None) -> list[str]:
    """One line per flagged construct of a notebook file, e.g. ``'answer cell
    random_sparse_mask, line 1: imports course_lib.connectivity.random_sparse_mask ...'``;
    ``source``, the assignment's source notebook, tells the imports cell and allowlist."""
    from course_lib.grading.scan import scan_notebook as scan

    try:
        nb = json.loads(Path(path).read_bytes())
    except ValueError:
        return []
    return [str(flag) for flag in scan(nb, source)]

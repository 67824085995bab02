"""Small helpers shared by the checkers."""

from __future__ import annotations

import functools

import torch

from course_lib._threads import one_thread


def single_threaded(check):
    """Run a checker on one CPU thread: its tensors are tiny, and several threads only
    fight each other (and other students' notebooks on a shared grader)."""
    return functools.wraps(check)(one_thread()(check))


def fail(message: str) -> None:
    raise AssertionError(message)


def call(fn, *args, what: str, **kwargs):
    """Call the student's code; turn an exception into a message that names the call."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError:
        fail(f"{what} is not implemented yet (it raised NotImplementedError).")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail(f"{what} raised {type(error).__name__}: {error}")


def as_tensor(value, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(
            f"{what} must return a torch.Tensor, "
            f"got {type(value).__module__}.{type(value).__name__}"
        )
    return value


def worst_entry(actual: torch.Tensor, expected: torch.Tensor) -> str:
    """'entry (i, j) is a but should be b' for the largest difference."""
    diff = (actual.double() - expected.double()).abs()
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    return f"entry {index} is {actual[index].item():.4g} but should be {expected[index].item():.4g}"


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-6) -> bool:
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=tol, rtol=tol)

"""Argument checks shared by the library: one clear ValueError instead of a deep traceback."""

from __future__ import annotations

import torch


def check_fraction(name: str, value: float) -> None:
    """Raise ValueError unless 0 < value <= 1."""
    if not (isinstance(value, int | float) and 0.0 < float(value) <= 1.0):
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")


def check_positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and float(value) > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and float(value) >= 0):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")


def check_shape(name: str, tensor: torch.Tensor, expected: tuple[int, ...]) -> None:
    """Raise ValueError if `tensor.shape` differs from `expected` (use -1 for 'any')."""
    shape = tuple(tensor.shape)
    ok = len(shape) == len(expected) and all(
        e in (-1, s) for s, e in zip(shape, expected, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("any" if e == -1 else str(e) for e in expected) + ")"
        raise ValueError(f"{name} must have shape {want}, got {shape}")


def make_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A torch.Generator from a seed (or the generator itself): no hidden global state."""
    if isinstance(seed, torch.Generator):
        return seed
    generator = torch.Generator()
    generator.manual_seed(0 if seed is None else int(seed))
    return generator

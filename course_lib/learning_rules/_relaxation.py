"""Relaxing an energy-based network to its fixed point, shared by predictive coding and
equilibrium propagation: repeat one Euler step of the inference dynamics until nothing
moves any more."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Tensors = list[torch.Tensor]


def settle(
    step: Callable[[Tensors], Tensors],
    states: Sequence[torch.Tensor],
    *,
    step_size: float,
    max_steps: int,
    tol: float,
) -> tuple[Tensors, int]:
    """Apply ``step`` until no state moves more than ``step_size * tol`` in one step.

    Returns the states and the number of steps taken; ``max_steps`` means they did not
    settle (lower ``step_size``: Euler steps on an energy are stable below 2 / its largest
    curvature).
    """
    states = list(states)
    for count in range(1, max_steps + 1):
        new_states = step(states)
        moved = max((n - o).abs().max().item() for n, o in zip(new_states, states, strict=True))
        states = new_states
        if moved <= step_size * tol:
            return states, count
    return states, max_steps

"""Brain-like costs: penalties added to the task loss, ``J = J_task + penalty``.

Each function returns a scalar tensor that autograd can differentiate, so it can be
added to any loss. With `course_lib.training.train`, pass it as ``penalty``::

    train(model, data, n_steps=200,
          penalty=lambda model, rates: l2_rates(rates, beta=1e-3))

Weights are ``(post, pre) = (out, in)``: ``W[i, j]`` is the synapse from unit ``j``
onto unit ``i``. Every coefficient ``beta`` must be >= 0 (a negative coefficient would
*reward* the very thing it is meant to discourage).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable

import torch

from course_lib._validate import check_non_negative, check_positive, check_shape


def _square(name: str, weight: torch.Tensor) -> int:
    """Raise ValueError unless ``weight`` is a square (recurrent) matrix; return its size."""
    if weight.dim() != 2 or weight.shape[0] != weight.shape[1]:
        raise ValueError(
            f"{name} must be a square (post, pre) recurrent matrix, got shape {tuple(weight.shape)}"
        )
    return weight.shape[0]


def _check_distances(weight: torch.Tensor, distances: torch.Tensor) -> None:
    """One distance per synapse: ``distances`` has the shape of ``weight``."""
    if tuple(distances.shape) != tuple(weight.shape):
        raise ValueError(
            "distances must have the shape of the weight matrix (post, pre) = "
            f"{tuple(weight.shape)} (one position per unit), got {tuple(distances.shape)}"
        )


# --- L1 on weights ---------------------------------------------------------------------


def l1_weights(weights: torch.Tensor | Iterable[torch.Tensor], beta: float) -> torch.Tensor:
    """``beta * Σ_ij |w_ij|`` summed over one weight matrix or several.

    Yang et al. 2019 (Nat Neurosci, "Task representations in neural networks trained to
    perform many cognitive tasks"): ``J = J_task + beta Σ |w_ij|``. The kink of ``|w|`` at
    0 makes unimportant weights land on exactly zero, unlike an L2 penalty that only
    shrinks them.
    """
    check_non_negative("beta", beta)
    tensors = [weights] if isinstance(weights, torch.Tensor) else list(weights)
    if not tensors:
        raise ValueError("weights must be a tensor or a non-empty iterable of tensors, got none")
    return beta * sum(w.abs().sum() for w in tensors)


# --- L2 on firing rates ----------------------------------------------------------------


def l2_rates(rates: torch.Tensor, beta: float) -> torch.Tensor:
    """``beta * mean_{batch, t} Σ_i a_it²`` for rates of shape ``(T, B, n_units)``.

    Goudar et al. 2023 (Nat Neurosci) penalise ``Σ_t Σ_i a_it²`` so that the network
    solves the task with low rates, as cortex does. Normalisation used here: **sum over
    units, mean over batch and time**. Why: the mean over trials and time steps keeps
    ``beta`` meaningful when the batch size or the sequence length changes (the task
    loss, a cross-entropy, is also a mean over time and batch), while the sum over units
    keeps the cost of "one more active unit" the same whatever the network size. It is
    ``1 / T`` times the per-trial ``Σ_t Σ_i a_it²``, averaged over the batch.
    """
    check_non_negative("beta", beta)
    check_shape("rates", rates, (-1, -1, -1))
    return beta * rates.pow(2).sum(dim=-1).mean()


# --- Distance ---------------------------------------------------------------------------


def grid_positions(shape: tuple[int, ...], spacing: float = 1.0) -> torch.Tensor:
    """Positions of ``prod(shape)`` units on a regular 1-, 2- or 3-D grid.

    Returns ``(n_units, len(shape))``; unit ``k`` sits at the row-major (C-order) grid
    index of ``k``, e.g. for ``shape=(2, 3)`` unit 4 is at ``(1, 1) * spacing``.
    Achterberg et al. 2023 place 100 units on a ``(5, 5, 4)`` grid.
    """
    shape = tuple(shape)
    if not 1 <= len(shape) <= 3 or not all(isinstance(n, int) and n >= 1 for n in shape):
        raise ValueError(
            f"shape must be 1 to 3 positive integers (a 1-, 2- or 3-D grid), got {shape!r}"
        )
    check_positive("spacing", spacing)
    coordinates = itertools.product(*(range(n) for n in shape))  # row-major order
    return torch.tensor(list(coordinates), dtype=torch.float32) * spacing


def distance_matrix(positions: torch.Tensor) -> torch.Tensor:
    """Pairwise Euclidean distances ``d_ij = ||p_i - p_j||`` of ``(n_units, dim)`` positions."""
    check_shape("positions", positions, (-1, -1))
    difference = positions[:, None, :] - positions[None, :, :]
    return difference.pow(2).sum(dim=-1).sqrt()


def distance_penalty(weight: torch.Tensor, distances: torch.Tensor, beta: float) -> torch.Tensor:
    """``beta * Σ_ij |W_ij| d_ij``: long connections cost more than short ones.

    Achterberg et al. 2023 (Nat Mach Intell, "Spatially embedded recurrent neural
    networks"), the spatial part of their regulariser; ``distances`` comes from
    `distance_matrix` and has the shape of ``weight``.
    """
    check_non_negative("beta", beta)
    check_shape("weight", weight, (-1, -1))
    _check_distances(weight, distances)
    return beta * (weight.abs() * distances.to(weight)).sum()


# --- seRNN: communicability-weighted distance ------------------------------------------


def communicability(weight: torch.Tensor) -> torch.Tensor:
    """Weighted communicability ``C = expm(S^-1/2 |W| S^-1/2)`` with a zero diagonal.

    Crofts & Higham 2009 (J R Soc Interface), as used by Achterberg et al. 2023.
    ``S = diag(s)`` holds each unit's node strength ``s_j = Σ_i |W_ij|``: the summed
    magnitude of its outgoing weights (column ``j`` in the (post, pre) convention; the
    seRNN code sums the same synapses in Keras' (pre, post) layout). ``C_ij`` adds up
    walks of every length from ``j`` to ``i`` (longer walks weigh less, by ``1/k!``):
    how strongly two units talk through the rest of the network. Self-communication
    (the diagonal) is set to zero.

    A unit with no outgoing weight (``s_j = 0``) has no ``s_j^-1/2``; as for a
    normalised graph Laplacian we take ``0^-1/2 = 0``, which treats the unit as isolated
    and keeps every value and gradient finite.
    """
    _square("weight", weight)
    magnitude = weight.abs()
    strength = magnitude.sum(dim=0)
    # where() with a clamped copy: no inf (or NaN gradient) for a unit of zero strength
    inv_sqrt = torch.where(strength > 0, strength.clamp_min(1e-30).rsqrt(), 0.0)
    normalised = inv_sqrt[:, None] * magnitude * inv_sqrt[None, :]  # S^-1/2 |W| S^-1/2
    comm = torch.linalg.matrix_exp(normalised)
    return comm * (1 - torch.eye(comm.shape[0], dtype=comm.dtype, device=comm.device))


def communicability_penalty(
    weight: torch.Tensor, distances: torch.Tensor, beta: float
) -> torch.Tensor:
    """seRNN penalty ``beta * Σ_ij |W_ij| C_ij d_ij`` (Achterberg et al. 2023, Methods).

    A long connection costs more (``d``), and so does one between units that already
    communicate strongly through other paths (``C``, see `communicability`): the network
    is pushed towards short, modular wiring. For ``W = D = [[0, 1], [1, 0]]`` the
    penalty is ``2 sinh(1) * beta``.
    """
    check_non_negative("beta", beta)
    _square("weight", weight)
    _check_distances(weight, distances)
    return beta * (weight.abs() * communicability(weight) * distances.to(weight)).sum()

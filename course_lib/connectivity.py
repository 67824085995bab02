"""Connectivity masks: sparse connections as a constraint applied in the forward pass.

Convention used throughout the course: a weight matrix is stored as torch stores it,
``(post, pre) = (out, in)``; entry ``W[i, j]`` is the synapse from unit ``j`` onto unit ``i``.

Sparsity by mask (Song, Yang & Wang 2016, PLoS Comput Biol, "Training excitatory-inhibitory
recurrent neural networks for cognitive tasks", eq. 5)::

    W_sparse = W_dense ⊙ M,     M[i, j] ∈ {0, 1}

The mask is applied every time the weight is *used*, not once after initialisation. Then
a masked entry receives exactly zero gradient (d(W ⊙ M)/dW = M) and whatever an optimiser
does to the underlying dense entry (Adam's momentum, AdamW's weight decay) can never make
the used weight non-zero. `torch.nn.utils.parametrize` expresses exactly this.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib._validate import check_fraction, make_generator


def random_sparse_mask(
    n_post: int,
    n_pre: int,
    density: float,
    *,
    seed: int | torch.Generator | None = 0,
    self_connections: bool = True,
) -> torch.Tensor:
    """A binary ``(n_post, n_pre)`` mask with exactly ``round(density * n_allowed)`` ones.

    The ones are placed uniformly at random among the allowed entries; with
    ``self_connections=False`` the diagonal is never allowed (a unit does not synapse
    onto itself), which needs a square mask. Same seed, same mask.
    """
    check_fraction("density", density)
    if n_post < 1 or n_pre < 1:
        raise ValueError(f"mask shape must be positive, got ({n_post}, {n_pre})")
    if not self_connections and n_post != n_pre:
        raise ValueError(
            f"self_connections=False needs a square (recurrent) mask, got ({n_post}, {n_pre})"
        )
    allowed = torch.ones(n_post, n_pre, dtype=torch.bool)
    if not self_connections:
        allowed.fill_diagonal_(False)
    allowed_idx = allowed.flatten().nonzero().squeeze(1)
    n_ones = round(density * allowed_idx.numel())
    order = torch.randperm(allowed_idx.numel(), generator=make_generator(seed))
    mask = torch.zeros(n_post * n_pre)
    mask[allowed_idx[order[:n_ones]]] = 1.0
    return mask.reshape(n_post, n_pre)


class Mask(nn.Module):
    """Parametrization ``W -> W ⊙ M`` (Song et al. 2016, eq. 5).

    The mask is a buffer: it moves with ``.to()``, is saved in ``state_dict`` and is never
    trained. Register it with :func:`apply_mask`.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        if mask.dim() != 2:
            raise ValueError(
                f"mask must be a 2-D (post, pre) matrix, got shape {tuple(mask.shape)}"
            )
        self.register_buffer("mask", mask.detach().clone().float())

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def apply_mask(module: nn.Module, mask: torch.Tensor, name: str = "weight") -> nn.Module:
    """Constrain ``module.<name>`` to ``original ⊙ mask`` in every forward pass.

    The dense entries under the zeros are also set to zero once, so that inspecting the
    raw parameter shows the same sparsity as the effective weight.
    """
    weight = getattr(module, name)
    if tuple(mask.shape) != tuple(weight.shape):
        raise ValueError(
            f"mask must have the shape of {name}, (post, pre) = {tuple(weight.shape)}, "
            f"got {tuple(mask.shape)}"
        )
    with torch.no_grad():
        weight.mul_(mask.to(weight.dtype))
    parametrize.register_parametrization(module, name, Mask(mask.to(weight.device)))
    return module


def spectral_radius(weight: torch.Tensor) -> float:
    """Largest absolute eigenvalue of a square matrix."""
    return torch.linalg.eigvals(weight.detach().double()).abs().max().item()

"""Dale's law: every unit is either excitatory or inhibitory at all of its outgoing synapses.

Song, Yang & Wang 2016 (PLoS Comput Biol, "Training excitatory-inhibitory recurrent neural
networks for cognitive tasks", section "Dale's principle")::

    W_rec = W_rec,+ D,      W_rec,+ = [W_raw]_+ ⊙ M,      D = diag(s),  s_j = +1 (E) or -1 (I)

Weights are ``(post, pre)``: entry ``W[i, j]`` is the synapse from unit ``j`` onto unit ``i``.
A sign belongs to the *presynaptic* unit ``j`` (its transmitter), so ``D`` multiplies from the
right and signs **columns**: column ``j`` of ``W_rec`` is ``>= 0`` if ``j`` is excitatory and
``<= 0`` if it is inhibitory.

The rectification ``[.]_+`` is applied in the forward pass (a `torch.nn.utils.parametrize`
constraint), so no optimiser step can ever flip a sign: a raw weight that goes negative
just makes the synapse silent.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib._validate import check_positive, check_shape, make_generator
from course_lib.connectivity import apply_mask, spectral_radius
from course_lib.models import RateRNN

# ---------------------------------------------------------------------------------------
# Small pure functions (the assignment asks students to write these)
# ---------------------------------------------------------------------------------------


def dale_signs(n_exc: int, n_inh: int) -> torch.Tensor:
    """Sign of each unit: ``+1`` for the ``n_exc`` excitatory units, then ``-1`` for the
    ``n_inh`` inhibitory ones (Song et al. 2016: E units first, I units last)."""
    for name, value in (("n_exc", n_exc), ("n_inh", n_inh)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    if n_exc + n_inh < 1:
        raise ValueError("the network needs at least one unit: n_exc + n_inh must be >= 1")
    return torch.cat([torch.ones(n_exc), -torch.ones(n_inh)])


def split_exc_inh(n_units: int, n_inh: int | None = None) -> tuple[int, int]:
    """``(n_exc, n_inh)`` for a network of ``n_units``; by default 20 % inhibitory (80/20)."""
    if not isinstance(n_units, int) or n_units < 1:
        raise ValueError(f"n_units must be a positive integer, got {n_units!r}")
    if n_inh is None:
        n_inh = round(0.2 * n_units)
    if not isinstance(n_inh, int) or isinstance(n_inh, bool) or not 0 <= n_inh <= n_units:
        raise ValueError(
            f"n_inh must be an integer between 0 and the network size {n_units}, got {n_inh!r}"
        )
    return n_units - n_inh, n_inh


def sign_matrix(signs: torch.Tensor) -> torch.Tensor:
    """The diagonal matrix ``D = diag(signs)`` (Song et al. 2016)."""
    check_shape("signs", signs, (-1,))
    if not bool(((signs == 1) | (signs == -1)).all()):
        raise ValueError("signs must contain only +1 (excitatory) and -1 (inhibitory)")
    return torch.diag(signs)


def dale_weight(
    w_raw: torch.Tensor, signs: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Effective weight ``W = ([W_raw]_+ ⊙ M) D`` (Song et al. 2016, Dale's principle).

    ``w_raw`` is ``(post, pre)``; ``signs`` has one entry per *presynaptic* unit (column).
    """
    check_shape("w_raw", w_raw, (-1, signs.shape[0]))
    w_pos = torch.relu(w_raw)  # rectify: a synapse has a magnitude, never a sign of its own
    if mask is not None:
        check_shape("mask", mask, tuple(w_raw.shape))
        w_pos = w_pos * mask
    # `* signs` scales column j by signs[j]: the same as `@ diag(signs)`, without the N x N D.
    return w_pos * signs


def balance_ei(w_pos: torch.Tensor, signs: torch.Tensor) -> torch.Tensor:
    """Rescale each row's inhibitory entries so that every unit's summed excitatory input
    equals its summed inhibitory input: ``sum_{j in E} W_ij = sum_{j in I} W_ij``.

    Then each row of ``W_pos D`` sums to zero, so a uniform rate across the network gives
    no net recurrent drive (balanced initialisation; Song et al. 2016, Methods).
    ``w_pos`` holds non-negative magnitudes ``(post, pre)``.
    """
    check_shape("w_pos", w_pos, (-1, signs.shape[0]))
    if bool((w_pos < 0).any()):
        raise ValueError("w_pos must be non-negative (magnitudes, before the signs)")
    is_exc = signs > 0
    exc_sum = w_pos[:, is_exc].sum(dim=1)
    inh_sum = w_pos[:, ~is_exc].sum(dim=1)
    unbalanceable = (inh_sum == 0) & (exc_sum > 0)
    if bool(unbalanceable.any()):
        row = int(unbalanceable.nonzero()[0])
        raise ValueError(
            f"unit {row} receives excitation but no inhibition, so it cannot be balanced: "
            "every unit with excitatory inputs needs at least one inhibitory input"
        )
    # a row with inhibition but no excitation gets scale 0: zero in, zero out is balanced
    scale = torch.where(inh_sum > 0, exc_sum / inh_sum.clamp_min(1e-30), 0.0)
    balanced = w_pos.clone()
    balanced[:, ~is_exc] *= scale[:, None]
    return balanced


def scale_to_spectral_radius(weight: torch.Tensor, radius: float) -> torch.Tensor:
    """``weight * radius / rho(weight)``: the same matrix with spectral radius ``radius``.

    Song et al. 2016 (Methods): ``W_rec = (rho / rho_0) W_0`` where ``rho_0`` is the spectral
    radius of the initial matrix, computed numerically (no closed form for E/I matrices).
    A positive factor multiplies every eigenvalue, so balance and signs are kept.
    """
    check_positive("radius", radius)
    current = spectral_radius(weight)
    if current == 0:
        raise ValueError("weight has spectral radius 0 (e.g. all zeros): it cannot be rescaled")
    return (weight.double() * (radius / current)).to(weight.dtype)


def no_self_connections(n_units: int) -> torch.Tensor:
    """A ``(n_units, n_units)`` mask of ones with a zero diagonal (no autapses)."""
    return 1.0 - torch.eye(n_units)


# ---------------------------------------------------------------------------------------
# The constraint as a parametrization, and the E/I network
# ---------------------------------------------------------------------------------------


class DaleWeight(nn.Module):
    """Parametrization ``W_raw -> ([W_raw]_+ ⊙ M) D`` for `torch.nn.utils.parametrize`.

    ``signs`` (one per presynaptic column) and the optional ``mask`` are buffers: they move
    with ``.to()``, are saved in ``state_dict`` and are never trained.
    """

    def __init__(self, signs: torch.Tensor, mask: torch.Tensor | None = None):
        super().__init__()
        sign_matrix(signs)  # validates: only +1 / -1
        self.register_buffer("signs", signs.detach().clone().float())
        if mask is None:
            mask = torch.ones(signs.shape[0], signs.shape[0])
        if mask.dim() != 2 or mask.shape[1] != signs.shape[0]:
            raise ValueError(
                f"mask must be (post, pre) with {signs.shape[0]} columns (one per sign), "
                f"got shape {tuple(mask.shape)}"
            )
        self.register_buffer("mask", mask.detach().clone().float())

    def forward(self, w_raw: torch.Tensor) -> torch.Tensor:
        return dale_weight(w_raw, self.signs, self.mask)


class NonNegative(nn.Module):
    """Parametrization ``W -> [W]_+``: non-negative (excitatory) input weights (Song et al.
    2016: inputs are long-range projections, hence excitatory)."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return torch.relu(weight)


def balanced_dale_init(
    signs: torch.Tensor,
    mask: torch.Tensor,
    radius: float,
    *,
    seed: int | torch.Generator | None = 0,
) -> torch.Tensor:
    """Non-negative magnitudes ``W_pos`` (post, pre) such that ``W_pos D`` is E/I balanced
    row by row and has spectral radius exactly ``radius`` (Song et al. 2016, Methods).

    Magnitudes are half-normal (Song et al. use a gamma distribution; any positive
    distribution works, and this one needs only a seeded torch generator).
    """
    n = signs.shape[0]
    check_shape("mask", mask, (n, n))
    generator = make_generator(seed)
    w_pos = torch.randn(n, n, generator=generator, dtype=torch.float64).abs() * mask.double()
    w_pos = balance_ei(w_pos, signs.double())
    w_eff = scale_to_spectral_radius(w_pos * signs.double(), radius)
    return (w_eff * signs.double()).float()  # back to magnitudes: W_pos = W_eff D (D² = I)


class EIRateRNN(RateRNN):
    """`course_lib.models.RateRNN` obeying Dale's law (Song, Yang & Wang 2016).

    Same dynamics and the same ``forward(inputs) -> (outputs, rates)``; what changes:

    - recurrent weights: ``W_rec = ([W_raw]_+ ⊙ M) D`` with ``D = diag(+1 x n_exc, -1 x n_inh)``
      (a `DaleWeight` parametrization); ``M`` removes self-connections by default and can add
      sparsity;
    - input weights are non-negative (`NonNegative` parametrization);
    - the readout sees excitatory units only (a `Mask` on the readout's inhibitory columns);
    - initialisation: each unit's E and I inputs cancel, and the spectral radius of the
      effective signed ``W_rec`` is exactly ``radius``.

    Attributes: ``n_exc``, ``n_inh``, ``signs`` (buffer, +1/-1 per unit), ``is_excitatory``
    (bool buffer); units ``0 .. n_exc-1`` are excitatory, the last ``n_inh`` inhibitory.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int,
        n_output: int,
        *,
        n_inh: int | None = None,
        dt: float = 20.0,
        tau: float = 100.0,
        noise_std: float = 0.0,
        mask: torch.Tensor | None = None,
        self_connections: bool = False,
        radius: float = 1.5,
        seed: int = 0,
    ):
        n_exc, n_inh = split_exc_inh(n_hidden, n_inh)
        if n_exc == 0 or n_inh == 0:
            raise ValueError(
                f"an E/I network needs excitatory and inhibitory units (E for the readout, I "
                f"for the balance): got n_exc={n_exc}, n_inh={n_inh} of n_hidden={n_hidden}"
            )
        check_positive("radius", radius)
        super().__init__(
            n_input, n_hidden, n_output, dt=dt, tau=tau, noise_std=noise_std, seed=seed
        )
        self.n_exc, self.n_inh = n_exc, n_inh
        signs = dale_signs(n_exc, n_inh)
        self.register_buffer("signs", signs)
        self.register_buffer("is_excitatory", signs > 0)

        allowed = (
            torch.ones(n_hidden, n_hidden) if self_connections else no_self_connections(n_hidden)
        )
        if mask is not None:
            check_shape("mask", mask, (n_hidden, n_hidden))
            allowed = allowed * mask.float()

        generator = make_generator(seed)
        with torch.no_grad():
            self.recurrent.weight.copy_(balanced_dale_init(signs, allowed, radius, seed=generator))
            # Inputs: positive magnitudes, same scale as RateRNN's 1/sqrt(n_input).
            self.input.weight.normal_(0.0, 1.0 / math.sqrt(n_input), generator=generator)
            self.input.weight.abs_()
        parametrize.register_parametrization(self.recurrent, "weight", DaleWeight(signs, allowed))
        parametrize.register_parametrization(self.input, "weight", NonNegative())
        # Long-range projections are excitatory: read out from E units only.
        readout_mask = self.is_excitatory.float().repeat(n_output, 1)
        apply_mask(self.readout, readout_mask)

    @property
    def recurrent_mask(self) -> torch.Tensor:
        """The fixed 0/1 mask ``M`` of allowed recurrent synapses (post, pre)."""
        return self.recurrent.parametrizations.weight[0].mask


__all__ = [
    "DaleWeight",
    "EIRateRNN",
    "NonNegative",
    "balance_ei",
    "balanced_dale_init",
    "dale_signs",
    "dale_weight",
    "no_self_connections",
    "scale_to_spectral_radius",
    "sign_matrix",
    "split_exc_inh",
]

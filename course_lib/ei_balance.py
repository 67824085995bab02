"""E/I balance by inhibitory plasticity (Vogels, Sprekeler, Zenke, Clopath & Gerstner 2011,
Science 334:1569, "Inhibitory plasticity balances excitation and inhibition in sensory
pathways and memory networks").

One postsynaptic rate neuron receives ``n_channels`` input pathways. Pathway ``k`` carries a
fluctuating rate ``x_k(t)`` through an excitatory synapse ``w_E[k]`` (fixed, bell-shaped
tuning) and an inhibitory synapse ``w_I[k]`` (plastic, flat at the start)::

    y = [ w_E · x - w_I · x ]_+                         output rate
    Δw_I[k] = η x_k (y - r0)                           Vogels et al. 2011, rate form of iSTDP

Too much output (``y > r0``) strengthens the inhibitory synapses that were active, too little
weakens them. The rule stops changing ``w_I[k]`` when ``<x_k (y - r0)> = 0`` for every
pathway, i.e. when each pathway's inhibition matches its excitation up to a constant: the
inhibitory tuning comes to *track* the excitatory tuning ("detailed balance") and the
output settles near ``r0``. (Exactly: ``<y> = r0 - c var(x) / <x>`` with ``c`` the net
excitatory weight left per pathway, so weak fluctuations put ``<y>`` close to ``r0``.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from course_lib._validate import check_non_negative, check_positive, check_shape, make_generator


def bell_tuning(
    n_channels: int = 8,
    preferred: float = 4.0,
    width: float = 1.5,
    low: float = 0.6,
    high: float = 2.4,
) -> torch.Tensor:
    """Excitatory weights with a Gaussian bump over the channels: ``high`` at ``preferred``,
    falling to ``low`` far away (Vogels et al. 2011, Fig. 1: 8 pathways, tuned excitation)."""
    if not isinstance(n_channels, int) or n_channels < 2:
        raise ValueError(f"n_channels must be an integer >= 2, got {n_channels!r}")
    check_positive("width", width)
    check_non_negative("low", low)
    if high < low:
        raise ValueError(f"high must be >= low, got high={high}, low={low}")
    channels = torch.arange(n_channels, dtype=torch.float64)
    bump = torch.exp(-((channels - preferred) ** 2) / (2 * width**2))
    return low + (high - low) * bump


def output_rate(w_exc: torch.Tensor, w_inh: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y = [w_E · x - w_I · x]_+`` for inputs ``x`` of shape ``(..., n_channels)``."""
    return torch.relu(x @ (w_exc - w_inh))


def vogels_update(
    w_inh: torch.Tensor, x: torch.Tensor, y: torch.Tensor, r0: float, eta: float
) -> torch.Tensor:
    """One step of ``Δw_I = η x (y - r0)`` (Vogels et al. 2011, rate form of their iSTDP rule).

    ``x``: presynaptic (inhibitory) rates, one per synapse; ``y``: postsynaptic rate.
    Inhibitory weights are magnitudes, so they are kept ``>= 0`` (Dale's law).
    """
    check_shape("x", x, tuple(w_inh.shape))
    return torch.clamp_min(w_inh + eta * x * (y - r0), 0.0)


def channel_inputs(
    n_steps: int,
    n_channels: int,
    *,
    mean: float = 1.0,
    std: float = 0.3,
    seed: int | torch.Generator | None = 0,
) -> torch.Tensor:
    """``(n_steps, n_channels)`` independent fluctuating rates ``[mean + std ξ]_+``.

    Each pathway's E and I synapses see the same rate (Vogels et al. 2011: excitatory and
    inhibitory inputs of a pathway share its signal), which is why their weights can match.
    """
    generator = make_generator(seed)
    noise = torch.randn(n_steps, n_channels, generator=generator, dtype=torch.float64)
    return torch.relu(mean + std * noise)


@dataclass
class InhibitoryPlasticityResult:
    """What a chapter plots: tuning before/after and the output rate over time."""

    w_exc: torch.Tensor  # (n_channels,) fixed excitatory tuning
    w_inh_before: torch.Tensor  # (n_channels,) flat start
    w_inh_after: torch.Tensor  # (n_channels,)
    w_inh_history: torch.Tensor  # (n_snapshots, n_channels)
    snapshot_steps: torch.Tensor  # (n_snapshots,) step of each snapshot
    rate: torch.Tensor  # (n_steps,) output rate at every step
    target_rate: float

    def final_rate(self, fraction: float = 0.1) -> float:
        """Mean output rate over the last ``fraction`` of the run."""
        n = max(1, math.ceil(fraction * self.rate.numel()))
        return float(self.rate[-n:].mean())

    def tuning_correlation(self) -> float:
        """Pearson correlation between the learned inhibitory and the excitatory tuning."""
        return pearson(self.w_inh_after, self.w_exc)


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation of two vectors (NaN if one is constant)."""
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    denominator = a.norm() * b.norm()
    return float(a @ b / denominator) if denominator > 0 else math.nan


def simulate_inhibitory_plasticity(
    *,
    n_channels: int = 8,
    r0: float = 5.0,
    eta: float = 5e-3,
    n_steps: int = 20_000,
    w_inh_init: float = 0.3,
    input_mean: float = 1.0,
    input_std: float = 0.3,
    w_exc: torch.Tensor | None = None,
    n_snapshots: int = 50,
    seed: int | torch.Generator | None = 0,
) -> InhibitoryPlasticityResult:
    """Run the Vogels rule on one rate neuron with tuned excitation and flat inhibition.

    ``w_exc`` defaults to `bell_tuning(n_channels)`. Each step draws new input rates,
    computes ``y`` and applies `vogels_update`.
    """
    check_positive("r0", r0)
    check_positive("eta", eta)
    check_non_negative("w_inh_init", w_inh_init)
    if not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"n_steps must be a positive integer, got {n_steps!r}")
    w_exc = bell_tuning(n_channels) if w_exc is None else w_exc.double()
    check_shape("w_exc", w_exc, (n_channels,))
    if bool((w_exc < 0).any()):
        raise ValueError("w_exc must be non-negative (excitatory magnitudes)")

    inputs = channel_inputs(n_steps, n_channels, mean=input_mean, std=input_std, seed=seed)
    w_inh = torch.full((n_channels,), float(w_inh_init), dtype=torch.float64)
    w_inh_before = w_inh.clone()
    every = max(1, n_steps // n_snapshots)
    rates, snapshots, snapshot_steps = torch.empty(n_steps, dtype=torch.float64), [], []
    for step in range(n_steps):
        x = inputs[step]
        y = output_rate(w_exc, w_inh, x)
        rates[step] = y
        w_inh = vogels_update(w_inh, x, y, r0, eta)
        if step % every == 0 or step == n_steps - 1:
            snapshots.append(w_inh.clone())
            snapshot_steps.append(step)
    return InhibitoryPlasticityResult(
        w_exc=w_exc,
        w_inh_before=w_inh_before,
        w_inh_after=w_inh,
        w_inh_history=torch.stack(snapshots),
        snapshot_steps=torch.tensor(snapshot_steps),
        rate=rates,
        target_rate=float(r0),
    )

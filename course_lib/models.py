"""The continuous-time rate RNN used across the course.

Song, Yang & Wang 2016 (PLoS Comput Biol), eqs. 1-3, discretised with Euler's method and
``alpha = dt / tau`` (the one time convention of this library)::

    x_t = (1 - alpha) x_{t-1} + alpha (W_rec r_{t-1} + W_in u_t + b) + sqrt(2 alpha) sigma xi_t
    r_t = relu(x_t)
    z_t = W_out r_t + b_out

``x`` is the synaptic current, ``r`` the firing rate, ``xi_t ~ N(0, 1)`` private noise.
Weights are ``(post, pre)``. A sparse mask, when given, is a parametrization of ``W_rec``
(see `course_lib.connectivity`), so its zeros hold through any training.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from course_lib._validate import check_non_negative, check_positive, check_shape, make_generator
from course_lib.connectivity import apply_mask


def time_constant_alpha(dt: float, tau: float) -> float:
    """``alpha = dt / tau``; must lie in (0, 1] for the Euler step to be a leaky average."""
    check_positive("dt", dt)
    check_positive("tau", tau)
    alpha = dt / tau
    if alpha > 1:
        raise ValueError(f"dt / tau must be at most 1 (dt={dt}, tau={tau} gives {alpha:.3g})")
    return alpha


class RateRNN(nn.Module):
    """Leaky ReLU rate network with a linear readout.

    Args:
        n_input, n_hidden, n_output: layer sizes.
        dt, tau: time step and membrane time constant (ms); ``alpha = dt / tau``.
        noise_std: ``sigma`` of the recurrent noise (0 for none).
        mask: optional binary ``(n_hidden, n_hidden)`` mask of allowed recurrent synapses.
        gain: recurrent weights are drawn with standard deviation
            ``gain / sqrt(n_hidden * density)`` so the masked matrix has spectral radius
            about ``gain`` at initialisation.
        seed: seeds the initial weights and the noise.

    ``forward(inputs)`` takes ``(T, B, n_input)`` and returns ``(outputs, rates)`` with
    shapes ``(T, B, n_output)`` and ``(T, B, n_hidden)``.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int,
        n_output: int,
        *,
        dt: float = 20.0,
        tau: float = 100.0,
        noise_std: float = 0.0,
        mask: torch.Tensor | None = None,
        gain: float = 0.9,
        seed: int = 0,
    ):
        super().__init__()
        self.alpha = time_constant_alpha(dt, tau)
        check_non_negative("noise_std", noise_std)
        self.noise_std = noise_std
        self.n_hidden = n_hidden
        self.input = nn.Linear(n_input, n_hidden)
        self.recurrent = nn.Linear(n_hidden, n_hidden)
        self.readout = nn.Linear(n_hidden, n_output)

        generator = make_generator(seed)
        density = 1.0 if mask is None else float(mask.mean())
        with torch.no_grad():
            self.input.weight.normal_(0.0, 1.0 / math.sqrt(n_input), generator=generator)
            self.input.bias.zero_()
            std = gain / math.sqrt(n_hidden * max(density, 1.0 / n_hidden))
            self.recurrent.weight.normal_(0.0, std, generator=generator)
            self.recurrent.bias.zero_()
            self.readout.weight.normal_(0.0, 1.0 / math.sqrt(n_hidden), generator=generator)
            self.readout.bias.zero_()
        if mask is not None:
            check_shape("mask", mask, (n_hidden, n_hidden))
            apply_mask(self.recurrent, mask)
        self._noise = make_generator(seed + 1)

    def forward(
        self, inputs: torch.Tensor, x0: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape("inputs", inputs, (-1, -1, self.input.in_features))
        steps, batch, _ = inputs.shape
        x = inputs.new_zeros(batch, self.n_hidden) if x0 is None else x0
        r = torch.relu(x)
        w_rec = self.recurrent.weight  # computed once per sequence: masked if a mask is set
        drive_in = self.input(inputs)  # all time steps at once
        noise_scale = math.sqrt(2 * self.alpha) * self.noise_std
        rates = []
        for t in range(steps):
            drive = r @ w_rec.T + self.recurrent.bias + drive_in[t]
            x = (1 - self.alpha) * x + self.alpha * drive
            if noise_scale > 0:
                noise = torch.randn(batch, self.n_hidden, generator=self._noise)
                x = x + noise_scale * noise.to(x)
            r = torch.relu(x)
            rates.append(r)
        rates = torch.stack(rates)
        return self.readout(rates), rates

"""The continuous-time rate RNN used across the course.

Song, Yang & Wang 2016 (PLoS Comput Biol), eqs. 1-3, discretised with Euler's method and
``alpha = dt / tau`` (the one time convention of this library)::

    x_t = (1 - alpha) x_{t-1} + alpha (W_rec r_{t-1} + W_in u_t + b) + sqrt(2 alpha) sigma xi_t
    r_t = relu(x_t)
    z_t = W_out r_t + b_out

``x`` is the synaptic current, ``r`` the firing rate, ``xi_t ~ N(0, 1)`` private noise.
Weights are ``(post, pre)``. A sparse mask, when given, is a parametrization of ``W_rec``
(see `course_lib.connectivity`), so its zeros hold through any training.

`RateRNNEnsemble` runs several such networks side by side as one batched model, for seed
studies: `train_ensemble` trains every member as `course_lib.training.train` would train it
alone, and `ensemble_accuracy` scores them all on the same held-out trials.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils import parametrize

from course_lib._threads import one_thread
from course_lib._validate import check_non_negative, check_positive, check_shape, make_generator
from course_lib.analysis import decision_accuracy
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


# --- Several networks trained side by side (seed studies) --------------------------------


def _raw_recurrent(model: RateRNN) -> tuple[torch.Tensor, torch.Tensor]:
    """(stored recurrent weight, mask) of a RateRNN; an unmasked network has a mask of ones."""
    if parametrize.is_parametrized(model.recurrent, "weight"):
        weights = model.recurrent.parametrizations.weight
        return weights.original, weights[0].mask
    return model.recurrent.weight, torch.ones_like(model.recurrent.weight)


class RateRNNEnsemble(nn.Module):
    """Several `RateRNN` networks of one size run side by side as one batched model.

    A seed study trains many small networks. One after the other, every time step is a
    few tiny matrix products whose cost is mostly per-call overhead; stacked along a
    leading *member* dimension they become a few batched products. Each member keeps its
    own weights and mask (members may differ in density), and `train_ensemble` gives each
    its own loss, gradient clipping and AdamW state, so a member trains exactly as it
    would alone on the same batches, except that its noise comes from the ensemble's
    generator (``seed``).

    ``forward(inputs)`` takes ``(T, B, n_input)``, the same trials for every member, and
    returns ``(outputs, rates)`` of shapes ``(K, T, B, n_output)`` and ``(K, T, B, n_hidden)``.
    """

    def __init__(self, members: Sequence[RateRNN], *, seed: int = 0):
        super().__init__()
        if not members:
            raise ValueError("an ensemble needs at least one member")
        first = members[0]
        for k, model in enumerate(members):
            if type(model) is not RateRNN:
                raise TypeError(f"member {k} is a {type(model).__name__}, not a RateRNN")
            same = (model.alpha, model.noise_std, model.input.weight.shape,
                    model.readout.weight.shape)
            if same != (first.alpha, first.noise_std, first.input.weight.shape,
                        first.readout.weight.shape):
                raise ValueError(f"member {k} differs from member 0 in size, alpha or noise")
        self.alpha, self.noise_std = first.alpha, first.noise_std
        self._templates = [copy.deepcopy(model) for model in members]

        def stacked(get) -> nn.Parameter:
            return nn.Parameter(torch.stack([get(m).detach().clone() for m in members]))

        self.w_in = stacked(lambda m: m.input.weight)
        self.b_in = stacked(lambda m: m.input.bias)
        self.w_rec = stacked(lambda m: _raw_recurrent(m)[0])
        self.b_rec = stacked(lambda m: m.recurrent.bias)
        self.w_out = stacked(lambda m: m.readout.weight)
        self.b_out = stacked(lambda m: m.readout.bias)
        self.register_buffer("mask", torch.stack([_raw_recurrent(m)[1].clone() for m in members]))
        self._noise = make_generator(seed)

    def __len__(self) -> int:
        return self.w_rec.shape[0]

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_shape("inputs", inputs, (-1, -1, self.w_in.shape[2]))
        steps, batch, _ = inputs.shape
        members, n_hidden, _ = self.w_rec.shape
        # RateRNN's Euler step, for every member at once; w_rec_t[k] is (W_rec ⊙ M)ᵀ of member k
        w_rec_t = (self.w_rec * self.mask).transpose(1, 2)
        drive_in = torch.einsum("tbi,kni->tkbn", inputs, self.w_in) + self.b_in[:, None, :]
        bias = self.b_rec[:, None, :]
        noise_scale = math.sqrt(2 * self.alpha) * self.noise_std
        x = inputs.new_zeros(members, batch, n_hidden)
        r = torch.relu(x)
        rates = []
        for t in range(steps):
            drive = torch.baddbmm(bias + drive_in[t], r, w_rec_t)
            x = (1 - self.alpha) * x + self.alpha * drive
            if noise_scale > 0:
                noise = torch.randn(members, batch, n_hidden, generator=self._noise)
                x = x + noise_scale * noise.to(x)
            r = torch.relu(x)
            rates.append(r)
        rates = torch.stack(rates, dim=1)  # (K, T, B, N)
        outputs = torch.einsum("ktbn,kon->ktbo", rates, self.w_out) + self.b_out[:, None, None]
        return outputs, rates

    @torch.no_grad()
    def member(self, k: int) -> RateRNN:
        """Member ``k`` as a stand-alone `RateRNN` with the ensemble's current weights."""
        model = copy.deepcopy(self._templates[k])
        model.input.weight.copy_(self.w_in[k])
        model.input.bias.copy_(self.b_in[k])
        _raw_recurrent(model)[0].copy_(self.w_rec[k])
        model.recurrent.bias.copy_(self.b_rec[k])
        model.readout.weight.copy_(self.w_out[k])
        model.readout.bias.copy_(self.b_out[k])
        return model


@one_thread()
def train_ensemble(
    ensemble: RateRNNEnsemble,
    data,
    *,
    n_steps: int,
    lr: float = 1e-2,
    weight_decay: float = 0.0,
    clip_norm: float | None = 1.0,
) -> torch.Tensor:
    """`course_lib.training.train` for every member of ``ensemble`` at once.

    Every member sees the same ``n_steps`` batches of ``data``. The loss is the sum of the
    members' losses, so each member's gradient is its own; each member's gradient is
    clipped to norm ``clip_norm`` on its own, and AdamW acts entry by entry, so every member
    follows the steps it would take alone. Returns the losses, shape ``(n_steps, K)``.
    """
    optimizer = torch.optim.AdamW(ensemble.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    ensemble.train()
    for _ in range(n_steps):
        batch = data.next_batch()
        outputs, _ = ensemble(batch.inputs)
        members = outputs.shape[0]
        targets = batch.targets.expand(members, -1, -1)
        per_step = nn.functional.cross_entropy(outputs.flatten(0, 2), targets.flatten(),
                                               reduction="none")
        member_loss = per_step.view(members, -1).mean(dim=1)
        optimizer.zero_grad()
        member_loss.sum().backward()
        if clip_norm is not None:
            _clip_each_member(ensemble.parameters(), clip_norm)
        optimizer.step()
        losses.append(member_loss.detach())
    return torch.stack(losses)


def _clip_each_member(parameters, clip_norm: float) -> None:
    """`torch.nn.utils.clip_grad_norm_` applied to each member's slice of the gradients."""
    grads = [p.grad for p in parameters]
    norms = torch.stack([g.flatten(1).pow(2).sum(dim=1) for g in grads]).sum(dim=0).sqrt()
    scale = (clip_norm / (norms + 1e-6)).clamp(max=1.0)  # clip_grad_norm_'s own formula
    for grad in grads:
        grad.mul_(scale.view(-1, *[1] * (grad.dim() - 1)))


@torch.no_grad()
@one_thread()
def ensemble_accuracy(ensemble: RateRNNEnsemble, batches: Sequence) -> list[float]:
    """Decision accuracy of every member on the same ``batches`` (like `training.evaluate`)."""
    inputs = torch.cat([batch.inputs for batch in batches], dim=1)
    targets = torch.cat([batch.targets for batch in batches], dim=1)
    ensemble.eval()
    outputs, _ = ensemble(inputs)
    ensemble.train()
    return [decision_accuracy(member_outputs, targets) for member_outputs in outputs]

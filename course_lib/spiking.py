"""Recurrent networks of leaky integrate-and-fire (LIF) units, trained with surrogate gradients.

The units of chapter 13 spike. In discrete time, with steps of ``dt`` (Bellec et al. 2020,
Nat. Commun. 11:3625, Methods, "LIF neurons"; here the current is scaled by ``1 - decay``
so that ``v`` settles at ``I``, and a unit may be refractory)::

    I_t = W_in x_t + W_rec z_{t-1}                              input and recurrent current
    v_t = decay v_{t-1} + (1 - decay) I_t - theta z_{t-1}      leak, input, reset by subtraction
    z_t = H(v_t - theta)                                        a spike: 0 or 1
    y_t = kappa y_{t-1} + W_out z_t                             leaky readout

with ``decay = exp(-dt / tau_m)`` and ``kappa = exp(-dt / tau_out)``. (The rate networks'
``alpha = dt / tau`` of `course_lib.models` is ``1 - decay`` to first order in ``dt``.)
With a constant current the update is the exact solution of ``tau_m dv/dt = -v + I``
over one step, so a unit fires at ``1 / (tau_ref + tau_m ln(I / (I - theta)))`` up to an
error of order ``dt``. A refractory unit (for ``tau_ref`` after its spike) cannot spike
and its voltage is held.

The Heaviside step has derivative zero almost everywhere, so gradient descent cannot
learn through it. SuperSpike (Zenke & Ganguli 2018, Neural Comput. 30:1514, "SuperSpike:
supervised learning in multilayer spiking neural networks") keeps the step in the forward
pass and uses the derivative of a fast sigmoid in the backward pass, the *surrogate*
derivative ``psi(v - theta) = 1 / (1 + beta |v - theta|)^2``. The reset carries no
gradient, as in Bellec et al.'s code (a common choice; Zenke & Vogels 2021, Neural Comput.
33:899, study how robust surrogate-gradient learning is to such details).

Weights are ``(post, pre)`` ``nn.Linear`` modules without bias, like `course_lib.models`,
so masks (`course_lib.connectivity.apply_mask`) and Dale's law
(`course_lib.dale.DaleWeight`) apply to ``net.recurrent`` unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from course_lib._validate import check_non_negative, check_positive, check_shape, make_generator

# ------------------------------------------------------------------ the spike and its surrogate


def surrogate_derivative(x: torch.Tensor, beta: float) -> torch.Tensor:
    """SuperSpike's fast-sigmoid derivative ``1 / (1 + beta |x|)^2`` at ``x = v - theta``.

    Zenke & Ganguli 2018: the derivative of the fast sigmoid ``x / (1 + |x|)``, with a
    steepness ``beta``. It peaks at 1 at the threshold and falls off on a voltage scale of
    ``1 / beta``. Bellec et al. 2020 call it the *pseudo-derivative* ``psi``.
    """
    return 1.0 / (1.0 + beta * x.abs()) ** 2


class SpikeFunction(torch.autograd.Function):
    """``z = H(x)`` forward (exactly 0 or 1, ``H(0) = 1``); ``psi(x)`` times the incoming
    gradient backward (Zenke & Ganguli 2018). Call it as ``SpikeFunction.apply(x, beta)``.
    (Written with ``setup_context`` so that ``torch.func.vmap`` and ``grad`` work through it,
    e.g. to train several seeds at once.)"""

    generate_vmap_rule = True

    @staticmethod
    def forward(x: torch.Tensor, beta: float) -> torch.Tensor:
        return (x >= 0).to(x.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output) -> None:
        x, beta = inputs
        ctx.save_for_backward(x)
        ctx.beta = beta

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad_output * surrogate_derivative(x, ctx.beta), None


def spike(x: torch.Tensor, beta: float = 10.0) -> torch.Tensor:
    """``H(x)`` with SuperSpike's surrogate gradient (`SpikeFunction`)."""
    return SpikeFunction.apply(x, beta)


# -------------------------------------------------------------------------- one time step


def membrane_decay(dt: float, tau: float) -> float:
    """``exp(-dt / tau)``: how much of the voltage is left after one step of ``dt``."""
    check_positive("dt", dt)
    check_positive("tau", tau)
    return math.exp(-dt / tau)


def lif_step(
    v: torch.Tensor,
    z: torch.Tensor,
    current: torch.Tensor,
    *,
    decay: float,
    threshold: float = 1.0,
    beta: float = 10.0,
    refractory: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the LIF units: ``(v_{t-1}, z_{t-1}, I_t) -> (v_t, z_t)``.

    ``v_t = decay v_{t-1} + (1 - decay) I_t - theta z_{t-1}`` (leak first, then the input;
    reset by subtracting the threshold, without gradient), ``z_t = H(v_t - theta)`` with
    the surrogate gradient. ``refractory`` (bool, the shape of ``v``): these units keep
    their voltage (the reset still applies) and do not spike.
    """
    integrated = decay * v + (1 - decay) * current
    if refractory is not None:
        integrated = torch.where(refractory, v, integrated)  # held while refractory
    v = integrated - threshold * z.detach()  # reset by subtraction, no gradient through it
    z = spike(v - threshold, beta)
    if refractory is not None:
        z = z * (~refractory)
    return v, z


def refractory_update(counter: torch.Tensor, z: torch.Tensor, steps: int) -> torch.Tensor:
    """Steps of refractoriness left: ``steps`` after a spike, then counting down to 0.

    A unit that spikes at ``t`` is refractory at ``t + 1, ..., t + steps`` (``counter > 0``
    before those steps).
    """
    return torch.where(z > 0, steps, (counter - 1).clamp(min=0))


def readout_step(
    y: torch.Tensor, z: torch.Tensor, w_out: torch.Tensor, decay: float
) -> torch.Tensor:
    """The leaky readout ``y_t = kappa y_{t-1} + W_out z_t`` (Bellec et al. 2020, Methods)."""
    return decay * y + z @ w_out.T


# ------------------------------------------------------------------ losses and the energy cost


def task_loss(outputs: torch.Tensor, targets: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """The loss at every time step, averaged over time and trials.

    ``"mse"``: ``1/2 |y*_t - y_t|^2`` with ``targets`` ``(T, B, n_output)``;
    ``"cross_entropy"``: softmax cross-entropy with class labels ``targets`` ``(T, B)``
    (as `course_lib.training.train`). Either way ``dL/dy_t = error_t / (T B)``, with the
    error of `output_error`.
    """
    if loss == "mse":
        check_shape("targets", targets, tuple(outputs.shape))
        return 0.5 * ((targets - outputs) ** 2).sum(-1).mean()
    if loss == "cross_entropy":
        check_shape("targets", targets, tuple(outputs.shape[:-1]))
        return nn.functional.cross_entropy(outputs.flatten(0, -2), targets.flatten())
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


def output_error(outputs: torch.Tensor, targets: torch.Tensor, loss: str = "mse") -> torch.Tensor:
    """The output error of one step: ``y - y*`` (mse) or ``softmax(y) - onehot(y*)``
    (cross-entropy), the factor the learning signal carries (Bellec et al. 2020, Methods)."""
    if loss == "mse":
        return outputs - targets
    if loss == "cross_entropy":
        onehot = nn.functional.one_hot(targets, outputs.shape[-1]).to(outputs.dtype)
        return torch.softmax(outputs, -1) - onehot
    raise ValueError(f"loss must be 'mse' or 'cross_entropy', got {loss!r}")


def spike_count_penalty(spikes: torch.Tensor, strength: float = 1.0) -> torch.Tensor:
    """``strength`` times the mean number of spikes a unit fires in a trial: an energy cost.

    Most of the brain's energy budget goes into spikes and the synaptic transmission they
    cause (Attwell & Laughlin 2001, J. Cereb. Blood Flow Metab. 21:1133), so a brain-like
    cost counts them. ``spikes`` ``(T, B, N)``; the surrogate gradient reaches it.
    """
    return strength * spikes.sum(0).mean()


def spikes_per_trial(spikes: torch.Tensor) -> float:
    """The whole network's spike count in one trial, averaged over the trials of the batch."""
    return spikes.detach().sum((0, 2)).mean().item()


def poisson_spikes(
    rates: torch.Tensor, dt: float, *, seed: int | torch.Generator | None = 0
) -> torch.Tensor:
    """Input spike trains: in each step of ``dt`` (ms) a spike with probability
    ``rate * dt / 1000`` (``rates`` in Hz, any shape, e.g. ``(T, B, n_input)``), independently:
    the Bernoulli approximation of a Poisson process, exact in the limit of small ``dt``."""
    check_positive("dt", dt)
    probability = rates * dt / 1000.0
    if bool((probability < 0).any()) or bool((probability > 1).any()):
        raise ValueError(f"rates must lie in [0, 1000 / dt] = [0, {1000.0 / dt:g}] Hz")
    return torch.bernoulli(probability, generator=make_generator(seed))


# ------------------------------------------------------------------------------ the network


@dataclass
class SpikingRun:
    """One simulated batch: ``outputs`` ``(T, B, n_output)``; ``spikes`` and ``voltages``
    ``(T, B, N)``."""

    outputs: torch.Tensor
    spikes: torch.Tensor
    voltages: torch.Tensor


class SpikingRNN(nn.Module):
    """A recurrent network of LIF units with a leaky readout and a random feedback ``B``.

    Args:
        n_input, n_hidden, n_output: layer sizes.
        dt, tau_m, tau_out, tau_ref: time step, membrane and readout time constants and
            refractory period (ms).
        threshold: ``theta``; beta: steepness of the surrogate derivative.
        input_gain, gain: input weights have standard deviation ``input_gain / sqrt(n_input)``,
            recurrent ones ``gain / sqrt(n_hidden)``.
        seed: seeds the initial weights and ``B``.

    ``input``, ``recurrent``, ``readout`` are bias-free ``nn.Linear`` modules (weights
    ``(post, pre)``); ``feedback`` ``(n_hidden, n_output)`` is a buffer for e-prop
    (`course_lib.learning_rules.eprop`). ``forward(inputs)`` takes ``(T, B, n_input)``
    and returns ``(outputs, spikes)``, as `course_lib.models.RateRNN` returns
    ``(outputs, rates)``; `simulate` also returns the voltages. ``loss.backward()`` through
    it is BPTT with the surrogate gradient.
    """

    def __init__(
        self,
        n_input: int,
        n_hidden: int,
        n_output: int,
        *,
        dt: float = 1.0,
        tau_m: float = 20.0,
        tau_out: float = 20.0,
        tau_ref: float = 0.0,
        threshold: float = 1.0,
        beta: float = 10.0,
        input_gain: float = 1.0,
        gain: float = 1.0,
        seed: int | torch.Generator | None = 0,
    ):
        super().__init__()
        check_non_negative("tau_ref", tau_ref)
        check_positive("threshold", threshold)
        check_positive("beta", beta)
        self.decay = membrane_decay(dt, tau_m)
        self.readout_decay = membrane_decay(dt, tau_out)
        self.refractory_steps = round(tau_ref / dt)
        self.threshold, self.beta = float(threshold), float(beta)
        self.input = nn.Linear(n_input, n_hidden, bias=False)
        self.recurrent = nn.Linear(n_hidden, n_hidden, bias=False)
        self.readout = nn.Linear(n_hidden, n_output, bias=False)
        generator = make_generator(seed)
        with torch.no_grad():
            self.input.weight.normal_(0.0, input_gain / math.sqrt(n_input), generator=generator)
            self.recurrent.weight.normal_(0.0, gain / math.sqrt(n_hidden), generator=generator)
            self.readout.weight.normal_(0.0, 1.0 / math.sqrt(n_hidden), generator=generator)
        feedback = torch.randn(n_hidden, n_output, generator=generator) / math.sqrt(n_hidden)
        self.register_buffer("feedback", feedback)

    def simulate(self, inputs: torch.Tensor) -> SpikingRun:
        """Run ``inputs`` ``(T, B, n_input)`` from rest (``v = 0``, no spikes)."""
        check_shape("inputs", inputs, (-1, -1, self.input.in_features))
        batch, n_hidden = inputs.shape[1], self.recurrent.in_features
        w_in, w_rec, w_out = self.input.weight, self.recurrent.weight, self.readout.weight
        v = inputs.new_zeros(batch, n_hidden)
        z = inputs.new_zeros(batch, n_hidden)
        y = inputs.new_zeros(batch, w_out.shape[0])
        counter = torch.zeros(batch, n_hidden, dtype=torch.long)
        outputs, spikes, voltages = [], [], []
        for x in inputs:
            refractory = counter > 0 if self.refractory_steps else None
            current = x @ w_in.T + z @ w_rec.T  # z is still z_{t-1} here
            v, z = lif_step(v, z, current, decay=self.decay, threshold=self.threshold,
                            beta=self.beta, refractory=refractory)
            counter = refractory_update(counter, z, self.refractory_steps)
            y = readout_step(y, z, w_out, self.readout_decay)
            outputs.append(y)
            spikes.append(z)
            voltages.append(v)
        return SpikingRun(torch.stack(outputs), torch.stack(spikes), torch.stack(voltages))

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        run = self.simulate(inputs)
        return run.outputs, run.spikes


def lif_rate(
    current: float, *, tau_m: float, tau_ref: float = 0.0, threshold: float = 1.0
) -> float:
    """Firing rate of a LIF unit in continuous time with a constant ``current`` (per ms
    when the times are in ms): ``1 / (tau_ref + tau_m ln(I / (I - theta)))`` above
    threshold, 0 below (Gerstner et al. 2014, Neuronal Dynamics, ch. 1)."""
    if current <= threshold:
        return 0.0
    return 1.0 / (tau_ref + tau_m * math.log(current / (current - threshold)))


__all__ = [
    "SpikeFunction",
    "SpikingRNN",
    "SpikingRun",
    "lif_rate",
    "lif_step",
    "membrane_decay",
    "output_error",
    "poisson_spikes",
    "readout_step",
    "refractory_update",
    "spike",
    "spike_count_penalty",
    "spikes_per_trial",
    "surrogate_derivative",
    "task_loss",
]

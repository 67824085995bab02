"""e-prop: eligibility propagation for recurrent spiking networks, online and local.

Bellec, Scherr, Subramoney, Hajek, Salaj, Legenstein & Maass 2020 (Nat. Commun. 11:3625,
"A solution to the learning dilemma for recurrent networks of spiking neurons"): RFLO's
(`course_lib.learning_rules.rflo`) spiking counterpart, for the LIF network of
`course_lib.spiking`. The gradient of the loss ``E`` is written (Bellec et al., eq. 1) as::

    dE/dW_ji = sum_t L_j^t e_ji^t

a *learning signal* ``L_j^t`` that unit ``j`` receives, times an *eligibility trace*
``e_ji^t`` that synapse ``i -> j`` computes from what it sees. For LIF units (Methods)::

    eps_i^t   = decay eps_i^{t-1} + (1 - decay) pre_i^t     pre: x_t (input), z_{t-1} (recurrent)
    e_ji^t    = psi_j^t eps_i^t                               psi: surrogate derivative at v_j^t
    ebar_ji^t = kappa ebar_ji^{t-1} + e_ji^t                  filtered like the leaky readout
    L_j^t     = sum_k B_jk err_k^t                            err = dE/dy_t; B random and fixed
    dE/dW_ji ~ sum_t L_j^t ebar_ji^t,   dE/dW_out = sum_t err^t zbar^t    (zbar: filtered spikes)

The trace is a low-pass filter of the *presynaptic* spikes times the *postsynaptic*
pseudo-derivative: both local to the synapse. What e-prop drops is the path from a spike
through ``W_rec`` into other units' later voltages (``dv_k^{t+1}/dz_j^t``): exact BPTT
needs it and it is non-local. It replaces ``W_out^T`` by a random ``B`` (random e-prop; no
weight transport). So with ``W_rec = 0`` and ``B = W_out^T`` e-prop *is* BPTT with the
surrogate gradient, and with recurrence and ``B = W_out^T`` it is BPTT with the spikes'
path through ``W_rec`` cut. The spike-count penalty's learning signal is local and exact.

Refractoriness: ``psi = 0`` while a unit is refractory (it cannot spike, as in Bellec et
al.), and since its voltage is held, so are its synapses' traces: ``eps`` becomes one trace
per synapse (still local), and the identities above stay exact.

Memory: ``batch * N * (N + n_input)`` filtered traces, whatever the trial length; BPTT
stores the whole trajectory. The weights change at the end of the trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course_lib._validate import check_shape
from course_lib.spiking import (
    SpikingRNN,
    lif_step,
    output_error,
    readout_step,
    refractory_update,
    surrogate_derivative,
    task_loss,
)

# ------------------------------------------------- the pieces, one function each (the assignment)


def presynaptic_trace_step(trace: torch.Tensor, pre: torch.Tensor, decay: float) -> torch.Tensor:
    """``eps_t = decay eps_{t-1} + (1 - decay) pre_t``: the presynaptic input filtered by the
    membrane, exactly as the voltage filters it (Bellec et al. 2020, Methods). ``pre`` is
    ``x_t`` for input synapses and ``z_{t-1}`` (the spikes that reach ``v_t``) for
    recurrent ones. Shapes ``(..., n_pre)``."""
    return decay * trace + (1 - decay) * pre


def eligibility_trace(pseudo_derivative: torch.Tensor, trace: torch.Tensor) -> torch.Tensor:
    """``e_ji = psi_j eps_i`` for every synapse at once (Bellec et al. 2020, Methods).

    ``pseudo_derivative`` ``(..., n_post)``, ``trace`` ``(..., n_pre)``; returns
    ``(..., n_post, n_pre)``, an outer product per trial, like the weights ``(post, pre)``.
    """
    return pseudo_derivative[..., :, None] * trace[..., None, :]


def filtered_trace_step(
    filtered: torch.Tensor, eligibility: torch.Tensor, readout_decay: float
) -> torch.Tensor:
    """``ebar_t = kappa ebar_{t-1} + e_t``: the eligibility trace filtered as the readout
    filters spikes, so that ``L_t ebar_t`` credits a spike for the outputs it still moves."""
    return readout_decay * filtered + eligibility


def learning_signal(error: torch.Tensor, feedback: torch.Tensor) -> torch.Tensor:
    """``L_j = sum_k B_jk err_k``: the output error sent to each unit through the fixed
    random feedback ``B`` ``(N, n_output)`` (Bellec et al. 2020, random e-prop).
    ``error`` ``(batch, n_output)``; returns ``(batch, N)``."""
    check_shape("feedback", feedback, (-1, error.shape[-1]))
    return error @ feedback.T


def eprop_gradient(signal: torch.Tensor, filtered: torch.Tensor) -> torch.Tensor:
    """One step's share of ``dE/dW_ji``: ``sum_batch L_j ebar_ji`` (Bellec et al. 2020, eq. 1).

    ``signal`` ``(batch, N)``, ``filtered`` ``(batch, N, n_pre)``; returns ``(N, n_pre)``.
    The loss's ``1/(T B)`` is already in the error, so the steps and trials just add up.
    """
    check_shape("filtered", filtered, (*signal.shape, -1))
    return (signal[:, :, None] * filtered).sum(0)


# ------------------------------------------------------------------------------- one trial


def _trace_step(trace, pre, decay, refractory):
    """`presynaptic_trace_step`; with ``refractory`` given, the trace is one per synapse
    ``(batch, N, n_pre)`` and a refractory unit holds its synapses' traces, as it holds its
    voltage: the trace stays ``dv_j/dW_ji`` through the unit's own dynamics."""
    if refractory is None:
        return presynaptic_trace_step(trace, pre, decay)
    moved = presynaptic_trace_step(trace, pre[..., None, :], decay)
    return torch.where(refractory[..., None], trace, moved)


def _eligibility(psi, trace):
    """`eligibility_trace`, for a trace per input or (refractoriness) per synapse."""
    return eligibility_trace(psi, trace) if trace.dim() == psi.dim() else psi[..., None] * trace


@dataclass
class EpropTrial:
    """One batch of trials run online: the loss (task plus penalty), the network's spikes per
    trial (batch mean), e-prop's estimates of ``dE/dW`` for the *effective* weights (sign as
    autograd's), and the spikes ``(T, B, N)`` if they were recorded."""

    loss: float
    spikes_per_trial: float
    input: torch.Tensor
    recurrent: torch.Tensor
    readout: torch.Tensor
    spikes: torch.Tensor | None = None


@torch.no_grad()
def eprop_trial(
    net: SpikingRNN,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    *,
    loss: str = "mse",
    penalty: float = 0.0,
    record_spikes: bool = False,
) -> EpropTrial:
    """Run ``inputs`` ``(T, B, n_input)`` forward in time once, with e-prop's traces.

    The loss is `course_lib.spiking.task_loss` (``loss`` = "mse" or "cross_entropy") plus
    `course_lib.spiking.spike_count_penalty` of strength ``penalty``. Nothing of the past is
    kept but the traces (and the spikes, for raster plots, if ``record_spikes``). The
    gradients are for the effective weights (after masks or Dale's law);
    `apply_eprop_gradients` carries them to the parameters.
    """
    w_in, w_rec, w_out = net.input.weight, net.recurrent.weight, net.readout.weight
    check_shape("inputs", inputs, (-1, -1, w_in.shape[1]))
    steps, batch, _ = inputs.shape
    n_units = w_rec.shape[0]
    kappa, scale = net.readout_decay, 1.0 / (steps * batch)  # dE/dy_t = err_t / (T B)
    spike_signal = penalty / (batch * n_units)  # d(penalty)/dz_j^t, the same for every spike
    v, z = inputs.new_zeros(batch, n_units), inputs.new_zeros(batch, n_units)
    y, z_filtered = inputs.new_zeros(batch, w_out.shape[0]), inputs.new_zeros(batch, n_units)
    counter = torch.zeros(batch, n_units, dtype=torch.long)
    # presynaptic traces: one per input (batch, n_pre); one per synapse if units can be refractory
    held = net.refractory_steps > 0
    eps_in = inputs.new_zeros(batch, *((n_units,) if held else ()), w_in.shape[1])
    eps_rec = inputs.new_zeros(batch, *((n_units,) if held else ()), n_units)
    ebar_in = inputs.new_zeros(batch, *w_in.shape)
    ebar_rec = inputs.new_zeros(batch, *w_rec.shape)
    g_in, g_rec, g_out = (torch.zeros_like(w) for w in (w_in, w_rec, w_out))
    task, spike_count, spikes = inputs.new_zeros(()), inputs.new_zeros(()), []
    for t in range(steps):
        x = inputs[t]
        refractory = counter > 0
        hold = refractory if held else None
        eps_in = _trace_step(eps_in, x, net.decay, hold)
        eps_rec = _trace_step(eps_rec, z, net.decay, hold)  # z_{t-1}: before z moves on
        v, z = lif_step(v, z, x @ w_in.T + z @ w_rec.T, decay=net.decay,
                        threshold=net.threshold, beta=net.beta, refractory=hold)
        psi = surrogate_derivative(v - net.threshold, net.beta) * (~refractory)
        counter = refractory_update(counter, z, net.refractory_steps)
        e_in, e_rec = _eligibility(psi, eps_in), _eligibility(psi, eps_rec)
        # filtered_trace_step(ebar, e, kappa), in place: ebar are the big (batch, N, n_pre)
        # tensors, and a fresh one at every step costs more than the arithmetic
        ebar_in.mul_(kappa).add_(e_in)
        ebar_rec.mul_(kappa).add_(e_rec)
        y = readout_step(y, z, w_out, kappa)
        z_filtered = kappa * z_filtered + z  # dy_t/dW_out
        error = scale * output_error(y, targets[t], loss)
        signal = learning_signal(error, net.feedback)
        g_in += eprop_gradient(signal, ebar_in)
        g_rec += eprop_gradient(signal, ebar_rec)
        g_out += error.T @ z_filtered
        if penalty:  # the spike's own cost: a local learning signal, not filtered by the readout
            g_in += spike_signal * e_in.sum(0)
            g_rec += spike_signal * e_rec.sum(0)
        task += task_loss(y[None], targets[t : t + 1], loss) / steps
        spike_count += z.sum() / batch
        if record_spikes:
            spikes.append(z)
    total = task.item() + penalty * spike_count.item() / n_units
    return EpropTrial(total, spike_count.item(), g_in, g_rec, g_out,
                      torch.stack(spikes) if record_spikes else None)


def apply_eprop_gradients(net: SpikingRNN, trial: EpropTrial) -> None:
    """Add e-prop's gradients to the parameters' ``.grad``, through any parametrization.

    A mask or Dale's law (`course_lib.dale.DaleWeight`) makes the effective weight an
    entry-by-entry function of the stored one, so the chain rule to the stored weight is
    local too; autograd applies it. Then any torch optimiser can take the step.
    """
    with torch.enable_grad():
        effective = [net.input.weight, net.recurrent.weight, net.readout.weight]
        torch.autograd.backward(effective, [trial.input, trial.recurrent, trial.readout])


__all__ = [
    "EpropTrial",
    "apply_eprop_gradients",
    "eligibility_trace",
    "eprop_gradient",
    "eprop_trial",
    "filtered_trace_step",
    "learning_signal",
    "presynaptic_trace_step",
]

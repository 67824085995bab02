"""The LIF network of `course_lib.spiking` against ground truths that share none of its code.

- the surrogate spike's backward pass against SuperSpike's formula, written here;
- the network's surrogate gradient against BPTT of the same discrete-time equations,
  derived and written by hand in numpy float64 (`numpy_bptt`, also used by test_eprop.py);
- the firing rate at a constant current against the continuous-time LIF rate
  1/(tau_ref + tau_m ln(I/(I - theta))), within a tolerance of a couple of time steps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn.utils import parametrize
from torch.testing import assert_close

from course_lib.connectivity import apply_mask, random_sparse_mask
from course_lib.dale import DaleWeight, dale_signs
from course_lib.spiking import (
    SpikeFunction,
    SpikingRNN,
    lif_rate,
    lif_step,
    poisson_spikes,
    refractory_update,
    spike,
    spike_count_penalty,
    spikes_per_trial,
    task_loss,
)

BETA = 4.0

# ----------------------------------------------------------------- the surrogate spike


def test_spike_is_an_exact_step_forward_and_superspike_backward():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, generator=g, dtype=torch.float64)
    x[:3] = torch.tensor([0.0, 1e-12, -1e-12], dtype=torch.float64)
    x.requires_grad_(True)
    upstream = torch.randn(200, generator=g, dtype=torch.float64)
    z = SpikeFunction.apply(x, BETA)
    assert set(z.tolist()) == {0.0, 1.0}  # a spike or none: no surrogate in the forward pass
    assert z[0] == 1 and z[1] == 1 and z[2] == 0  # H(0) = 1: fire at threshold
    assert torch.equal(z, (x.detach() >= 0).double())
    (grad,) = torch.autograd.grad(z, x, upstream)
    for k in range(200):  # SuperSpike (Zenke & Ganguli 2018): sigma'(x) = (1 + beta |x|)^-2
        expected = upstream[k].item() / (1 + BETA * abs(x[k].item())) ** 2
        assert grad[k].item() == pytest.approx(expected, rel=1e-14)
    assert_close(spike(x, BETA), z)


def test_surrogate_derivative_matches_the_fast_sigmoids_finite_difference():
    """The surrogate is the derivative of sigma(x) = x / (1 + beta |x|) (a fast sigmoid)."""
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)
    x = x[x.abs() > 1e-3].requires_grad_(True)  # away from the kink
    (grad,) = torch.autograd.grad(SpikeFunction.apply(x, BETA).sum(), x)
    h = 1e-6
    sigma = lambda u: u / (1 + BETA * u.abs())  # noqa: E731
    finite = (sigma(x.detach() + h) - sigma(x.detach() - h)) / (2 * h)
    assert_close(grad, finite, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------------------------- one step by hand


def test_lif_step_by_hand_leak_then_input_then_reset_by_subtraction():
    decay, theta = 0.9, 1.0
    v = torch.tensor([[0.5, 1.2, 0.95]])
    z = torch.tensor([[0.0, 1.0, 0.0]])  # unit 1 spiked at the last step
    current = torch.tensor([[2.0, 2.0, 1.6]])
    v_new, z_new = lif_step(v, z, current, decay=decay, threshold=theta, beta=BETA)
    expected = [0.9 * 0.5 + 0.1 * 2.0, 0.9 * 1.2 + 0.1 * 2.0 - 1.0, 0.9 * 0.95 + 0.1 * 1.6]
    assert_close(v_new, torch.tensor([expected]))
    assert torch.equal(z_new, torch.tensor([[0.0, 0.0, 1.0]]))  # 0.65, 0.28, 1.015


def test_a_refractory_unit_holds_its_voltage_and_stays_silent():
    v = torch.tensor([[2.0, 2.0]])
    z = torch.tensor([[0.0, 1.0]])
    refractory = torch.tensor([[True, True]])
    v_new, z_new = lif_step(v, z, torch.full((1, 2), 5.0), decay=0.9, refractory=refractory)
    assert_close(v_new, torch.tensor([[2.0, 1.0]]))  # held; the reset still subtracts
    assert torch.equal(z_new, torch.zeros(1, 2))  # above threshold, yet no spike
    counter = torch.tensor([0, 2, 1, 0])
    spikes = torch.tensor([1.0, 0.0, 0.0, 0.0])
    assert torch.equal(refractory_update(counter, spikes, 3), torch.tensor([3, 1, 0, 0]))


def test_refractory_period_in_the_network():
    """After each spike a unit is silent for exactly tau_ref / dt steps, however strong the
    drive: with I >> theta it fires every 1 + n_ref steps."""
    net = SpikingRNN(1, 1, 1, dt=1.0, tau_m=20.0, tau_ref=3.0).double()
    with torch.no_grad():
        net.input.weight.fill_(1.0)
        net.recurrent.weight.zero_()
    spikes = net.simulate(torch.full((40, 1, 1), 1000.0, dtype=torch.float64)).spikes[:, 0, 0]
    times = spikes.nonzero().squeeze(1)
    assert torch.all(times.diff() == 4), times


def test_spike_count_penalty_by_hand():
    spikes = torch.zeros(5, 2, 3)  # (T, B, N)
    spikes[0, 0, 0] = spikes[1, 0, 0] = spikes[4, 1, 2] = 1.0
    spikes[2, 1, 1] = 1.0
    # 4 spikes over 2 trials x 3 units: 2/3 of a spike per unit and trial
    assert spike_count_penalty(spikes, strength=0.3).item() == pytest.approx(0.3 * 4 / 6)
    assert spikes_per_trial(spikes) == pytest.approx(2.0)


def test_poisson_spikes_fire_at_the_asked_rate_and_are_reproducible():
    rates = torch.tensor([0.0, 10.0, 50.0, 200.0]).expand(20000, 4)  # Hz
    spikes = poisson_spikes(rates, dt=1.0, seed=3)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    for k, rate in enumerate((0.0, 10.0, 50.0, 200.0)):
        p = rate / 1000  # per 1 ms step; the count is binomial(20000, p)
        assert abs(spikes[:, k].mean().item() - p) < 4 * math.sqrt(p * (1 - p) / 20000) + 1e-12
    assert torch.equal(spikes, poisson_spikes(rates, dt=1.0, seed=3))
    with pytest.raises(ValueError, match="rates must lie in"):
        poisson_spikes(torch.tensor([600.0]), dt=2.0)


# ------------------------------------------------------- the surrogate gradient against numpy


def numpy_bptt(w_in, w_rec, w_out, inputs, targets, *, decay, kappa, theta, beta,
               n_ref=0, penalty=0.0, recurrent_path=True):
    """Loss, spikes and dL/dW for the LIF network, forward and backward by hand (float64).

    L = 1/(2TB) sum_{t,b} |y_t - y*_t|^2 + penalty/(BN) sum z. The backward pass is the
    chain rule through time of the forward equations below; the reset carries no gradient,
    and with ``recurrent_path=False`` neither does a spike's path through W_rec.
    """
    w_in, w_rec, w_out = (np.asarray(w, dtype=np.float64) for w in (w_in, w_rec, w_out))
    x, target = np.asarray(inputs, np.float64), np.asarray(targets, np.float64)
    steps, batch, _ = x.shape
    n = w_rec.shape[0]
    v, z, counter = np.zeros((batch, n)), np.zeros((batch, n)), np.zeros((batch, n))
    y = np.zeros((batch, w_out.shape[0]))
    vs, zs, ys, refs = [], [], [], []
    for t in range(steps):
        ref = counter > 0
        current = x[t] @ w_in.T + z @ w_rec.T
        v = np.where(ref, v, decay * v + (1 - decay) * current) - theta * z
        z = ((v >= theta) & ~ref).astype(np.float64)
        counter = np.where(z > 0, n_ref, np.maximum(counter - 1, 0))
        y = kappa * y + z @ w_out.T
        vs.append(v), zs.append(z), ys.append(y), refs.append(ref)
    loss = 0.5 * ((np.stack(ys) - target) ** 2).sum() / (steps * batch)
    loss += penalty * np.stack(zs).sum() / (batch * n)

    g_in, g_rec, g_out = np.zeros_like(w_in), np.zeros_like(w_rec), np.zeros_like(w_out)
    gy_next = np.zeros_like(y)  # dL/dy_{t+1}
    gv_next = np.zeros((batch, n))  # dL/dv_{t+1}
    gi_next = np.zeros((batch, n))  # dL/dI_{t+1}
    for t in reversed(range(steps)):
        gy = (ys[t] - target[t]) / (steps * batch) + kappa * gy_next
        gz = gy @ w_out + penalty / (batch * n)
        if recurrent_path:
            gz = gz + gi_next @ w_rec  # z_t drives I_{t+1} = ... + W_rec z_t
        psi = 1.0 / (1.0 + beta * np.abs(vs[t] - theta)) ** 2
        dv_next_dv = np.where(refs[t + 1], 1.0, decay) if t + 1 < steps else 0.0
        gv = gz * psi * ~refs[t] + gv_next * dv_next_dv
        gi = gv * (1 - decay) * ~refs[t]
        z_prev = zs[t - 1] if t > 0 else np.zeros((batch, n))
        g_in += gi.T @ x[t]
        g_rec += gi.T @ z_prev
        g_out += gy.T @ zs[t]
        gy_next, gv_next, gi_next = gy, gv, gi
    return loss, np.stack(zs), (g_in, g_rec, g_out)


def lif_network(*, seed=0, n_in=3, n_hidden=12, n_out=2, recurrent=1.0, tau_ref=0.0):
    """A float64 net whose units fire often enough for every path of the gradient to matter."""
    net = SpikingRNN(n_in, n_hidden, n_out, dt=1.0, tau_m=5.0, tau_out=8.0, tau_ref=tau_ref,
                     beta=BETA, input_gain=3.0, gain=2.0, seed=seed).double()
    with torch.no_grad():
        net.recurrent.weight.mul_(recurrent)
    return net


def trial_data(steps=30, batch=4, n_in=3, n_out=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = 1.5 * torch.rand(steps, batch, n_in, generator=g, dtype=torch.float64)
    y = torch.randn(steps, batch, n_out, generator=g, dtype=torch.float64)
    return x, y


def autograd_gradients(net, inputs, targets, penalty=0.0):
    net.zero_grad()
    outputs, spikes = net(inputs)
    loss = task_loss(outputs, targets) + spike_count_penalty(spikes, penalty)
    loss.backward()
    weights = (net.input.weight, net.recurrent.weight, net.readout.weight)
    return loss.item(), spikes.detach(), [w.grad.clone() for w in weights]


@pytest.mark.parametrize("tau_ref", [0.0, 2.0])
@pytest.mark.parametrize("penalty", [0.0, 0.05])
def test_surrogate_gradient_equals_bptt_by_hand_in_numpy(tau_ref, penalty):
    net = lif_network(tau_ref=tau_ref)
    x, y = trial_data()
    loss, spikes, grads = autograd_gradients(net, x, y, penalty)
    weights = (net.input.weight, net.recurrent.weight, net.readout.weight)
    np_loss, np_spikes, np_grads = numpy_bptt(
        *(w.detach().numpy() for w in weights), x.numpy(), y.numpy(), decay=net.decay,
        kappa=net.readout_decay, theta=net.threshold, beta=net.beta,
        n_ref=net.refractory_steps, penalty=penalty)
    assert 0.05 < spikes.mean() < 0.6  # units fire, and not at every step
    assert np.array_equal(spikes.numpy(), np_spikes)
    assert loss == pytest.approx(np_loss, rel=1e-12)
    for got, want in zip(grads, np_grads, strict=True):
        assert np.abs(want).max() > 1e-3  # a real gradient
        assert_close(got, torch.from_numpy(want), rtol=1e-10, atol=1e-13)


# ------------------------------------------------------------------ the firing rate of one unit


def simulated_rates(currents, *, dt, tau_m, tau_ref, duration=1000.0):
    """Rates (per ms) of unconnected units, unit k driven by the constant currents[k]."""
    n = len(currents)
    net = SpikingRNN(n, n, 1, dt=dt, tau_m=tau_m, tau_ref=tau_ref).double()
    with torch.no_grad():
        net.input.weight.copy_(torch.eye(n, dtype=torch.float64))
        net.recurrent.weight.zero_()
    steps = round(duration / dt)
    drive = torch.tensor(currents, dtype=torch.float64).expand(steps, 1, n)
    with torch.no_grad():
        spikes = net.simulate(drive).spikes[:, 0, :]
    rates = []
    for k in range(n):  # from the first to the last spike: no start-up transient
        times = spikes[:, k].nonzero().squeeze(1).double() * dt
        rates.append((len(times) - 1) / (times[-1] - times[0]).item())
    return rates


def test_constant_current_fires_at_the_lif_rate_within_a_tolerance_set_by_dt():
    """Continuous-time LIF (reset to 0, held for tau_ref): the interval between spikes is
    tau_ref + tau_m ln(I / (I - theta)). In steps of dt a crossing is detected up to one
    step late, and the reset subtracts theta after the leak, (1 - decay) theta ~ theta dt /
    tau_m too much, which costs up to (theta / I) dt < dt more: the simulated interval must
    be within 2 dt of the analytic one, and the worst error must shrink with dt."""
    tau_m, theta = 20.0, 1.0
    currents = [1.1, 1.3, 1.6, 2.0, 3.0, 5.0]
    worst = {}
    for tau_ref in (0.0, 2.0):
        for dt in (1.0, 0.5, 0.25, 0.1):
            rates = simulated_rates(currents, dt=dt, tau_m=tau_m, tau_ref=tau_ref)
            errors = []
            for current, rate in zip(currents, rates, strict=True):
                interval = tau_ref + tau_m * math.log(current / (current - theta))
                assert abs(1 / rate - interval) < 2 * dt, (tau_ref, dt, current, 1 / rate)
                assert lif_rate(current, tau_m=tau_m, tau_ref=tau_ref) == pytest.approx(
                    1 / interval, rel=1e-12)
                errors.append(abs(rate * interval - 1))
            worst[tau_ref, dt] = max(errors)
        ordered = [worst[tau_ref, dt] for dt in (1.0, 0.5, 0.25, 0.1)]
        assert ordered == sorted(ordered, reverse=True), ordered
        assert ordered[-1] < 0.01, ordered
    assert lif_rate(0.9, tau_m=tau_m) == 0.0  # below threshold: silent


# ----------------------------------------------------- constraints of chapters 01-02 carry over


def test_dale_and_masks_apply_to_the_spiking_network_unchanged():
    n = 10
    net = SpikingRNN(3, n, 2, beta=BETA, input_gain=3.0, seed=1)
    signs, mask = dale_signs(8, 2), random_sparse_mask(n, n, 0.5, seed=2)
    parametrize.register_parametrization(net.recurrent, "weight", DaleWeight(signs, mask))
    apply_mask(net.input, random_sparse_mask(n, 3, 0.6, seed=3))
    optimizer = torch.optim.Adam(net.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        x = 1.5 * torch.rand(25, 4, 3, generator=g)
        outputs, spikes = net(x)
        loss = task_loss(outputs, torch.ones_like(outputs)) + spike_count_penalty(spikes, 0.01)
        optimizer.zero_grad()
        loss.backward()
        raw = net.recurrent.parametrizations.weight.original
        assert torch.all(raw.grad[mask == 0] == 0)  # masked synapses get no gradient
        assert raw.grad.abs().sum() > 0
        optimizer.step()
    w = net.recurrent.weight.detach()
    assert torch.all(w[:, :8] >= 0) and torch.all(w[:, 8:] <= 0)  # column signs hold
    assert torch.all(w[mask == 0] == 0)
    assert torch.all(net.input.weight[net.input.parametrizations.weight[0].mask == 0] == 0)


def test_seeds_can_be_trained_at_once_with_vmap():
    """The spike is a vmap-able autograd.Function: one batched gradient for several seeds
    equals each seed's own gradient (refractoriness included)."""
    nets = [SpikingRNN(3, 8, 1, tau_ref=2.0, input_gain=3.0, seed=s) for s in range(3)]
    names = [name for name, _ in nets[0].named_parameters()]
    stacked = {name: torch.stack([dict(n.named_parameters())[name].detach() for n in nets])
               for name in names}
    x, y = trial_data(steps=20, n_out=1)
    x, y = x.float(), y.float()

    def loss(params):
        return task_loss(torch.func.functional_call(nets[0], params, (x,))[0], y)

    batched = torch.vmap(torch.func.grad(loss))(stacked)
    for k, net in enumerate(nets):
        task_loss(net(x)[0], y).backward()
        for name, parameter in net.named_parameters():
            assert parameter.grad.abs().max() > 0
            assert_close(batched[name][k], parameter.grad)

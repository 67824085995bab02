"""e-prop (Bellec et al. 2020) against BPTT written by hand in numpy, and its pieces by hand.

Ground truth is `numpy_bptt` of test_spiking.py: the chain rule through time of the LIF
equations, in numpy float64, sharing no code with `course_lib`. With W_rec = 0 and
B = W_out^T e-prop must equal it exactly; with recurrence and B = W_out^T it must equal it
with the spikes' path through W_rec cut, and differ from the full gradient.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_rflo import LIBC, peak_bytes
from test_spiking import lif_network, numpy_bptt, trial_data
from torch.nn.utils import parametrize
from torch.testing import assert_close

from course_lib.connectivity import random_sparse_mask
from course_lib.dale import DaleWeight, dale_signs
from course_lib.learning_rules.eprop import (
    apply_eprop_gradients,
    eligibility_trace,
    eprop_gradient,
    eprop_trial,
    filtered_trace_step,
    learning_signal,
    presynaptic_trace_step,
)
from course_lib.spiking import SpikingRNN, spike_count_penalty, task_loss


def with_weight_transport(net):
    with torch.no_grad():
        net.feedback.copy_(net.readout.weight.T)
    return net


def hand_bptt(net, x, y, *, penalty=0.0, recurrent_path=True):
    weights = (net.input.weight, net.recurrent.weight, net.readout.weight)
    return numpy_bptt(*(w.detach().numpy() for w in weights), x.numpy(), y.numpy(),
                      decay=net.decay, kappa=net.readout_decay, theta=net.threshold,
                      beta=net.beta, n_ref=net.refractory_steps, penalty=penalty,
                      recurrent_path=recurrent_path)


def eprop_grads(trial):
    return [g.numpy() for g in (trial.input, trial.recurrent, trial.readout)]


def worst_error(got, want) -> float:
    return max(float(np.abs(a - b).max()) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("penalty", [0.0, 0.05])
def test_eprop_is_bptt_without_recurrence_and_with_weight_transport(penalty):
    net = with_weight_transport(lif_network(recurrent=0.0))
    x, y = trial_data()
    trial = eprop_trial(net, x, y, penalty=penalty, record_spikes=True)
    loss, spikes, exact = hand_bptt(net, x, y, penalty=penalty)
    assert np.array_equal(trial.spikes.numpy(), spikes)
    assert 0.05 < spikes.mean() < 0.6
    assert trial.loss == pytest.approx(loss, rel=1e-12)
    assert trial.spikes_per_trial == pytest.approx(spikes.sum() / x.shape[1], rel=1e-12)
    for got, want in zip(eprop_grads(trial)[::2], exact[::2], strict=True):  # W_in, W_out
        assert np.abs(want).max() > 1e-3
        assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=1e-10, atol=1e-13)
    # W_rec = 0 still has a gradient (spikes reach it); e-prop gets it exactly too
    assert np.abs(exact[1]).max() > 1e-3
    assert_close(trial.recurrent, torch.from_numpy(exact[1]), rtol=1e-10, atol=1e-13)


def test_eprop_with_cross_entropy_is_bptt_without_recurrence():
    """The classification loss of the course's tasks: ground truth is autograd through
    torch's own cross-entropy (the network's forward is checked against numpy above)."""
    net = with_weight_transport(lif_network(recurrent=0.0, n_out=3))
    x, _ = trial_data(n_out=3)
    labels = torch.randint(0, 3, x.shape[:2], generator=torch.Generator().manual_seed(5))
    trial = eprop_trial(net, x, labels, loss="cross_entropy", penalty=0.02, record_spikes=True)
    outputs, spikes = net(x)
    loss = task_loss(outputs, labels, "cross_entropy") + spike_count_penalty(spikes, 0.02)
    loss.backward()
    assert trial.loss == pytest.approx(loss.item(), rel=1e-12)
    for got, module in zip((trial.input, trial.recurrent, trial.readout),
                           (net.input, net.recurrent, net.readout), strict=True):
        assert module.weight.grad.abs().max() > 1e-4
        assert_close(got, module.weight.grad, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("penalty", [0.0, 0.05])
def test_eprop_with_recurrence_is_bptt_with_the_recurrent_path_cut(penalty):
    net = with_weight_transport(lif_network(recurrent=1.0))
    x, y = trial_data()
    trial = eprop_trial(net, x, y, penalty=penalty, record_spikes=True)
    _, _, cut = hand_bptt(net, x, y, penalty=penalty, recurrent_path=False)
    _, _, full = hand_bptt(net, x, y, penalty=penalty)
    for got, want in zip(eprop_grads(trial), cut, strict=True):
        assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=1e-10, atol=1e-13)
    # ... and the cut path matters: e-prop is not the full gradient of a recurrent network
    for got, want in zip(eprop_grads(trial)[:2], full[:2], strict=True):
        assert np.linalg.norm(got - want) > 0.1 * np.linalg.norm(want)
    assert_close(trial.readout, torch.from_numpy(full[2]), rtol=1e-10, atol=1e-13)


def test_random_feedback_changes_the_hidden_updates_but_not_the_readouts():
    net = lif_network(recurrent=0.0)  # B random, not W_out^T
    x, y = trial_data()
    trial = eprop_trial(net, x, y, record_spikes=True)
    _, _, exact = hand_bptt(net, x, y)
    assert np.linalg.norm(trial.input.numpy() - exact[0]) > 0.1 * np.linalg.norm(exact[0])
    assert_close(trial.readout, torch.from_numpy(exact[2]), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("recurrent", [0.0, 1.0])
def test_eprop_stays_exact_with_refractoriness(recurrent):
    """A refractory unit cannot spike (psi = 0) and holds its voltage, so its synapses hold
    their traces: still local, still BPTT with the recurrent path cut (and exact BPTT when
    there is no recurrence)."""
    net = with_weight_transport(lif_network(recurrent=recurrent, tau_ref=2.0))
    x, y = trial_data()
    trial = eprop_trial(net, x, y, penalty=0.05, record_spikes=True)
    _, spikes, cut = hand_bptt(net, x, y, penalty=0.05, recurrent_path=False)
    assert np.array_equal(trial.spikes.numpy(), spikes)
    refractory_steps = (spikes[:-1] > 0).sum()
    assert refractory_steps > 20  # refractoriness happens
    for got, want in zip(eprop_grads(trial), cut, strict=True):
        assert np.abs(want).max() > 1e-3
        assert_close(torch.from_numpy(got), torch.from_numpy(want), rtol=1e-10, atol=1e-13)


def test_eprop_gradients_reach_the_parameters_through_dale_and_masks():
    """`apply_eprop_gradients` turns gradients of the effective weight W = relu(W_raw) M D
    into gradients of W_raw: by hand, dW/dW_raw = [W_raw > 0] M D, entry by entry."""
    net = with_weight_transport(lif_network(recurrent=1.0, n_hidden=10))
    signs, mask = dale_signs(8, 2), random_sparse_mask(10, 10, 0.6, seed=1)
    parametrize.register_parametrization(net.recurrent, "weight", DaleWeight(signs, mask))
    x, y = trial_data()
    trial = eprop_trial(net, x, y, record_spikes=True)
    _, _, cut = hand_bptt(net, x, y, recurrent_path=False)  # at the effective weights
    net.zero_grad()
    apply_eprop_gradients(net, trial)
    raw = net.recurrent.parametrizations.weight.original
    by_hand = torch.from_numpy(cut[1]) * (raw.detach() > 0) * mask.double() * signs.double()
    assert by_hand.abs().max() > 1e-3
    assert_close(raw.grad, by_hand, rtol=1e-10, atol=1e-13)
    assert torch.all(raw.grad[mask == 0] == 0)
    assert_close(net.input.weight.grad, trial.input)


# ------------------------------------------------------------------------- the pieces by hand


def test_presynaptic_trace_online_equals_the_offline_filter():
    """eps_t = sum_{s<=t} (1 - decay) decay^(t-s) pre_s: the membrane's own filter."""
    g = torch.Generator().manual_seed(2)
    steps, decay = 25, 0.8
    pres = (torch.rand(steps, 3, 6, generator=g) < 0.3).double()
    trace = torch.zeros(3, 6, dtype=torch.float64)
    for t in range(steps):
        trace = presynaptic_trace_step(trace, pres[t], decay)
        offline = sum((1 - decay) * decay ** (t - s) * pres[s] for s in range(t + 1))
        assert_close(trace, offline, rtol=1e-12, atol=1e-14)


def test_eligibility_trace_learning_signal_and_gradient_by_hand():
    g = torch.Generator().manual_seed(3)
    psi, eps = torch.rand(4, 3, generator=g), torch.rand(4, 5, generator=g)
    e = eligibility_trace(psi, eps)
    for b in range(4):
        for j in range(3):
            for i in range(5):
                assert e[b, j, i].item() == pytest.approx(psi[b, j].item() * eps[b, i].item())
    filtered = torch.randn(4, 3, 5, generator=g)
    assert_close(filtered_trace_step(filtered, e, 0.7), 0.7 * filtered + e)
    error, feedback = torch.randn(4, 2, generator=g), torch.randn(3, 2, generator=g)
    signal = learning_signal(error, feedback)
    for b in range(4):
        for j in range(3):
            expected = sum(feedback[j, k] * error[b, k] for k in range(2))
            assert signal[b, j].item() == pytest.approx(expected.item(), abs=1e-6)
    gradient = eprop_gradient(signal, filtered)
    expected = sum(signal[b][:, None] * filtered[b] for b in range(4))
    assert_close(gradient, expected)
    with pytest.raises(ValueError, match=r"feedback must have shape \(any, 2\)"):
        learning_signal(error, feedback.T)


def test_eprop_trains_a_spiking_network():
    """A few Adam steps on e-prop's gradients lower the loss of a fixed regression batch."""
    net = SpikingRNN(4, 24, 1, tau_m=10.0, tau_out=10.0, beta=5.0, input_gain=2.0, seed=0)
    g = torch.Generator().manual_seed(6)
    x = (torch.rand(40, 8, 4, generator=g) < 0.2).float() * 4.0
    y = torch.sin(torch.linspace(0, 3, 40))[:, None, None].expand(40, 8, 1).contiguous()
    optimizer = torch.optim.Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(40):
        trial = eprop_trial(net, x, y, penalty=0.001, record_spikes=True)
        optimizer.zero_grad()
        apply_eprop_gradients(net, trial)
        optimizer.step()
        losses.append(trial.loss)
    assert losses[-1] < 0.5 * losses[0], losses


@pytest.mark.skipif(LIBC is None, reason="measures the heap through glibc's mallinfo2")
def test_eprop_memory_does_not_grow_with_trial_length_but_bptt_does():
    net = SpikingRNN(3, 64, 1, input_gain=3.0, seed=0)
    batch, traces = 32, 32 * 64 * (64 + 3) * 4  # B * N * (N + inputs) float32 numbers

    def trial(method: str, steps: int):
        g = torch.Generator().manual_seed(steps)
        x, y = 1.5 * torch.rand(steps, batch, 3, generator=g), torch.randn(steps, batch, 1)
        if method == "eprop":
            return lambda: eprop_trial(net, x, y)
        return lambda: task_loss(net(x)[0], y).backward()

    eprop_short, eprop_long = peak_bytes(trial("eprop", 20)), peak_bytes(trial("eprop", 160))
    bptt_short, bptt_long = peak_bytes(trial("bptt", 20)), peak_bytes(trial("bptt", 160))
    assert traces < eprop_long < 6 * traces  # a few copies of the traces, nothing more
    assert eprop_long < eprop_short + 64 * 1024, (eprop_short, eprop_long)  # 8x longer
    assert bptt_long > 4 * bptt_short, (bptt_short, bptt_long)  # the trajectory is stored

"""Vogels et al. 2011 inhibitory plasticity: hand-computed updates, convergence to r0 and
inhibitory tuning that tracks the excitatory tuning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.ei_balance import (
    bell_tuning,
    output_rate,
    simulate_inhibitory_plasticity,
    vogels_update,
)


def test_vogels_update_by_hand():
    w = torch.tensor([0.5, 1.0, 0.2])
    x = torch.tensor([2.0, 0.0, 1.0])
    # y = 7 > r0 = 5: active synapses grow by eta * x * 2; the silent one (x = 0) stays
    new = vogels_update(w, x, torch.tensor(7.0), r0=5.0, eta=0.1)
    np.testing.assert_allclose(new.numpy(), [0.9, 1.0, 0.4], rtol=1e-6)
    # y = 1 < r0: active synapses shrink, and a weight never goes below zero
    new = vogels_update(w, x, torch.tensor(1.0), r0=5.0, eta=0.1)
    np.testing.assert_allclose(new.numpy(), [0.0, 1.0, 0.0], atol=1e-7)


def test_output_rate_by_hand():
    w_exc = torch.tensor([1.0, 2.0])
    w_inh = torch.tensor([0.5, 0.5])
    assert float(output_rate(w_exc, w_inh, torch.tensor([2.0, 1.0]))) == pytest.approx(2.5)
    assert float(output_rate(w_inh, w_exc, torch.tensor([2.0, 1.0]))) == 0.0  # rectified


def test_bell_tuning_is_bell_shaped():
    w = bell_tuning(8, preferred=4, width=1.5, low=0.5, high=2.0).numpy()
    assert w.argmax() == 4 and w.max() == pytest.approx(2.0)
    assert (np.diff(w[:5]) > 0).all() and (np.diff(w[4:]) < 0).all()
    assert w.min() >= 0.5


@pytest.fixture(scope="module")
def learned():
    return simulate_inhibitory_plasticity(r0=5.0, seed=0)


def test_output_rate_converges_to_target(learned):
    final = learned.rate[-2000:].mean().item()
    assert abs(final - 5.0) < 0.05 * 5.0, f"final rate {final:.3f} is not within 5% of r0 = 5"
    # and it did not start there: the flat inhibition leaves the neuron too active
    assert learned.rate[:10].mean().item() > 1.2 * 5.0


def test_inhibitory_tuning_tracks_excitatory_tuning(learned):
    assert torch.all(learned.w_inh_before == learned.w_inh_before[0])  # flat at the start
    correlation = np.corrcoef(learned.w_inh_after.numpy(), learned.w_exc.numpy())[0, 1]
    assert correlation > 0.8
    # the inhibitory weight now peaks where excitation peaks
    assert int(learned.w_inh_after.argmax()) == int(learned.w_exc.argmax())


def test_history_is_returned_for_plots(learned):
    n_steps = learned.rate.numel()
    assert n_steps == 20_000
    assert learned.w_inh_history.shape[1] == 8
    torch.testing.assert_close(learned.w_inh_history[0], learned.w_inh_before, atol=0.1, rtol=0)
    torch.testing.assert_close(learned.w_inh_history[-1], learned.w_inh_after)
    assert learned.snapshot_steps[-1] == n_steps - 1
    assert learned.final_rate() == pytest.approx(learned.rate[-2000:].mean().item())


def test_same_seed_same_run_and_different_targets():
    a = simulate_inhibitory_plasticity(n_steps=500, seed=3)
    b = simulate_inhibitory_plasticity(n_steps=500, seed=3)
    torch.testing.assert_close(a.w_inh_after, b.w_inh_after)
    low = simulate_inhibitory_plasticity(r0=2.0, n_steps=5000, seed=3)
    assert math.isclose(low.final_rate(), 2.0, rel_tol=0.05)


def test_bad_input_raises():
    with pytest.raises(ValueError, match="x must have shape"):
        vogels_update(torch.ones(3), torch.ones(4), torch.tensor(1.0), r0=1.0, eta=0.1)
    with pytest.raises(ValueError, match="w_exc must have shape"):
        simulate_inhibitory_plasticity(n_channels=8, w_exc=torch.ones(5))
    with pytest.raises(ValueError, match="r0 must be a positive"):
        simulate_inhibitory_plasticity(r0=-1.0)
    with pytest.raises(ValueError, match="n_channels"):
        bell_tuning(1)

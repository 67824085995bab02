"""The rate RNN (Song, Yang & Wang 2016, eq. 1, Euler with alpha = dt / tau)."""

from __future__ import annotations

import pytest
import torch

from course_lib.checks.sparse_connectivity import reference_rate_rnn_step
from course_lib.connectivity import random_sparse_mask
from course_lib.models import RateRNN, time_constant_alpha


def test_one_step_by_hand():
    """x0 = 0, u = 1, alpha = 0.5: x1 = 0.5 * W_in u, rates relu(x1), outputs W_out r."""
    model = RateRNN(1, 2, 1, dt=10, tau=20)
    with torch.no_grad():
        model.input.weight.copy_(torch.tensor([[2.0], [-4.0]]))
        model.readout.weight.copy_(torch.tensor([[1.0, 1.0]]))
    outputs, rates = model(torch.ones(1, 1, 1))
    assert torch.allclose(rates[0, 0], torch.tensor([1.0, 0.0]))  # relu([1, -2])
    assert torch.allclose(outputs[0, 0], torch.tensor([1.0]))


def test_dynamics_match_an_independent_euler_step():
    torch.manual_seed(0)
    mask = random_sparse_mask(8, 8, 0.5, seed=1, self_connections=False)
    model = RateRNN(3, 8, 2, dt=20, tau=100, mask=mask, seed=3)
    inputs = torch.randn(15, 4, 3)
    _, rates = model(inputs)
    w_rec = model.recurrent.parametrizations.weight.original.detach()
    x = torch.zeros(4, 8)
    for t in range(15):
        # the bias is zero at init; the checker's step has none
        x = reference_rate_rnn_step(x, inputs[t], w_rec, model.input.weight.detach(), mask, 0.2)
        x = x + 0.2 * model.input.bias.detach()
        assert torch.allclose(rates[t], torch.relu(x), atol=1e-5)


def test_alpha_is_dt_over_tau_and_validated():
    assert time_constant_alpha(20, 100) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="dt / tau must be at most 1"):
        time_constant_alpha(200, 100)
    with pytest.raises(ValueError, match="tau must be a positive number"):
        RateRNN(1, 4, 1, tau=0)


def test_initial_spectral_radius_is_near_the_gain_at_any_density():
    for density in (0.1, 1.0):
        mask = random_sparse_mask(400, 400, density, seed=0, self_connections=False)
        model = RateRNN(1, 400, 1, mask=mask, gain=0.8, seed=0)
        radius = torch.linalg.eigvals(model.recurrent.weight.detach()).abs().max().item()
        assert radius == pytest.approx(0.8, rel=0.1)


def test_noise_is_seeded_and_changes_the_trajectory():
    inputs = torch.ones(10, 2, 1)
    a = RateRNN(1, 6, 1, noise_std=0.5, seed=7)(inputs)[1]
    b = RateRNN(1, 6, 1, noise_std=0.5, seed=7)(inputs)[1]
    c = RateRNN(1, 6, 1, noise_std=0.0, seed=7)(inputs)[1]
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_bad_shapes_raise_value_error():
    model = RateRNN(3, 5, 2)
    with pytest.raises(ValueError, match=r"inputs must have shape \(any, any, 3\)"):
        model(torch.zeros(4, 2, 2))
    with pytest.raises(ValueError, match=r"mask must have shape \(5, 5\)"):
        RateRNN(3, 5, 2, mask=torch.ones(4, 4))

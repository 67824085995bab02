"""Dale's law: hand-computed small matrices, numpy eigenvalues, invariants after training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib.dale import (
    DaleWeight,
    EIRateRNN,
    balance_ei,
    dale_signs,
    dale_weight,
    sign_matrix,
    split_exc_inh,
)


def effective_recurrent(model: EIRateRNN) -> np.ndarray:
    return model.recurrent.weight.detach().double().numpy()


# --- small pure functions, against hand-computed values ---------------------------------


def test_dale_signs_and_sign_matrix_by_hand():
    assert dale_signs(3, 2).tolist() == [1.0, 1.0, 1.0, -1.0, -1.0]
    expected_d = np.diag([1.0, 1.0, 1.0, -1.0, -1.0])
    np.testing.assert_array_equal(sign_matrix(dale_signs(3, 2)).numpy(), expected_d)


def test_split_exc_inh_default_is_80_20():
    assert split_exc_inh(10) == (8, 2)
    assert split_exc_inh(100) == (80, 20)
    assert split_exc_inh(10, n_inh=3) == (7, 3)


def test_dale_weight_rectifies_then_signs_columns():
    w_raw = torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.2, 0.7], [1.0, 1.0, -1.0]])
    signs = torch.tensor([1.0, 1.0, -1.0])  # unit 2 (the third column) is inhibitory
    expected = np.array([[0.5, 0.0, -2.0], [0.0, 0.2, -0.7], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(dale_weight(w_raw, signs).numpy(), expected)
    # the same through the literal formula relu(W) @ D
    literal = np.maximum(w_raw.numpy(), 0) @ np.diag(signs.numpy())
    np.testing.assert_allclose(dale_weight(w_raw, signs).numpy(), literal)


def test_dale_weight_applies_the_mask():
    w_raw = torch.ones(2, 2)
    signs = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    np.testing.assert_allclose(dale_weight(w_raw, signs, mask).numpy(), [[0.0, -1.0], [1.0, 0.0]])


def test_balance_ei_by_hand():
    w_pos = torch.tensor([[1.0, 2.0, 3.0, 1.0], [0.0, 4.0, 1.0, 1.0]])
    signs = torch.tensor([1.0, 1.0, -1.0, -1.0])
    # row 0: E sum 3, I sum 4 -> I * 3/4; row 1: E sum 4, I sum 2 -> I * 2
    expected = np.array([[1.0, 2.0, 2.25, 0.75], [0.0, 4.0, 2.0, 2.0]])
    np.testing.assert_allclose(balance_ei(w_pos, signs).numpy(), expected)


# --- the E/I network at initialisation --------------------------------------------------


@pytest.mark.parametrize(
    ("n_hidden", "radius", "seed"), [(32, 1.5, 0), (100, 0.8, 3), (50, 1.2, 7)]
)
def test_spectral_radius_at_init_equals_request(n_hidden, radius, seed):
    model = EIRateRNN(3, n_hidden, 2, radius=radius, seed=seed)
    eigenvalues = np.linalg.eigvals(effective_recurrent(model))
    assert abs(np.abs(eigenvalues).max() - radius) < 1e-5


def test_balanced_at_init_and_no_self_connections():
    model = EIRateRNN(3, 50, 2, seed=1)
    w = effective_recurrent(model)
    exc_input = w[:, : model.n_exc].sum(axis=1)
    inh_input = w[:, model.n_exc :].sum(axis=1)
    assert (exc_input > 0).all() and (inh_input < 0).all()
    np.testing.assert_allclose(exc_input, -inh_input, rtol=1e-5)
    assert (np.diag(w) == 0).all()


def test_units_split_80_20_and_attributes_agree():
    model = EIRateRNN(3, 50, 2)
    assert (model.n_exc, model.n_inh) == (40, 10)
    assert model.is_excitatory.tolist() == [True] * 40 + [False] * 10
    assert model.signs.tolist() == [1.0] * 40 + [-1.0] * 10


def test_forward_follows_the_rate_equations():
    """A numpy Euler loop with the effective weights gives the model's rates."""
    model = EIRateRNN(2, 10, 2, dt=20.0, tau=100.0, seed=2)
    with torch.no_grad():
        model.recurrent.bias.normal_(0, 0.1, generator=torch.Generator().manual_seed(0))
    inputs = torch.rand(15, 3, 2, generator=torch.Generator().manual_seed(1))
    outputs, rates = model(inputs)

    alpha = 20.0 / 100.0
    w_rec = effective_recurrent(model)
    w_in = model.input.weight.detach().double().numpy()
    b = model.input.bias.detach().double().numpy() + model.recurrent.bias.detach().double().numpy()
    w_out = model.readout.weight.detach().double().numpy()
    x = np.zeros((3, 10))
    r = np.zeros((3, 10))
    for t in range(15):
        x = (1 - alpha) * x + alpha * (r @ w_rec.T + inputs[t].double().numpy() @ w_in.T + b)
        r = np.maximum(x, 0)
        np.testing.assert_allclose(rates[t].detach().numpy(), r, atol=1e-5)
    expected_out = r @ w_out.T + model.readout.bias.detach().double().numpy()
    np.testing.assert_allclose(outputs[-1].detach().numpy(), expected_out, atol=1e-5)


# --- invariants after many optimiser steps ----------------------------------------------


@pytest.fixture(scope="module")
def trained_ei_model():
    model = EIRateRNN(4, 24, 3, seed=0)
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(20, 16, 4, generator=generator)
    targets = torch.randn(20, 16, 3, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(500):
        outputs, _ = model(inputs)
        loss = ((outputs - targets) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model


def test_column_signs_hold_after_500_adam_steps(trained_ei_model):
    model = trained_ei_model
    w = effective_recurrent(model)
    assert (w[:, : model.n_exc] >= 0).all(), "excitatory columns must be >= 0"
    assert (w[:, model.n_exc :] <= 0).all(), "inhibitory columns must be <= 0"
    # the constraint was exercised: the optimiser pushed some raw weights below zero
    raw = model.recurrent.parametrizations.weight.original.detach()
    assert (raw < 0).sum() > 0


def test_diagonal_stays_zero_after_training(trained_ei_model):
    assert (np.diag(effective_recurrent(trained_ei_model)) == 0).all()


def test_inputs_non_negative_and_readout_excitatory_only_after_training(trained_ei_model):
    model = trained_ei_model
    assert (model.input.weight.detach() >= 0).all()
    assert (model.readout.weight.detach()[:, model.n_exc :] == 0).all()
    assert (model.readout.weight.detach()[:, : model.n_exc] != 0).any()


def test_masked_entries_get_exactly_zero_gradient():
    model = EIRateRNN(2, 12, 2, seed=0)
    outputs, _ = model(torch.rand(10, 4, 2, generator=torch.Generator().manual_seed(0)))
    outputs.sum().backward()
    grad = model.recurrent.parametrizations.weight.original.grad
    assert torch.diagonal(grad).abs().max() == 0
    assert grad.abs().max() > 0


def test_buffers_move_with_the_model_and_are_saved():
    model = EIRateRNN(2, 10, 2).double()
    assert model.signs.dtype == torch.float64
    outputs, _ = model(torch.rand(5, 2, 2, dtype=torch.float64))
    assert outputs.dtype == torch.float64
    keys = model.state_dict().keys()
    assert "signs" in keys and "recurrent.parametrizations.weight.0.mask" in keys


def test_dale_weight_parametrization_module():
    param = DaleWeight(torch.tensor([1.0, -1.0]))
    out = param(torch.tensor([[0.0, 3.0], [-2.0, 1.0]]))
    # mask defaults to all ones here (self-connections are the model's choice)
    np.testing.assert_allclose(out.numpy(), [[0.0, -3.0], [0.0, -1.0]])


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("n_inh", [11, -1, 2.5])
def test_bad_n_inh_raises(n_inh):
    with pytest.raises(ValueError, match="n_inh"):
        EIRateRNN(3, 10, 2, n_inh=n_inh)


def test_network_without_inhibitory_or_excitatory_units_raises():
    with pytest.raises(ValueError, match="excitatory and inhibitory"):
        EIRateRNN(3, 10, 2, n_inh=0)
    with pytest.raises(ValueError, match="excitatory and inhibitory"):
        EIRateRNN(3, 10, 2, n_inh=10)


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match="w_raw must have shape"):
        dale_weight(torch.ones(3, 4), dale_signs(2, 1))
    with pytest.raises(ValueError, match="mask must have shape"):
        dale_weight(torch.ones(3, 3), dale_signs(2, 1), mask=torch.ones(2, 2))
    with pytest.raises(ValueError, match="mask must have shape"):
        EIRateRNN(3, 10, 2, mask=torch.ones(9, 9))
    with pytest.raises(ValueError, match="inputs must have shape"):
        EIRateRNN(3, 10, 2)(torch.ones(5, 2, 4))


def test_bad_signs_raise():
    with pytest.raises(ValueError, match=r"\+1"):
        sign_matrix(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="n_exc"):
        dale_signs(-1, 2)
    with pytest.raises(ValueError, match="non-negative"):
        balance_ei(torch.tensor([[1.0, -1.0]]), torch.tensor([1.0, -1.0]))


def test_unbalanceable_row_raises():
    # unit 0 has excitatory input but its only inhibitory input is masked out
    with pytest.raises(ValueError, match="no inhibition"):
        balance_ei(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([1.0, -1.0]))

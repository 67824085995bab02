"""Predictive coding and Z-IL, checked against backprop and against their own energy.

Ground truths written here, sharing no code with the library: an MLP ``y_hat = W_{L-1}
tanh(... W_0 tanh(x))`` differentiated by autograd (backprop), and the energy
``F = sum_l ||x_l - W_{l-1} tanh(x_{l-1})||^2 / (2 sigma_l^2)`` differentiated by autograd
(inference must descend it; the Hebbian rule must be its negative weight gradient).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from course_lib.learning_rules.predictive_coding import (
    energy,
    error_nodes,
    feedforward,
    hebbian_update,
    inference_step,
    init_weights,
    pc_update,
    zil_update,
)

EXACT = {"rtol": 1e-12, "atol": 1e-14}  # float64: equal up to summation order
NUDGES = (0.1, 0.05, 0.025, 0.0125, 0.00625)


def data(sizes, batch=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, sizes[0], generator=g, dtype=torch.float64)
    y = torch.randn(batch, sizes[-1], generator=g, dtype=torch.float64)
    return x, y


def backprop_update(weights, x, y):
    """``-dL/dW`` of ``L = mean_batch ||y - y_hat||^2 / 2``, by autograd on an MLP."""
    params = [w.detach().clone().requires_grad_(True) for w in weights]
    h = x
    for w in params:
        h = torch.tanh(h) @ w.T
    loss = 0.5 * ((y - h) ** 2).sum(1).mean()
    return [-g for g in torch.autograd.grad(loss, params)]


def reference_energy(values, weights, variances):
    """The energy of every example, written from its definition."""
    total = torch.zeros(values[0].shape[0], dtype=values[0].dtype)
    for k, w in enumerate(weights):
        miss = values[k + 1] - torch.tanh(values[k]) @ w.T
        total = total + (miss**2).sum(1) / (2 * variances[k + 1])
    return total


def flat(tensors):
    return torch.cat([t.flatten() for t in tensors])


def relative_error(estimate, truth):
    return ((flat(estimate) - flat(truth)).norm() / flat(truth).norm()).item()


def angle(estimate, truth):
    a, b = flat(estimate), flat(truth)
    cosine = (a @ b / (a.norm() * b.norm())).clamp(-1, 1)
    return math.degrees(math.acos(cosine.item()))


def fitted_order(steps, errors):
    """The slope of log(error) against log(step): p in error ~ step^p."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def random_values(sizes, batch, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, n, generator=g, dtype=torch.float64) for n in sizes]


# ------------------------------------------------------------- Z-IL is backprop, exactly


@pytest.mark.parametrize(
    "sizes, seed",
    [((3, 2), 0), ((4, 6, 3), 1), ((5, 7, 6, 2), 2), ((4, 8, 3, 6, 3), 3), ((2, 3, 3, 3, 3, 2), 4)],
)
def test_zil_updates_equal_backprop(sizes, seed):
    weights = init_weights(sizes, seed=seed)
    weights = [2 * w for w in weights]  # larger weights: a strongly non-linear network
    x, y = data(sizes, seed=seed + 10)
    for ours, truth in zip(zil_update(x, y, weights), backprop_update(weights, x, y), strict=True):
        assert_close(ours, truth, **EXACT)


def test_zil_schedule_is_what_makes_it_exact():
    """Taking every update after all the inference steps is *not* backprop."""
    sizes = (4, 6, 5, 3)
    weights = init_weights(sizes, seed=5)
    x, y = data(sizes, seed=6)
    values = feedforward(x, weights)
    values[-1] = y
    for _ in range(len(weights) - 1):
        values = inference_step(values, weights, step_size=1.0)
    late = hebbian_update(values, error_nodes(values, weights))
    truth = backprop_update(weights, x, y)
    assert relative_error(late, truth) > 1e-2
    assert relative_error(zil_update(x, y, weights), truth) < 1e-12


# ------------------------------------------- PC approaches backprop as the nudge shrinks


@pytest.mark.parametrize("seed", [0, 1])
def test_pc_update_approaches_backprop_at_first_order(seed):
    """Output variance ``1 / nudge``: the update over ``nudge`` is backprop's + O(nudge)."""
    sizes = (4, 6, 5, 3)
    weights = init_weights(sizes, seed=seed)
    x, y = data(sizes, seed=seed + 20)
    truth = backprop_update(weights, x, y)
    errors, angles = [], []
    for nudge in NUDGES:
        variances = [1.0] * (len(sizes) - 1) + [1.0 / nudge]
        updates, _ = pc_update(
            x, y, weights, step_size=0.2, max_steps=5000, tol=1e-14, variances=variances
        )
        scaled = [u / nudge for u in updates]
        errors.append(relative_error(scaled, truth))
        angles.append(angle(scaled, truth))
    assert (np.diff(errors) < 0).all(), errors
    assert (np.diff(angles) < 0).all(), angles
    assert errors[-1] < 0.05 and angles[-1] < 2.0
    assert 0.9 < fitted_order(NUDGES, errors) < 1.1
    assert 0.9 < fitted_order(NUDGES, angles) < 1.1


def test_pc_with_a_nearer_target_alone_does_not_converge():
    """Moving the clamped target toward the prediction, with unit variances, is not enough.

    The hidden layers' errors feed back into the output error at the same order as the
    nudge, so the relative error stops falling: the variance condition is needed.
    """
    sizes = (4, 6, 5, 3)
    weights = init_weights(sizes, seed=1)
    x, y = data(sizes, seed=2)
    truth = backprop_update(weights, x, y)
    prediction = feedforward(x, weights)[-1]
    errors = []
    for nudge in NUDGES:
        target = prediction + nudge * (y - prediction)
        updates, _ = pc_update(x, target, weights, step_size=0.2, max_steps=5000, tol=1e-14)
        errors.append(relative_error([u / nudge for u in updates], truth))
    assert errors[-1] > 0.1
    assert fitted_order(NUDGES, errors) < 0.3


# ------------------------------------------------------------- inference descends F


def test_inference_step_is_gradient_descent_on_the_energy():
    sizes = (3, 5, 4, 2)
    weights = init_weights(sizes, seed=3)
    values = random_values(sizes, batch=4, seed=4)
    variances = [1.0, 0.5, 2.0, 3.0]
    step_size = 0.05
    params = [v.clone().requires_grad_(True) for v in values]
    grads = torch.autograd.grad(reference_energy(params, weights, variances).sum(), params)
    stepped = inference_step(values, weights, step_size=step_size, variances=variances)
    assert_close(stepped[0], values[0], rtol=0, atol=0)  # input clamped
    assert_close(stepped[-1], values[-1], rtol=0, atol=0)  # output clamped
    for k in range(1, len(sizes) - 1):
        assert_close(stepped[k], values[k] - step_size * grads[k], **EXACT)
    free = inference_step(
        values, weights, step_size=step_size, variances=variances, clamp_output=False
    )
    assert_close(free[-1], values[-1] - step_size * grads[-1], **EXACT)


def test_inference_decreases_the_energy_monotonically():
    sizes = (3, 6, 5, 2)
    weights = [2 * w for w in init_weights(sizes, seed=7)]
    values = random_values(sizes, batch=5, seed=8)
    variances = [1.0, 1.0, 0.5, 2.0]
    energies = [reference_energy(values, weights, variances)]
    for _ in range(300):
        values = inference_step(values, weights, step_size=0.05, variances=variances)
        energies.append(reference_energy(values, weights, variances))
    energies = torch.stack(energies)  # (steps, batch)
    assert (energies[1:] <= energies[:-1] + 1e-13).all()  # rounding near the minimum
    assert (energies[-1] < 0.5 * energies[0]).all()  # and it gets somewhere
    assert_close(energy(values, weights, variances), energies[-1], **EXACT)


def test_error_nodes_are_divided_by_the_variance():
    sizes = (2, 3, 2)
    weights = init_weights(sizes, seed=9)
    values = random_values(sizes, batch=3, seed=10)
    variances = [1.0, 0.25, 4.0]
    errors = error_nodes(values, weights, variances)
    params = [v.clone().requires_grad_(True) for v in values]
    # dF/dx_l = eps_l - (top-down term); at the output (nothing above) it is eps_L alone
    grads = torch.autograd.grad(reference_energy(params, weights, variances).sum(), params)
    assert_close(errors[-1], grads[-1], **EXACT)
    assert_close(errors[0], torch.zeros_like(values[0]), rtol=0, atol=0)
    miss = values[1] - torch.tanh(values[0]) @ weights[0].T
    assert_close(errors[1], miss / 0.25, **EXACT)


def test_hebbian_update_is_minus_the_mean_energy_gradient():
    sizes = (3, 4, 5, 2)
    weights = init_weights(sizes, seed=11)
    values = random_values(sizes, batch=6, seed=12)
    variances = [1.0, 2.0, 0.5, 1.5]
    params = [w.clone().requires_grad_(True) for w in weights]
    mean_energy = reference_energy(values, params, variances).mean()
    truth = [-g for g in torch.autograd.grad(mean_energy, params)]
    updates = hebbian_update(values, error_nodes(values, weights, variances))
    for ours, expected in zip(updates, truth, strict=True):
        assert_close(ours, expected, **EXACT)


def test_no_learning_when_the_prediction_is_right():
    sizes = (3, 4, 2)
    weights = init_weights(sizes, seed=13)
    x, _ = data(sizes, seed=14)
    updates, steps = pc_update(x, feedforward(x, weights)[-1], weights)
    assert steps == 1
    for u in updates:
        assert_close(u, torch.zeros_like(u), rtol=0, atol=1e-15)


def test_inputs_are_not_changed_in_place():
    sizes = (3, 4, 2)
    weights = init_weights(sizes, seed=15)
    values = random_values(sizes, batch=2, seed=16)
    copies = [v.clone() for v in values]
    inference_step(values, weights)
    zil_update(values[0], values[-1], weights)
    for v, c in zip(values, copies, strict=True):
        assert torch.equal(v, c)


def test_shape_mistakes_are_reported():
    weights = init_weights((3, 4, 2), seed=0)
    values = random_values((3, 4, 2), batch=2, seed=0)
    with pytest.raises(ValueError, match="one more layer"):
        error_nodes(values[:2], weights)
    with pytest.raises(ValueError, match="values\\[1\\]"):
        error_nodes([values[0], values[1].T, values[2]], weights)
    with pytest.raises(ValueError, match="one variance per layer"):
        error_nodes(values, weights, [1.0, 1.0])
    with pytest.raises(ValueError, match="variances\\[2\\]"):
        error_nodes(values, weights, [1.0, 1.0, 0.0])

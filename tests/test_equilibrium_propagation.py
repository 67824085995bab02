"""Equilibrium propagation and contrastive Hebbian learning, checked against their theory.

Ground truths written here, sharing no code with the library: the Hopfield-like energy
``E = sum_l ||s_l||^2 / 2 - sum_l rho(s_{l+1})^T W_l rho(s_l)`` with
``rho(s) = sigmoid(4 s - 2)``, and the cost ``C = ||y - s_L||^2 / 2``, written from their
definitions and differentiated by autograd; the free fixed point, the energy's minimum
found by scipy's L-BFGS and polished by Newton's method on ``dE/ds = 0``; and the
gradient of the loss at that fixed point, ``J = mean_batch C(s*)``, by implicit
differentiation of the fixed-point equation (recurrent backprop): with ``G(s, W) = dE/ds``
and ``H = dG/ds``,

    dJ/dW = -(dG/dW)^T H^{-1} dJ/ds.

Equilibrium propagation's update must approach ``-dJ/dW`` as ``O(beta)`` (one-sided) and
``O(beta^2)`` (symmetric): the fitted orders are tested.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.optimize
import torch
from torch.testing import assert_close

from course_lib.learning_rules.equilibrium_propagation import (
    chl_update,
    clamped_phase,
    cost,
    energy,
    eqprop_gradient,
    eqprop_step,
    eqprop_update,
    free_phase,
    nudged_phase,
    symmetric_eqprop_update,
)
from course_lib.learning_rules.predictive_coding import init_weights

EXACT = {"rtol": 1e-12, "atol": 1e-14}
BETAS = (0.04, 0.02, 0.01, 0.005, 0.0025)
SIZES = (3, 5, 4, 2)
RELAX = {"step_size": 0.5, "max_steps": 5000, "tol": 1e-14}


def network(seed, sizes=SIZES, batch=3):
    weights = init_weights(sizes, seed=seed)
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(batch, sizes[0], generator=g, dtype=torch.float64)
    y = torch.rand(batch, sizes[-1], generator=g, dtype=torch.float64)
    return weights, x, y


def reference_energy(states, weights):
    """``E`` of every example, from its definition (the input ``states[0]`` is clamped)."""
    rates = [torch.sigmoid(4 * s - 2) for s in states]
    total = sum(0.5 * (s**2).sum(1) for s in states[1:])
    for k, w in enumerate(weights):
        total = total - (rates[k + 1] * (rates[k] @ w.T)).sum(1)
    return total


def reference_cost(output, y):
    return 0.5 * ((y - output) ** 2).sum(1)


def split(vector, x, sizes):
    """Free states as one flat vector -> the list of layers, the input in front."""
    batch = x.shape[0]
    states, start = [x], 0
    for n in sizes[1:]:
        states.append(vector[start : start + batch * n].reshape(batch, n))
        start += batch * n
    return states


def energy_gradient(vector, x, weights, sizes):
    """``G(s, W) = dE/ds`` as a flat vector, differentiable in ``s`` and ``W``."""
    if not vector.requires_grad:
        vector = vector.requires_grad_(True)
    total = reference_energy(split(vector, x, sizes), weights).sum()
    return torch.autograd.grad(total, vector, create_graph=True)[0]


def newton_fixed_point(x, weights, sizes=SIZES):
    """The free fixed point: the energy's minimum found by scipy's L-BFGS from zero,
    polished by Newton's method on ``dE/ds = 0``; its Hessian is checked to be positive
    definite (a stable fixed point, where the dynamics settle)."""

    def value_and_gradient(vector):
        s = torch.as_tensor(vector, dtype=torch.float64).requires_grad_(True)
        total = reference_energy(split(s, x, sizes), weights).sum()
        (grad,) = torch.autograd.grad(total, s)
        return total.item(), grad.numpy()

    n = x.shape[0] * sum(sizes[1:])
    start = np.zeros(n)
    found = scipy.optimize.minimize(
        value_and_gradient,
        start,
        jac=True,
        method="L-BFGS-B",
        options={"gtol": 1e-10, "ftol": 1e-15, "maxiter": 10000},
    )
    s = torch.as_tensor(found.x, dtype=torch.float64)
    for _ in range(5):
        hessian = torch.autograd.functional.jacobian(
            lambda v: energy_gradient(v, x, weights, sizes), s
        )
        s = s - torch.linalg.solve(hessian, energy_gradient(s.clone(), x, weights, sizes).detach())
    assert energy_gradient(s.clone(), x, weights, sizes).abs().max() < 1e-12
    assert torch.linalg.eigvalsh(hessian).min() > 0
    return s


def implicit_update(x, y, weights, sizes=SIZES):
    """``-dJ/dW`` at the free fixed point, by implicit differentiation (recurrent backprop)."""
    s = newton_fixed_point(x, weights, sizes)
    hessian = torch.autograd.functional.jacobian(lambda v: energy_gradient(v, x, weights, sizes), s)
    s_var = s.clone().requires_grad_(True)
    loss = reference_cost(split(s_var, x, sizes)[-1], y).mean()
    dj_ds = torch.autograd.grad(loss, s_var)[0]
    adjoint = torch.linalg.solve(hessian, dj_ds)  # H is symmetric: H^{-T} = H^{-1}
    params = [w.clone().requires_grad_(True) for w in weights]
    g = energy_gradient(s.clone(), x, params, sizes)
    dj_dw = torch.autograd.grad(-(adjoint @ g), params)
    return [-d for d in dj_dw], s


def flat(tensors):
    return torch.cat([t.flatten() for t in tensors])


def relative_error(estimate, truth):
    return ((flat(estimate) - flat(truth)).norm() / flat(truth).norm()).item()


def angle(estimate, truth):
    a, b = flat(estimate), flat(truth)
    return math.degrees(math.acos((a @ b / (a.norm() * b.norm())).clamp(-1, 1).item()))


def fitted_order(steps, errors):
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


# ------------------------------------------------------------------- the dynamics


def test_step_descends_energy_plus_nudged_cost():
    weights, x, y = network(seed=0)
    g = torch.Generator().manual_seed(1)
    states = [x] + [torch.randn(3, n, generator=g, dtype=torch.float64) for n in SIZES[1:]]
    beta, step = 0.3, 0.1
    params = [s.clone().requires_grad_(True) for s in states]
    total = (reference_energy(params, weights) + beta * reference_cost(params[-1], y)).sum()
    grads = torch.autograd.grad(total, params[1:])
    stepped = eqprop_step(states, weights, step_size=step, beta=beta, target=y)
    assert_close(stepped[0], x, rtol=0, atol=0)
    for new, old, grad in zip(stepped[1:], states[1:], grads, strict=True):
        assert_close(new, old - step * grad, **EXACT)
    clamped = eqprop_step(states, weights, step_size=step, clamp_output=True)
    assert_close(clamped[-1], states[-1], rtol=0, atol=0)
    assert_close(energy(states, weights), reference_energy(states, weights), **EXACT)
    assert_close(cost(states, y), reference_cost(states[-1], y), **EXACT)


@pytest.mark.parametrize("beta", [0.0, 0.5, -0.5])
def test_relaxation_decreases_the_total_energy_monotonically(beta):
    weights, x, y = network(seed=2)
    weights = [3 * w for w in weights]  # strongly coupled: a long way to fall
    g = torch.Generator().manual_seed(3)
    states = [x] + [2 * torch.randn(3, n, generator=g, dtype=torch.float64) for n in SIZES[1:]]
    totals = []
    for _ in range(200):
        totals.append(reference_energy(states, weights) + beta * reference_cost(states[-1], y))
        states = eqprop_step(states, weights, step_size=0.1, beta=beta, target=y)
    totals = torch.stack(totals)
    assert (totals[1:] <= totals[:-1] + 1e-13).all()  # rounding, once at the fixed point
    assert (totals[-1] < totals[0] - 0.1).all()


def test_free_phase_reaches_the_fixed_point_found_by_newton():
    weights, x, _ = network(seed=4)
    free, steps = free_phase(x, weights, **RELAX)
    assert steps < RELAX["max_steps"]
    newton = split(newton_fixed_point(x, weights), x, SIZES)
    for ours, truth in zip(free, newton, strict=True):
        assert_close(ours, truth, rtol=0, atol=1e-12)


# ------------------------------------------------ EqProp approaches the true gradient


@pytest.mark.parametrize("seed", [5, 6])
def test_eqprop_update_converges_to_the_gradient_at_the_right_orders(seed):
    weights, x, y = network(seed=seed)
    truth, _ = implicit_update(x, y, weights)
    free, _ = free_phase(x, weights, **RELAX)
    one_sided, symmetric = [], []
    for beta in BETAS:
        positive, _ = nudged_phase(free, weights, y, beta, **RELAX)
        negative, _ = nudged_phase(free, weights, y, -beta, **RELAX)
        one_sided.append(relative_error(eqprop_update(free, positive, beta), truth))
        symmetric.append(relative_error(symmetric_eqprop_update(positive, negative, beta), truth))
    assert (np.diff(one_sided) < 0).all(), one_sided
    assert (np.diff(symmetric) < 0).all(), symmetric
    assert all(s < o for s, o in zip(symmetric, one_sided, strict=True))
    assert 0.9 < fitted_order(BETAS, one_sided) < 1.1
    assert 1.9 < fitted_order(BETAS, symmetric) < 2.1
    assert one_sided[-1] < 0.01 and symmetric[-1] < 1e-4


def test_eqprop_gradient_runs_the_phases_in_order():
    weights, x, y = network(seed=7)
    truth, _ = implicit_update(x, y, weights)
    beta = 0.01
    update, steps = eqprop_gradient(x, y, weights, beta=beta, **RELAX)
    both, more_steps = eqprop_gradient(x, y, weights, beta=beta, symmetric=True, **RELAX)
    assert relative_error(update, truth) < 0.05
    assert relative_error(both, truth) < 1e-3
    assert more_steps > steps  # a third phase costs relaxation steps
    assert angle(update, truth) < 3.0


# ------------------------------------------------------------ contrastive Hebbian learning


def test_chl_does_nothing_when_the_free_output_is_the_target():
    weights, x, _ = network(seed=8)
    free, _ = free_phase(x, weights, **RELAX)
    clamped, steps = clamped_phase(free, weights, free[-1], **RELAX)
    assert steps == 1
    for u in chl_update(free, clamped):
        assert_close(u, torch.zeros_like(u), rtol=0, atol=1e-12)


def test_chl_clamped_phase_holds_the_output_at_the_target():
    weights, x, y = network(seed=9)
    free, _ = free_phase(x, weights, **RELAX)
    clamped, _ = clamped_phase(free, weights, y, **RELAX)
    assert_close(clamped[-1], y, rtol=0, atol=0)
    # the hidden layers settle where dE/ds = 0 given the clamped output
    params = [s.clone().requires_grad_(True) for s in clamped]
    grads = torch.autograd.grad(reference_energy(params, weights).sum(), params[1:-1])
    for g in grads:
        assert g.abs().max() < 1e-12
    updates = chl_update(free, clamped)
    assert flat(updates).norm() > 1e-3  # a wrong output means learning


def test_beta_zero_is_refused():
    weights, x, _ = network(seed=10)
    free, _ = free_phase(x, weights, **RELAX)
    with pytest.raises(ValueError, match="non-zero"):
        eqprop_update(free, free, 0.0)
    with pytest.raises(ValueError, match="non-zero"):
        symmetric_eqprop_update(free, free, 0.0)
    with pytest.raises(ValueError, match="needs a target"):
        eqprop_step(free, weights, beta=0.1)

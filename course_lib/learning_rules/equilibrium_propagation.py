"""Contrastive learning: the difference of two Hebbian terms, one per phase.

A network with symmetric connections settles into a minimum of an energy. Learning
compares two such equilibria: a *free* phase, with only the input clamped, and a phase
where the output is pushed toward the target. Each synapse takes the difference of its
pre-times-post correlations in the two phases, a purely local rule.

Scellier & Bengio 2017 (Front. Comput. Neurosci. 11:24, "Equilibrium propagation:
bridging the gap between energy-based models and backpropagation") use a Hopfield-like
energy on states ``s`` with rates ``rho(s)``, and a cost on the output layer::

    energy      E = sum_l ||s_l||^2 / 2 - sum_l rho(s_{l+1})^T W_l rho(s_l)
    cost        C = ||y - s_L||^2 / 2
    dynamics    ds/dt = -d(E + beta C)/ds
                ds_l/dt = -s_l + rho'(s_l) ⊙ (W_{l-1} rho(s_{l-1}) + W_l^T rho(s_{l+1}))
                          [+ beta (y - s_L) on the output layer]
    update      dW_l ∝ (rho(s^beta_{l+1}) rho(s^beta_l)^T - rho(s^0_{l+1}) rho(s^0_l)^T) / beta

``s^0`` is the free fixed point (``beta = 0``), ``s^beta`` the weakly clamped one, started
from ``s^0``. As ``beta -> 0`` the update tends to ``-dJ/dW`` with ``J = C(s^0)``, the
loss at the free fixed point; the error is ``O(beta)``. The symmetric estimate, from the
phases at ``+beta`` and ``-beta`` and divided by ``2 beta`` (Laborieux et al. 2021, Front.
Neurosci. 15:633674), cancels the first-order term: ``O(beta^2)``.

Contrastive Hebbian learning (Movellan 1991) is the older rule: the output is clamped to
the target itself (not nudged), and the update is the plain difference, with no ``1/beta``.

Layers run from the input ``s_0 = x`` (always clamped) to the output ``s_L``; ``W_l`` is
the ``(post, pre)`` = ``(n_{l+1}, n_l)`` weight between layers ``l`` (``k`` in the code)
and ``l + 1``, used in both directions (the symmetric weights the model needs). Scellier
& Bengio's rate is the hard sigmoid ``clip(s, 0, 1)``; ``rho(s) = sigmoid(4 s - 2)`` is a
smooth version of it (the same slope, 1, at ``s = 1/2``, and the same range), which
keeps the energy twice differentiable, as the ``O(beta^2)`` estimate needs. (The plain
logistic sigmoid, slope 1/4, shrinks the signal so much at every layer that a network
learns digits hardly at all.) No biases: a constant input unit gives one where needed. States are
``(batch, units)``; updates are averaged over the batch and are the direction to move
the weights, ``W_l += learning_rate * update_l``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from course_lib._validate import check_positive, check_shape
from course_lib.learning_rules._relaxation import settle

Tensors = list[torch.Tensor]


def rate(s: torch.Tensor) -> torch.Tensor:
    """``rho(s) = sigmoid(4 s - 2)``: a smooth hard sigmoid, slope 1 at ``s = 1/2``."""
    return torch.sigmoid(4 * s - 2)


def rate_derivative(s: torch.Tensor) -> torch.Tensor:
    """``rho'(s) = 4 rho(s) (1 - rho(s))``."""
    r = rate(s)
    return 4 * r * (1 - r)


def _check_network(states: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> None:
    if len(states) != len(weights) + 1:
        raise ValueError(
            f"need one more layer of states than weights, got {len(states)} "
            f"states and {len(weights)} weights"
        )
    for k, w in enumerate(weights):
        check_shape(f"states[{k}]", states[k], (-1, w.shape[1]))
        check_shape(f"states[{k + 1}]", states[k + 1], (states[0].shape[0], w.shape[0]))


def energy(states: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """Hopfield-like energy ``E`` of each example, shape ``(batch,)`` (input clamped)."""
    _check_network(states, weights)
    leak = sum(0.5 * (s**2).sum(1) for s in states[1:])
    coupling = sum(
        (rate(states[k + 1]) * (rate(states[k]) @ w.T)).sum(1) for k, w in enumerate(weights)
    )
    return leak - coupling


def cost(states: Sequence[torch.Tensor], target: torch.Tensor) -> torch.Tensor:
    """``C = ||y - s_L||^2 / 2`` of each example, shape ``(batch,)``."""
    check_shape("target", target, tuple(states[-1].shape))
    return 0.5 * ((target - states[-1]) ** 2).sum(1)


def eqprop_step(
    states: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    *,
    step_size: float = 0.5,
    beta: float = 0.0,
    target: torch.Tensor | None = None,
    clamp_output: bool = False,
) -> Tensors:
    """One Euler step of ``ds/dt = -d(E + beta C)/ds``; the input stays clamped.

    The nudge ``beta (y - s_L)`` acts on the output layer only. With ``clamp_output`` the
    output is held where it is (contrastive Hebbian learning's clamped phase). Returns
    new tensors; ``states`` is unchanged.
    """
    _check_network(states, weights)
    check_positive("step_size", step_size)
    if beta != 0 and target is None:
        raise ValueError("a nudged phase (beta != 0) needs a target")
    n_layers = len(states)
    last = n_layers - 1 if clamp_output else n_layers
    new_states = list(states)
    for k in range(1, last):
        drive = rate(states[k - 1]) @ weights[k - 1].T  # bottom-up
        if k < n_layers - 1:
            drive = drive + rate(states[k + 1]) @ weights[k]  # top-down, the same synapses
        force = rate_derivative(states[k]) * drive - states[k]
        if k == n_layers - 1 and beta != 0:
            force = force + beta * (target - states[k])  # the weak clamp: -beta dC/ds_L
        new_states[k] = states[k] + step_size * force
    return new_states


def relax(
    states: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    *,
    step_size: float = 0.5,
    beta: float = 0.0,
    target: torch.Tensor | None = None,
    clamp_output: bool = False,
    max_steps: int = 2000,
    tol: float = 1e-12,
) -> tuple[Tensors, int]:
    """Steps of `eqprop_step` until no state moves more than ``step_size * tol``.

    Returns the (fixed-point) states and the number of steps taken. ``max_steps``
    means they did not settle: lower ``step_size`` (Euler steps on an energy are stable
    below 2 / its largest curvature).
    """
    def step(now: Tensors) -> Tensors:
        return eqprop_step(now, weights, step_size=step_size, beta=beta, target=target,
                           clamp_output=clamp_output)

    return settle(step, states, step_size=step_size, max_steps=max_steps, tol=tol)


def free_phase(
    x: torch.Tensor, weights: Sequence[torch.Tensor], **relax_options
) -> tuple[Tensors, int]:
    """The free fixed point ``s^0``: input clamped, every other state starts at 0."""
    check_shape("x", x, (-1, weights[0].shape[1]))
    states = [x] + [x.new_zeros(x.shape[0], w.shape[0]) for w in weights]
    return relax(states, weights, **relax_options)


def nudged_phase(
    free_states: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    target: torch.Tensor,
    beta: float,
    **relax_options,
) -> tuple[Tensors, int]:
    """The weakly clamped fixed point ``s^beta``, relaxed from the free one."""
    return relax(free_states, weights, beta=beta, target=target, **relax_options)


def clamped_phase(
    free_states: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    target: torch.Tensor,
    **relax_options,
) -> tuple[Tensors, int]:
    """Contrastive Hebbian learning's clamped phase: output set to the target, relax."""
    states = list(free_states)
    check_shape("target", target, tuple(states[-1].shape))
    states[-1] = target
    return relax(states, weights, clamp_output=True, **relax_options)


def hebbian_term(states: Sequence[torch.Tensor]) -> Tensors:
    """``rho(s_{l+1}) rho(s_l)^T`` for every weight, averaged over the batch (= ``-dE/dW_l``)."""
    batch = states[0].shape[0]
    return [rate(states[k + 1]).T @ rate(states[k]) / batch for k in range(len(states) - 1)]


def eqprop_update(
    free_states: Sequence[torch.Tensor], nudged_states: Sequence[torch.Tensor], beta: float
) -> Tensors:
    """Scellier & Bengio's update: ``(rho(s^b) rho(s^b)^T - rho(s^0) rho(s^0)^T) / beta``."""
    if beta == 0:
        raise ValueError("beta must be non-zero: the update divides by it")
    nudged, free = hebbian_term(nudged_states), hebbian_term(free_states)
    return [(h_beta - h_free) / beta for h_beta, h_free in zip(nudged, free, strict=True)]


def symmetric_eqprop_update(
    positive_states: Sequence[torch.Tensor],
    negative_states: Sequence[torch.Tensor],
    beta: float,
) -> Tensors:
    """The symmetric estimate: ``(H(s^{+b}) - H(s^{-b})) / (2 beta)``, error ``O(beta^2)``."""
    if beta == 0:
        raise ValueError("beta must be non-zero: the update divides by it")
    positive, negative = hebbian_term(positive_states), hebbian_term(negative_states)
    return [(h_pos - h_neg) / (2 * beta) for h_pos, h_neg in zip(positive, negative, strict=True)]


def chl_update(
    free_states: Sequence[torch.Tensor], clamped_states: Sequence[torch.Tensor]
) -> Tensors:
    """Contrastive Hebbian learning: ``rho(s^c) rho(s^c)^T - rho(s^0) rho(s^0)^T``."""
    clamped, free = hebbian_term(clamped_states), hebbian_term(free_states)
    return [h_clamped - h_free for h_clamped, h_free in zip(clamped, free, strict=True)]


def eqprop_gradient(
    x: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[torch.Tensor],
    *,
    beta: float = 0.05,
    symmetric: bool = False,
    **relax_options,
) -> tuple[Tensors, int]:
    """Free phase, nudged phase(s), update: equilibrium propagation's whole step.

    Returns the update (``≈ -dJ/dW``) and the number of relaxation steps used in all.
    """
    free, steps = free_phase(x, weights, **relax_options)
    positive, more = nudged_phase(free, weights, target, beta, **relax_options)
    steps += more
    if not symmetric:
        return eqprop_update(free, positive, beta), steps
    negative, more = nudged_phase(free, weights, target, -beta, **relax_options)
    return symmetric_eqprop_update(positive, negative, beta), steps + more

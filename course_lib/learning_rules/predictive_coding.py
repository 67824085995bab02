"""Predictive coding: errors held by their own neurons, learning by a local Hebbian rule.

Whittington & Bogacz 2017 (Neural Computation 29:1229, "An approximation of the error
backpropagation algorithm in a predictive coding network with local Hebbian synaptic
plasticity"). Every layer ``l`` has *value* nodes ``x_l`` and *error* nodes ``eps_l``.
Each layer predicts the one above; the error nodes hold what the prediction misses::

    prediction    mu_{l+1} = W_l f(x_l)
    error nodes   eps_l    = (x_l - mu_l) / sigma_l^2
    energy        F        = sum_l  ||x_l - mu_l||^2 / (2 sigma_l^2)
    inference     dx_l/dt  = -eps_l + f'(x_l) ⊙ W_l^T eps_{l+1}   = -dF/dx_l
    weights       dW_l     ∝  eps_{l+1} f(x_l)^T                  = -dF/dW_l

Layers run from the input ``x_0`` (always clamped) to the output ``x_L`` (clamped to the
target while learning). The paper numbers its layers the other way round (output 0);
here layer ``l`` feeds layer ``l + 1`` through ``W_l``, a ``(post, pre)`` =
``(n_{l+1}, n_l)`` matrix, and ``f`` (tanh) acts on every layer's values, the input's too.
With the values started at the feedforward pass, only the output error is non-zero;
inference spreads it down, and at equilibrium ``eps_l`` approximates backprop's error
``delta_l`` when the output error is small (the paper's limit). Here it is made small by
an output variance ``sigma_L^2 = 1 / nudge`` large against the hidden variances; the
output term of the energy is then ``nudge ||y - x_L||^2 / 2``, equilibrium propagation's
weak clamp. A Taylor expansion of
the equilibrium gives the rate: ``update / nudge`` differs from backprop's by
``O(nudge)``. Clamping the output to a target moved only part of the way toward ``y``,
with unit variances, does *not* converge: the hidden layers' own errors then feed back
into the output error at the same order (both measured in ``tests/test_predictive_coding.py``).

Z-IL (Song, Lukasiewicz, Xu & Bogacz 2020, NeurIPS, "Can the brain do backpropagation?
Exact implementation of backpropagation in predictive coding networks") makes the
equivalence exact with three choices: values start at the feedforward pass, the
inference step size is 1, and ``W_l`` is updated at inference step ``t = L - 1 - l``, the step
at which the error first reaches layer ``l + 1``.

Tensors are ``(batch, units)``; lists run over layers: ``values[l]``, ``errors[l]``
(``errors[0]`` is zero: nothing predicts the clamped input), ``weights[l]`` from layer ``l``
to ``l + 1`` (the code calls the layer index ``k``). No biases: a constant input unit
gives one where needed. An *update* is the direction to move the weights,
``W_l += learning_rate * update_l``: the negative gradient, averaged over the batch, of
the loss ``||y - y_hat||^2 / 2``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from course_lib._validate import check_positive, check_shape, make_generator
from course_lib.learning_rules._relaxation import settle

Tensors = list[torch.Tensor]


def activation(x: torch.Tensor) -> torch.Tensor:
    """``f(x) = tanh(x)``: the rate a value node sends to the layer above."""
    return torch.tanh(x)


def activation_derivative(x: torch.Tensor) -> torch.Tensor:
    """``f'(x) = 1 - tanh(x)^2``."""
    return 1 - torch.tanh(x) ** 2


def init_weights(
    sizes: Sequence[int], *, seed: int | torch.Generator | None = 0, dtype=torch.float64
) -> Tensors:
    """Random ``(n_{l+1}, n_l)`` weights, uniform in ``±1/sqrt(n_l)`` (nn.Linear's scale)."""
    if len(sizes) < 2 or any(int(n) < 1 for n in sizes):
        raise ValueError(f"sizes must be (n_in, hidden..., n_out) positive ints, got {sizes}")
    generator = make_generator(seed)
    return [
        (torch.rand(n_out, n_in, generator=generator, dtype=dtype) * 2 - 1) / math.sqrt(n_in)
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def _check_network(values: Sequence[torch.Tensor], weights: Sequence[torch.Tensor]) -> None:
    if len(values) != len(weights) + 1:
        raise ValueError(
            f"need one more layer of values than weights, got {len(values)} "
            f"values and {len(weights)} weights"
        )
    for k, w in enumerate(weights):
        check_shape(f"values[{k}]", values[k], (-1, w.shape[1]))
        check_shape(f"values[{k + 1}]", values[k + 1], (values[0].shape[0], w.shape[0]))


def _variances(variances: Sequence[float] | None, n_layers: int) -> list[float]:
    if variances is None:
        return [1.0] * n_layers
    if len(variances) != n_layers:
        raise ValueError(f"need one variance per layer ({n_layers}), got {len(variances)}")
    for k, v in enumerate(variances[1:], start=1):
        check_positive(f"variances[{k}]", v)
    return [float(v) for v in variances]


def feedforward(x: torch.Tensor, weights: Sequence[torch.Tensor]) -> Tensors:
    """The values every layer predicts from the input: ``x_{l+1} = W_l f(x_l)``.

    Starting inference here sets every error node to zero except the output's.
    """
    values = [x]
    for w in weights:
        check_shape("layer input", values[-1], (-1, w.shape[1]))
        values.append(activation(values[-1]) @ w.T)
    return values


def error_nodes(
    values: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    variances: Sequence[float] | None = None,
) -> Tensors:
    """``eps_l = (x_l - W_{l-1} f(x_{l-1})) / sigma_l^2`` for every layer.

    ``variances[l]`` is ``sigma_l^2`` (default 1; ``variances[0]`` is unused). The input
    layer is clamped and nothing predicts it, so ``errors[0]`` is zero.
    """
    _check_network(values, weights)
    variance = _variances(variances, len(values))
    errors = [torch.zeros_like(values[0])]
    for k, w in enumerate(weights):
        prediction = activation(values[k]) @ w.T
        errors.append((values[k + 1] - prediction) / variance[k + 1])
    return errors


def energy(
    values: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    variances: Sequence[float] | None = None,
) -> torch.Tensor:
    """``F = sum_l ||x_l - mu_l||^2 / (2 sigma_l^2)`` per example, shape ``(batch,)``."""
    errors = error_nodes(values, weights, variances)
    variance = _variances(variances, len(values))
    return sum(0.5 * v * (e**2).sum(1) for e, v in zip(errors, variance, strict=True))


def inference_step(
    values: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    *,
    step_size: float = 0.1,
    variances: Sequence[float] | None = None,
    clamp_output: bool = True,
) -> Tensors:
    """One Euler step of ``dx_l/dt = -eps_l + f'(x_l) ⊙ W_l^T eps_{l+1}``.

    The input stays clamped; so does the output unless ``clamp_output=False`` (then it
    relaxes too, with no error node above it). Returns new tensors; ``values`` is unchanged.
    """
    check_positive("step_size", step_size)
    errors = error_nodes(values, weights, variances)
    last = len(values) if not clamp_output else len(values) - 1
    new_values = list(values)
    for k in range(1, last):
        drive = -errors[k]  # the layer's own error pulls it toward its prediction
        if k < len(weights):  # the error above pushes it to predict better
            drive = drive + activation_derivative(values[k]) * (errors[k + 1] @ weights[k])
        new_values[k] = values[k] + step_size * drive
    return new_values


def hebbian_update(values: Sequence[torch.Tensor], errors: Sequence[torch.Tensor]) -> Tensors:
    """``update_l = eps_{l+1} f(x_l)^T``, averaged over the batch.

    Post-synaptic error times pre-synaptic rate: both sides of the synapse are local.
    """
    if len(values) != len(errors):
        raise ValueError(
            f"need as many error layers as value layers, got {len(errors)} and {len(values)}"
        )
    batch = values[0].shape[0]
    return [errors[k + 1].T @ activation(values[k]) / batch for k in range(len(values) - 1)]


def relax(
    values: Sequence[torch.Tensor],
    weights: Sequence[torch.Tensor],
    *,
    step_size: float = 0.1,
    max_steps: int = 1000,
    tol: float = 1e-10,
    variances: Sequence[float] | None = None,
) -> tuple[Tensors, int]:
    """Inference steps (output clamped) until no value moves more than ``step_size * tol``.

    Returns the values and the number of steps taken (at most ``max_steps``). ``max_steps``
    means they did not settle: lower ``step_size`` (Euler steps on an energy are stable
    below 2 / its largest curvature).
    """
    def step(now: Tensors) -> Tensors:
        return inference_step(now, weights, step_size=step_size, variances=variances)

    return settle(step, values, step_size=step_size, max_steps=max_steps, tol=tol)


def pc_update(
    x: torch.Tensor,
    target: torch.Tensor,
    weights: Sequence[torch.Tensor],
    *,
    step_size: float = 0.1,
    max_steps: int = 1000,
    tol: float = 1e-10,
    variances: Sequence[float] | None = None,
) -> tuple[Tensors, int]:
    """Whittington & Bogacz's learning: clamp, relax to equilibrium, Hebbian update.

    Values start at the feedforward pass, the output is clamped to ``target``, inference
    runs to equilibrium, then every synapse takes ``eps_{l+1} f(x_l)^T``. Returns the
    updates and the inference steps used. With ``variances[-1] = 1 / nudge`` and unit
    hidden variances, ``update / nudge`` approaches backprop's update as ``O(nudge)``.
    """
    values = feedforward(x, weights)
    check_shape("target", target, tuple(values[-1].shape))
    values[-1] = target
    values, steps = relax(
        values, weights, step_size=step_size, max_steps=max_steps, tol=tol, variances=variances
    )
    return hebbian_update(values, error_nodes(values, weights, variances)), steps


def zil_update(x: torch.Tensor, target: torch.Tensor, weights: Sequence[torch.Tensor]) -> Tensors:
    """Zero-divergence inference learning: predictive coding that *is* backprop.

    Song et al. 2020 (Z-IL): values start at the feedforward pass (every hidden
    error is zero), the output is clamped to ``target``, inference runs with step size 1 and
    unit variances, and ``W_l`` takes its Hebbian update at step ``t = L - 1 - l`` -- the
    step at which the error has just reached layer ``l + 1`` and nothing below it has
    moved yet. The weights are held fixed during inference (backprop, too, uses the old
    weights all the way down); the ``L - 1`` inference steps of ``L`` weight layers give
    updates equal to backprop's for the loss ``||target - y_hat||^2 / 2``, exactly.
    """
    values = feedforward(x, weights)
    check_shape("target", target, tuple(values[-1].shape))
    values[-1] = target
    n_layers = len(weights)
    updates: Tensors = [torch.empty(0)] * n_layers
    for step in range(n_layers):
        layer = n_layers - 1 - step  # the weight whose post-synaptic error is exact now
        errors = error_nodes(values, weights)
        below_and_above = slice(layer, layer + 2)  # the synapse's two layers
        updates[layer] = hebbian_update(values[below_and_above], errors[below_and_above])[0]
        if step < n_layers - 1:
            values = inference_step(values, weights, step_size=1.0)
    return updates

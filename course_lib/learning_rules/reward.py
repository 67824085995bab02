"""Learning from a single number: perturbation estimators and three-factor rules.

Backprop needs an error *vector*. A network that only receives a scalar reward (or loss)
can still follow the gradient: jiggle something, see whether the reward went up, and move
in the direction of the jiggle if it did. Averaged over many jiggles this is the gradient;
each single estimate is noisy, and the noise grows with the number of things jiggled.

- weight perturbation: jiggle every weight (Williams 1992; Werfel, Xie & Seung 2005,
  Neural Comput 17:2699);
- node perturbation: jiggle every unit's summed input, credit the weights through their
  pre-synaptic activity (Williams 1992; Fiete & Seung 2006; Fiete, Fee & Seung 2007, the
  songbird's LMAN injecting variability into RA);
- REINFORCE for stochastic units, with a running reward baseline: the reward prediction
  error ``R - R_bar`` is the third factor (Williams 1992);
- a three-factor rule: an eligibility trace ``e`` (pre-synaptic activity x post-synaptic
  fluctuation, low-pass filtered) turned into a weight change by the reward prediction
  error, ``dW = lr (R - R_bar) e`` (Frémaux & Gerstner 2016).

Convention: weights are ``(post, pre)``; a loss is *minimised* (update ``-lr g``), a
reward is *maximised* (update ``+lr (R - R_bar) e``). Every stochastic function takes a
seed or a ``torch.Generator``; no function changes its arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib._validate import check_fraction, check_positive, make_generator

Tensor = torch.Tensor
LossFn = Callable[[Tensor], Tensor | float]


# ------------------------------------------------------------- the four exercise pieces


def weight_perturbation_estimate(
    loss_fn: LossFn, weights: Tensor, noise: Tensor, sigma: float
) -> Tensor:
    """One weight-perturbation estimate of the gradient of ``loss_fn`` at ``weights``.

    ``g = (L(W + xi) - L(W)) xi / sigma**2`` with ``xi ~ N(0, sigma^2 I)`` (``noise``, the
    shape of ``weights``). To first order ``L(W + xi) - L(W) = grad . xi`` and
    ``E[xi xi^T] = sigma^2 I``, so ``E[g] = grad`` (Werfel, Xie & Seung 2005, the
    weight-perturbation update ``dW = -lr (L(W + xi) - L(W)) xi / sigma^2``; Williams 1992
    gives it as REINFORCE with Gaussian noise on the weights). Subtracting the clean loss
    ``L(W)`` changes no mean but removes a variance ``L(W)^2 / sigma^2`` per weight. The
    update is ``-lr * g``. ``weights`` is never changed: the perturbed weights are a new
    tensor.
    """
    _check_noise("noise", noise, weights)
    check_positive("sigma", sigma)
    with torch.no_grad():
        loss_change = _as_scalar(loss_fn(weights + noise)) - _as_scalar(loss_fn(weights))
        return loss_change * noise / sigma**2


def node_perturbation_update(
    pre: Tensor,
    noise: Tensor,
    loss_perturbed: Tensor | float,
    loss_clean: Tensor | float,
    sigma: float,
    lr: float,
) -> Tensor:
    """Node-perturbation weight change ``dW_ij = -lr (L_xi - L_0) xi_i x_j / sigma**2``.

    Each post-synaptic unit's summed input got an extra ``xi_i ~ N(0, sigma^2)``; the
    weight ``W_ij`` is credited with the loss change times its unit's jiggle times its
    input ``x_j`` (Williams 1992; Werfel, Xie & Seung 2005; Fiete & Seung 2006,
    PRL 97:048104, perturbing conductances; Fiete, Fee & Seung 2007, J Neurophysiol
    98:2038). Since ``dL/dW_ij = dL/da_i x_j`` (``a = W x``), this is weight perturbation
    done in the space of the units.

    Shapes: ``pre`` ``(n_pre,)`` or ``(batch, n_pre)``; ``noise`` ``(n_post,)`` or
    ``(batch, n_post)``; the losses are numbers, or ``(batch,)`` tensors for one loss per
    example. A batch is **summed** over: ``sum_b (L_xi - L_0)_b xi_b x_b^T``. With one
    loss for the whole batch this is an unbiased estimate of that loss's gradient, because
    ``dL/dW = sum_b dL/da_b x_b^T``. Returns ``dW`` of shape ``(n_post, n_pre)``.
    """
    check_positive("sigma", sigma)
    if pre.dim() != noise.dim() or pre.dim() not in (1, 2):
        raise ValueError(
            f"pre and noise must both be 1-D or both 2-D (batch first), got shapes "
            f"{tuple(pre.shape)} and {tuple(noise.shape)}"
        )
    if pre.dim() == 2 and pre.shape[0] != noise.shape[0]:
        raise ValueError(
            f"pre and noise must have one batch size, got {pre.shape[0]} and {noise.shape[0]}"
        )
    loss_change = torch.as_tensor(loss_perturbed, dtype=noise.dtype) - torch.as_tensor(
        loss_clean, dtype=noise.dtype
    )
    credit = loss_change.reshape(-1, 1) * noise.reshape(-1, noise.shape[-1])  # (batch, n_post)
    return -lr * credit.T @ pre.reshape(-1, pre.shape[-1]) / sigma**2


def update_baseline(baseline: Tensor | float, reward: Tensor | float, rate: float) -> Tensor:
    """Running average of reward, ``R_bar <- R_bar + rate (R - R_bar)``; returns a new tensor.

    ``R - R_bar`` is the reward prediction error, the third factor (Williams 1992's
    reinforcement baseline ``b``; Frémaux & Gerstner 2016, Front Neural Circuits 9:85: the
    modulator must carry reward *minus expected reward*, or a non-centred eligibility
    is learned in proportion to the average reward).
    ``rate`` in (0, 1]: 1 forgets everything but the last reward.
    """
    check_fraction("rate", rate)
    baseline = torch.as_tensor(baseline).detach()
    if not baseline.is_floating_point():
        baseline = baseline.to(torch.get_default_dtype())
    reward = torch.as_tensor(reward, dtype=baseline.dtype)
    return baseline + rate * (reward - baseline)


def eligibility_step(trace: Tensor, pre: Tensor, post_fluctuation: Tensor, decay: float) -> Tensor:
    """One step of the eligibility trace, ``e_ij <- decay e_ij + (1 - decay) dpost_i pre_j``.

    A low-pass filter of (post-synaptic fluctuation x pre-synaptic activity): the synapse
    remembers that it *could* have caused the outcome, until the reward arrives
    (Frémaux & Gerstner 2016: ``dW_ij = lr M(t) e_ij(t)`` with ``e`` a filtered Hebbian
    product; Miconi 2017 accumulates the same product, made supralinear).
    ``trace`` is ``(n_post, n_pre)`` (or ``(batch, n_post, n_pre)`` with batched ``pre``
    ``(batch, n_pre)`` and ``post_fluctuation`` ``(batch, n_post)``); ``decay`` in [0, 1).
    Returns a new tensor.
    """
    if not (isinstance(decay, int | float) and 0.0 <= decay < 1.0):
        raise ValueError(f"decay must be a number in [0, 1), got {decay!r}")
    hebbian = torch.einsum("...i,...j->...ij", post_fluctuation, pre)
    if hebbian.shape != trace.shape:
        raise ValueError(
            f"trace must have shape {tuple(hebbian.shape)} (post, pre), got {tuple(trace.shape)}"
        )
    return decay * trace + (1.0 - decay) * hebbian


# ------------------------------------------------- many samples: the estimators' mean


def weight_perturbation_samples(
    loss_fn: LossFn,
    weights: Tensor,
    sigma: float,
    n_samples: int,
    generator: int | torch.Generator | None = 0,
) -> Tensor:
    """``n_samples`` independent weight-perturbation estimates, stacked: ``(n_samples, *W)``.

    Their mean estimates the gradient; their spread is the estimator's noise, which grows
    with the number of perturbed weights (Werfel, Xie & Seung 2005).
    """
    generator = make_generator(generator)
    noises = sigma * torch.randn(
        (n_samples, *weights.shape), generator=generator, dtype=weights.dtype
    )
    return torch.stack(
        [weight_perturbation_estimate(loss_fn, weights, noise, sigma) for noise in noises]
    )


def weight_perturbation_gradient(
    loss_fn: LossFn,
    weights: Tensor,
    sigma: float,
    n_samples: int,
    generator: int | torch.Generator | None = 0,
) -> Tensor:
    """The mean of `weight_perturbation_samples`: a gradient estimate from ``n_samples`` trials."""
    return weight_perturbation_samples(loss_fn, weights, sigma, n_samples, generator).mean(0)


def node_perturbation_samples(
    output_loss: LossFn,
    weights: Tensor,
    inputs: Tensor,
    sigma: float,
    n_samples: int,
    generator: int | torch.Generator | None = 0,
) -> Tensor:
    """``n_samples`` node-perturbation estimates of ``dL/dW`` for one layer, ``a = x W^T``.

    ``output_loss`` maps the layer's summed inputs ``a`` ``(batch, n_post)`` to one loss
    (put any nonlinearity and fixed layers above inside it); ``inputs`` is
    ``(batch, n_pre)``. Each trial adds ``xi ~ N(0, sigma^2)`` to every ``a_bi`` and uses
    `node_perturbation_update` with ``lr = 1``; the gradient estimate is minus that update.
    Returns ``(n_samples, n_post, n_pre)``.
    """
    generator = make_generator(generator)
    with torch.no_grad():
        summed = inputs @ weights.T
        loss_clean = _as_scalar(output_loss(summed))
        samples = []
        for _ in range(n_samples):
            noise = sigma * torch.randn(summed.shape, generator=generator, dtype=summed.dtype)
            loss_perturbed = _as_scalar(output_loss(summed + noise))
            update = node_perturbation_update(inputs, noise, loss_perturbed, loss_clean, sigma, 1.0)
            samples.append(-update)
    return torch.stack(samples)


def node_perturbation_gradient(
    output_loss: LossFn,
    weights: Tensor,
    inputs: Tensor,
    sigma: float,
    n_samples: int,
    generator: int | torch.Generator | None = 0,
) -> Tensor:
    """The mean of `node_perturbation_samples`: a gradient estimate from ``n_samples`` trials."""
    samples = node_perturbation_samples(output_loss, weights, inputs, sigma, n_samples, generator)
    return samples.mean(0)


# ----------------------------------------- REINFORCE and the three-factor update


def gaussian_units(
    weights: Tensor, pre: Tensor, sigma: float, generator: int | torch.Generator | None = 0
) -> Tensor:
    """Stochastic units ``y = W x + xi``, ``xi ~ N(0, sigma^2)``: the noise is the exploration."""
    mean = pre @ weights.T
    noise = torch.randn(mean.shape, generator=make_generator(generator), dtype=mean.dtype)
    return mean + sigma * noise


def bernoulli_units(
    weights: Tensor, pre: Tensor, generator: int | torch.Generator | None = 0
) -> Tensor:
    """Stochastic binary units, ``y = 1`` with probability ``sigmoid(W x)`` (Williams 1992)."""
    probability = torch.sigmoid(pre @ weights.T)
    return torch.bernoulli(probability, generator=make_generator(generator))


def gaussian_eligibility(weights: Tensor, pre: Tensor, post: Tensor, sigma: float) -> Tensor:
    """Williams 1992's characteristic eligibility ``d ln p(y)/dW`` for Gaussian units.

    ``e_ij = (y_i - mu_i) x_j / sigma^2`` with ``mu = W x``: the post-synaptic fluctuation
    (what the noise did) times the pre-synaptic activity. A batch ``(batch, n)`` is summed.
    """
    fluctuation = post - pre @ weights.T
    return torch.einsum("...i,...j->ij", fluctuation, pre) / sigma**2


def bernoulli_eligibility(weights: Tensor, pre: Tensor, post: Tensor) -> Tensor:
    """Characteristic eligibility of Bernoulli-logistic units: ``e_ij = (y_i - p_i) x_j``.

    Williams 1992's Bernoulli-logistic unit (``p = sigmoid(W x)``). A batch ``(batch, n)``
    is summed.
    """
    fluctuation = post - torch.sigmoid(pre @ weights.T)
    return torch.einsum("...i,...j->ij", fluctuation, pre)


def three_factor_update(
    reward: Tensor | float, baseline: Tensor | float, eligibility: Tensor, lr: float
) -> Tensor:
    """``dW = lr (R - R_bar) e``: pre x post in ``e``, the reward prediction error as third factor.

    With ``e`` the characteristic eligibility this is REINFORCE (Williams 1992:
    ``dw_ij = alpha (r - b_ij) e_ij``); its expectation is ``lr dE[R]/dW`` for any baseline
    that does not depend on this trial's noise. The baseline changes no mean, only the
    variance; a rule driven by ``R`` alone learns the same on average but far more noisily
    (and is biased as soon as ``e`` is not mean-zero, e.g. raw post x pre activity;
    Frémaux & Gerstner 2016).
    """
    prediction_error = torch.as_tensor(reward, dtype=eligibility.dtype) - torch.as_tensor(
        baseline, dtype=eligibility.dtype
    )
    return lr * prediction_error * eligibility


def reinforce_gaussian_step(
    weights: Tensor,
    pre: Tensor,
    reward_fn: Callable[[Tensor], Tensor | float],
    baseline: Tensor | float,
    sigma: float,
    lr: float,
    baseline_rate: float,
    generator: int | torch.Generator | None = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """One REINFORCE trial with Gaussian units and a running baseline.

    Act (``y = W x + xi``), get one scalar reward ``R = reward_fn(y)``, update
    ``W + lr (R - R_bar) e`` and then the baseline. Returns ``(new_weights, new_baseline,
    reward)``; the arguments are not changed.
    """
    post = gaussian_units(weights, pre, sigma, generator)
    reward = _as_scalar(reward_fn(post))
    eligibility = gaussian_eligibility(weights, pre, post, sigma)
    new_weights = weights + three_factor_update(reward, baseline, eligibility, lr)
    return new_weights, update_baseline(baseline, reward, baseline_rate), reward


# ------------------------------------- node perturbation in a network: what it costs


def mlp_forward(
    weights: list[Tensor], x: Tensor, noises: list[Tensor] | None = None
) -> tuple[Tensor, list[Tensor]]:
    """A tanh MLP, linear output; ``noises[l]`` is added to layer ``l``'s summed input.

    Returns the output and each layer's pre-synaptic activity (what its synapses saw).
    """
    activity, pres = x, []
    for layer, weight in enumerate(weights):
        pres.append(activity)
        summed = activity @ weight.T
        if noises is not None:
            summed = summed + noises[layer]
        activity = summed if layer == len(weights) - 1 else torch.tanh(summed)
    return activity, pres


def squared_errors(output: Tensor, target: Tensor) -> Tensor:
    """One loss per example, ``|y - t|^2 / 2``: a trial's scalar (negative) reward."""
    return 0.5 * ((output - target) ** 2).sum(-1)


def node_perturbation_mlp_gradients(
    weights: list[Tensor],
    x: Tensor,
    target: Tensor,
    sigma: float,
    generator: int | torch.Generator | None = 0,
) -> list[Tensor]:
    """Every unit of every layer jiggled at once; one scalar loss per example (a trial).

    Two forward passes, clean and perturbed; each layer's estimate is
    `node_perturbation_update` (``lr = 1``, sign flipped) divided by the batch size, so it
    estimates the gradient of the batch-mean loss (Fiete & Seung 2006 perturb every
    neuron of the network together). No backward pass, no error vector.
    """
    generator = make_generator(generator)
    with torch.no_grad():
        output, _ = mlp_forward(weights, x)
        loss_clean = squared_errors(output, target)
        noises = [
            sigma * torch.randn(len(x), w.shape[0], generator=generator, dtype=w.dtype)
            for w in weights
        ]
        output, pres = mlp_forward(weights, x, noises)
        loss_perturbed = squared_errors(output, target)
        return [
            -node_perturbation_update(pre, noise, loss_perturbed, loss_clean, sigma, 1.0) / len(x)
            for pre, noise in zip(pres, noises, strict=True)
        ]


def backprop_mlp_gradients(weights: list[Tensor], x: Tensor, target: Tensor) -> list[Tensor]:
    """The same batch-mean loss's exact gradient, by autograd: the comparison."""
    leaves = [w.detach().clone().requires_grad_(True) for w in weights]
    output, _ = mlp_forward(leaves, x)
    return list(torch.autograd.grad(squared_errors(output, target).mean(), leaves))


def train_teacher_regression(
    rule: str,
    sizes: tuple[int, ...] = (8, 32, 1),
    n_updates: int = 2000,
    batch: int = 32,
    lr: float = 0.05,
    sigma: float = 0.01,
    seed: int = 0,
) -> Tensor:
    """Learn a random teacher MLP of the same shape with ``rule`` ``"bp"`` or ``"np"``.

    Both rules see the same initial weights and the same stream of batches. Returns the
    clean batch loss before each update, ``(n_updates,)``; trials = updates x batch.
    """
    if rule not in ("bp", "np"):
        raise ValueError(f"rule must be 'bp' or 'np', got {rule!r}")
    generator = make_generator(seed)
    layers = list(zip(sizes[:-1], sizes[1:], strict=True))
    teacher = [torch.randn(n_out, n_in, generator=generator) / n_in**0.5 for n_in, n_out in layers]
    weights = [torch.randn(n_out, n_in, generator=generator) / n_in**0.5 for n_in, n_out in layers]
    noise_generator = make_generator(seed + 1)
    losses = torch.empty(n_updates)
    for step in range(n_updates):
        x = torch.randn(batch, sizes[0], generator=generator)
        target = mlp_forward(teacher, x)[0]
        losses[step] = squared_errors(mlp_forward(weights, x)[0], target).mean()
        if rule == "bp":
            gradients = backprop_mlp_gradients(weights, x, target)
        else:
            gradients = node_perturbation_mlp_gradients(weights, x, target, sigma, noise_generator)
        weights = [w - lr * g for w, g in zip(weights, gradients, strict=True)]
    return losses


# ------------------------------------------------ is a mean consistent with a gradient?


def first_order_variance(gradient: Tensor) -> float:
    """Total variance (trace of the covariance) of one perturbation estimate, to first order.

    With ``g = (grad . xi) xi / sigma^2`` and ``xi ~ N(0, sigma^2 I)`` in P dimensions,
    ``Cov(g) = |grad|^2 I + grad grad^T``, so ``trace = (P + 1) |grad|^2``: it grows with the
    number of perturbed weights (WP) or units (NP, with ``grad`` the gradient w.r.t. the
    summed inputs, times ``|x|^2``) (Werfel, Xie & Seung 2005). An estimator without the
    baseline adds ``P L(W)^2 / sigma^2`` to it.
    """
    gradient = gradient.detach().double()
    return float((gradient.numel() + 1) * (gradient**2).sum())


def bonferroni_z(n_coordinates: int, false_rejection: float = 1e-6) -> float:
    """Two-sided z threshold so that ``n_coordinates`` z-tests together reject a correct
    estimator with probability at most ``false_rejection`` (Bonferroni; normal approx.)."""
    tail = torch.tensor(false_rejection / (2 * n_coordinates), dtype=torch.float64)
    return float(-torch.special.ndtri(tail))


def mean_z_scores(samples: Tensor, target: Tensor) -> Tensor:
    """Per-coordinate ``(mean - target) / SE``, ``SE = sample std / sqrt(n)``, from
    ``samples`` ``(n, *shape)`` of an estimator claimed unbiased for ``target``."""
    samples = samples.detach().double().flatten(1)
    error = samples.mean(0) - target.detach().double().flatten()
    standard_error = samples.std(0, correction=1) / samples.shape[0] ** 0.5
    # a coordinate that never varies (e.g. an input that is 0) must match exactly
    z_scores = torch.where(error == 0, 0.0, error / standard_error)
    return z_scores.reshape(target.shape)


def mean_matches(samples: Tensor, target: Tensor, false_rejection: float = 1e-6) -> bool:
    """True if every coordinate's mean is within ``bonferroni_z * SE`` of ``target``.

    Catches a *biased* estimator (wrong sign, ``sigma`` for ``sigma^2``, the loss change
    not measured); an unbiased but noisier one (no baseline) passes: compare variances.
    """
    z_scores = mean_z_scores(samples, target)
    return bool(z_scores.abs().max() <= bonferroni_z(z_scores.numel(), false_rejection))


# ------------------------------------------------------------------------- helpers


def _check_noise(name: str, noise: Tensor, like: Tensor) -> None:
    if tuple(noise.shape) != tuple(like.shape):
        raise ValueError(
            f"{name} must have the shape of the weights, {tuple(like.shape)}, "
            f"got {tuple(noise.shape)}"
        )


def _as_scalar(loss: Tensor | float) -> Tensor:
    loss = torch.as_tensor(loss)
    if loss.numel() != 1:
        raise ValueError(f"the loss must be one number, got shape {tuple(loss.shape)}")
    return loss.reshape(())

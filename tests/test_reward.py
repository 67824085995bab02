"""Ground truths for `course_lib.learning_rules.reward`, sharing no code with it.

- unbiasedness: the mean of n seeded estimates against autograd's gradient, per coordinate
  within a Bonferroni z of the estimator's own standard error; the same test rejects the
  BIASED mistakes (wrong sign, sigma for sigma^2, 2 sigma^2, a noise sample that was not
  the one applied) and a variance test rejects the UNBIASED but noisy one (no baseline);
- variance scaling: trace Cov = (P + 1) |grad|^2 to first order for P perturbed Gaussian
  directions (weights for WP, units for NP; Werfel, Xie & Seung 2005), fitted on log-log;
- the angle of the mean update to the gradient falls as sigma -> 0 and n grows;
- REINFORCE: the exact expectation (all 2^n binary outcomes enumerated) is the autograd
  gradient of the expected reward, whatever the constant baseline; a reward instead of a
  reward prediction error is biased only with an eligibility that is not mean-zero;
- the eligibility trace against its geometric-sum closed form, in numpy float64.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.learning_rules import reward

SEEDS = (0, 1, 2)
FALSE_REJECTION = 1e-6  # for the whole vector of coordinates (Bonferroni)


# ------------------------------------------------------------------ ground-truth helpers


def tanh_layer_loss(weights: torch.Tensor, seed: int = 0):
    """A small nonlinear regression loss L(W) = mean |tanh(x W^T) - t|^2 / 2, and its data."""
    generator = torch.Generator().manual_seed(seed)
    n_post, n_pre = weights.shape
    x = torch.randn(5, n_pre, generator=generator, dtype=torch.float64)
    t = torch.randn(5, n_post, generator=generator, dtype=torch.float64)

    def loss(w: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((torch.tanh(x @ w.T) - t) ** 2).sum(1).mean()

    return loss, x, t


def autograd_gradient(loss_fn, weights: torch.Tensor) -> torch.Tensor:
    w = weights.detach().clone().requires_grad_(True)
    loss_fn(w).backward()
    return w.grad.detach()


def z_test_passes(samples: np.ndarray, target: np.ndarray) -> bool:
    """Two-sided z-test per coordinate, Bonferroni-corrected (scipy's normal quantile)."""
    samples = samples.reshape(len(samples), -1)
    target = target.reshape(-1)
    se = samples.std(0, ddof=1) / math.sqrt(len(samples))
    z = np.abs(samples.mean(0) - target) / se
    return bool(z.max() <= stats.norm.isf(FALSE_REJECTION / (2 * target.size)))


def weights_of(shape, seed):
    generator = torch.Generator().manual_seed(100 + seed)
    return 0.5 * torch.randn(shape, generator=generator, dtype=torch.float64)


def wp_samples_numpy(loss_fn, weights, sigma, n, seed, mistake=None):
    """Weight-perturbation samples written again here, with the mistakes a student makes."""
    rng = np.random.default_rng(seed)
    w = weights.numpy()
    loss_0 = float(loss_fn(weights))
    out = np.empty((n, *w.shape))
    for k in range(n):
        xi = sigma * rng.standard_normal(w.shape)
        loss_xi = float(loss_fn(torch.from_numpy(w + xi)))
        if mistake == "no baseline":
            out[k] = loss_xi * xi / sigma**2
        elif mistake == "sigma not squared":
            out[k] = (loss_xi - loss_0) * xi / sigma
        elif mistake == "two sigma squared":
            out[k] = (loss_xi - loss_0) * xi / (2 * sigma**2)
        elif mistake == "wrong sign":
            out[k] = -(loss_xi - loss_0) * xi / sigma**2
        elif mistake == "fresh noise":  # correlates with a noise sample it did not apply
            out[k] = (loss_xi - loss_0) * sigma * rng.standard_normal(w.shape) / sigma**2
        else:
            out[k] = (loss_xi - loss_0) * xi / sigma**2
    return out


# ----------------------------------------------------------------- the four exercise pieces


def test_weight_perturbation_estimate_by_hand():
    # L(W) = sum W^2: L(W + xi) - L(W) = 2 W.xi + |xi|^2
    weights = torch.tensor([[1.0, -2.0]])
    noise = torch.tensor([[0.1, 0.2]])
    expected = (2 * (0.1 - 0.4) + 0.05) * np.array([[0.1, 0.2]]) / 0.1**2
    before = weights.clone()
    got = reward.weight_perturbation_estimate(lambda w: (w**2).sum(), weights, noise, 0.1)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)
    assert torch.equal(weights, before)


def test_node_perturbation_update_by_hand_and_batch_is_summed():
    # dW = -lr dL xi x^T / sigma^2 = -0.5 * 0.2 * 0.5 * [1, 2] / 0.25
    got = reward.node_perturbation_update(
        torch.tensor([1.0, 2.0]), torch.tensor([0.5]), 1.2, 1.0, sigma=0.5, lr=0.5
    )
    np.testing.assert_allclose(got.numpy(), [[-0.2, -0.4]], rtol=1e-6)
    # a batch of two examples with their own losses: the sum of the two single updates
    pre = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    noise = torch.tensor([[0.5, -1.0], [2.0, 1.0]])
    loss_change = np.array([0.2, -0.1])
    expected = (
        -sum(loss_change[b] * np.outer(noise[b].numpy(), pre[b].numpy()) for b in range(2)) / 0.25
    )
    got = reward.node_perturbation_update(
        pre, noise, torch.tensor([1.2, 0.9]), torch.tensor([1.0, 1.0]), 0.5, 1.0
    )
    assert got.shape == (2, 2)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5)


def test_update_baseline_by_hand():
    baseline = torch.tensor(1.0)
    assert reward.update_baseline(baseline, 3.0, 0.25).item() == pytest.approx(1.5)
    assert baseline.item() == 1.0
    values = [reward.update_baseline(0.0, 2.0, 1.0).item()]
    assert values == [2.0]  # rate 1 keeps only the last reward
    # it converges to the mean of a constant reward stream: 1 - (1 - rate)^k of the way
    r_bar = torch.tensor(0.0)
    for _ in range(10):
        r_bar = reward.update_baseline(r_bar, 4.0, 0.1)
    assert r_bar.item() == pytest.approx(4.0 * (1 - 0.9**10))


def test_eligibility_trace_equals_its_geometric_sum():
    """e_T = decay^T e_0 + (1 - decay) sum_t decay^(T - t) post_t pre_t^T, in float64."""
    rng = np.random.default_rng(7)
    steps, decay = 9, 0.8
    pre = rng.standard_normal((steps, 4))
    post = rng.standard_normal((steps, 3))
    e_0 = rng.standard_normal((3, 4))
    closed = decay**steps * e_0 + (1 - decay) * sum(
        decay ** (steps - 1 - t) * np.outer(post[t], pre[t]) for t in range(steps)
    )
    trace = torch.from_numpy(e_0)
    first = trace.clone()
    for t in range(steps):
        trace = reward.eligibility_step(
            trace, torch.from_numpy(pre[t]), torch.from_numpy(post[t]), decay
        )
    np.testing.assert_allclose(trace.numpy(), closed, rtol=1e-12, atol=1e-12)
    assert torch.equal(torch.from_numpy(e_0), first)  # the caller's trace is untouched


def test_eligibility_step_batched_matches_one_by_one():
    rng = np.random.default_rng(3)
    pre, post = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    batched = reward.eligibility_step(
        torch.zeros(2, 3, 4, dtype=torch.float64),
        torch.from_numpy(pre),
        torch.from_numpy(post),
        0.5,
    )
    for b in range(2):
        np.testing.assert_allclose(batched[b].numpy(), 0.5 * np.outer(post[b], pre[b]))


def test_shape_mistakes_are_refused():
    with pytest.raises(ValueError, match="shape"):
        reward.weight_perturbation_estimate(
            lambda w: w.sum(), torch.zeros(2, 3), torch.zeros(3, 2), 0.1
        )
    with pytest.raises(ValueError, match="trace"):
        reward.eligibility_step(torch.zeros(4, 3), torch.ones(4), torch.ones(3), 0.5)
    with pytest.raises(ValueError, match="decay"):
        reward.eligibility_step(torch.zeros(3, 4), torch.ones(4), torch.ones(3), 1.0)


# ------------------------------------------------------------------ unbiased to first order


@pytest.mark.parametrize("seed", SEEDS)
def test_weight_perturbation_mean_matches_autograd(seed):
    weights = weights_of((3, 4), seed)
    loss_fn, _, _ = tanh_layer_loss(weights, seed)
    samples = reward.weight_perturbation_samples(loss_fn, weights, 1e-3, 2000, seed)
    assert samples.shape == (2000, 3, 4)
    assert z_test_passes(samples.numpy(), autograd_gradient(loss_fn, weights).numpy())


@pytest.mark.parametrize("seed", SEEDS)
def test_node_perturbation_mean_matches_autograd(seed):
    weights = weights_of((3, 4), seed)
    loss_fn, x, t = tanh_layer_loss(weights, seed)

    def output_loss(summed):  # the same loss, as a function of the summed inputs a = x W^T
        return 0.5 * ((torch.tanh(summed) - t) ** 2).sum(1).mean()

    samples = reward.node_perturbation_samples(output_loss, weights, x, 1e-3, 2000, seed)
    assert samples.shape == (2000, 3, 4)
    assert z_test_passes(samples.numpy(), autograd_gradient(loss_fn, weights).numpy())


BIASED = ("wrong sign", "sigma not squared", "two sigma squared", "fresh noise")


@pytest.mark.parametrize("mistake", BIASED)
def test_the_mean_test_rejects_biased_estimators(mistake):
    """A biased mistake moves the mean: the z-test that passes the correct one rejects it.

    sigma = 0.1, so 'sigma not squared' shrinks the estimate 10-fold (with sigma = 1 the
    mistake would be invisible: a checker must not use sigma = 1).
    """
    weights = weights_of((3, 4), 0)
    loss_fn, _, _ = tanh_layer_loss(weights, 0)
    gradient = autograd_gradient(loss_fn, weights).numpy()
    assert z_test_passes(wp_samples_numpy(loss_fn, weights, 0.1, 1000, 1), gradient)
    assert not z_test_passes(wp_samples_numpy(loss_fn, weights, 0.1, 1000, 1, mistake), gradient)


def total_variance(samples: np.ndarray) -> float:
    return float(samples.reshape(len(samples), -1).var(0, ddof=1).sum())


def test_no_baseline_is_unbiased_but_the_variance_test_rejects_it():
    """L(W + xi) xi / sigma^2 has mean grad too (E[xi] = 0), so no mean test can catch it;
    its variance gains L(W)^2 / sigma^2 per weight, far above (P + 1) |grad|^2."""
    weights = weights_of((3, 4), 0)
    loss_fn, _, _ = tanh_layer_loss(weights, 0)
    gradient = autograd_gradient(loss_fn, weights).numpy()
    theory = (gradient.size + 1) * float((gradient**2).sum())
    sigma = 0.01
    correct = wp_samples_numpy(loss_fn, weights, sigma, 2000, 2)
    no_baseline = wp_samples_numpy(loss_fn, weights, sigma, 2000, 2, "no baseline")
    assert z_test_passes(no_baseline, gradient)  # unbiased: the mean test is blind to it
    assert 0.8 < total_variance(correct) / theory < 1.25
    assert total_variance(no_baseline) / theory > 100
    # and the extra variance is the one predicted: P L(W)^2 / sigma^2
    extra = gradient.size * float(loss_fn(weights)) ** 2 / sigma**2
    assert total_variance(no_baseline) == pytest.approx(extra + theory, rel=0.15)


def test_library_bound_has_no_false_rejection_over_1000_seeds_and_rejects_mistakes():
    """`reward.mean_matches` (the bound a checker may use) on exact first-order estimates
    g = (grad . xi) xi / sigma^2 drawn here in numpy: 1000 seeds, no false rejection; the
    sign and scale mistakes rejected at every seed."""
    gradient = np.array([0.3, -1.2, 0.5, 0.0, 2.0, -0.7])
    target = torch.from_numpy(gradient)
    rejected = {"correct": 0, "wrong sign": 0, "sigma not squared": 0}
    for seed in range(1000):
        z = np.random.default_rng(seed).standard_normal((400, gradient.size))  # xi / sigma
        correct = (z @ gradient)[:, None] * z
        for name, samples in (
            ("correct", correct),
            ("wrong sign", -correct),
            ("sigma not squared", 0.1 * correct),  # sigma = 0.1
        ):
            rejected[name] += not reward.mean_matches(torch.from_numpy(samples), target)
    assert rejected == {"correct": 0, "wrong sign": 1000, "sigma not squared": 1000}


def test_library_first_order_variance_is_the_measured_one():
    """(P + 1) |grad|^2 against the variance of 20,000 exact first-order WP estimates."""
    gradient = np.array([0.3, -1.2, 0.5, 0.0, 2.0, -0.7])
    z = np.random.default_rng(5).standard_normal((20000, gradient.size))
    measured = total_variance((z @ gradient)[:, None] * z)
    assert reward.first_order_variance(torch.from_numpy(gradient)) == pytest.approx(
        measured, rel=0.05
    )


def test_library_bound_is_the_bonferroni_z_of_the_standard_error():
    """Samples +-1 around mean m: SE = sqrt(n / (n - 1)) / sqrt(n), so z = m / SE exactly."""
    n, coordinates = 400, 6
    z_bound = stats.norm.isf(FALSE_REJECTION / (2 * coordinates))
    assert reward.bonferroni_z(coordinates, FALSE_REJECTION) == pytest.approx(z_bound)
    signs = np.tile([1.0, -1.0], n // 2)[:, None] * np.ones((1, coordinates))
    standard_error = math.sqrt(n / (n - 1)) / math.sqrt(n)
    for factor, accepted in ((0.99, True), (1.01, False)):
        offset = np.zeros(coordinates)
        offset[3] = factor * z_bound * standard_error
        samples = torch.from_numpy(signs + offset)
        assert reward.mean_matches(samples, torch.zeros(coordinates)) is accepted


# ------------------------------------------------------------------------ variance scaling


def normalised_variance(samples: torch.Tensor, gradient: torch.Tensor) -> float:
    """trace Cov(g) / |grad|^2, the theory's (P + 1) for P perturbed Gaussian directions."""
    return total_variance(samples.numpy()) / float((gradient**2).sum())


def linear_problem(n_post, n_pre, seed):
    """L(W) = |W x - t|^2 / 2 for one example: the quadratic case of Werfel et al. 2005."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, n_pre, generator=generator, dtype=torch.float64)
    t = torch.randn(1, n_post, generator=generator, dtype=torch.float64)
    weights = 0.3 * torch.randn(n_post, n_pre, generator=generator, dtype=torch.float64)
    return weights, x, t


def log_log_slope(sizes, values) -> float:
    return float(np.polyfit(np.log(sizes), np.log(values), 1)[0])


def variance_table(method: str, shapes, n_samples: int = 1500):
    """Normalised variance of WP or NP estimates for each (n_post, n_pre)."""
    table = []
    for n_post, n_pre in np.asarray(shapes).tolist():
        weights, x, t = linear_problem(n_post, n_pre, seed=n_post * 100 + n_pre)
        loss_fn = lambda w, x=x, t=t: 0.5 * ((x @ w.T - t) ** 2).sum()  # noqa: E731
        gradient = autograd_gradient(loss_fn, weights)
        if method == "wp":
            samples = reward.weight_perturbation_samples(loss_fn, weights, 1e-2, n_samples, 5)
        else:
            samples = reward.node_perturbation_samples(
                lambda a, t=t: 0.5 * ((a - t) ** 2).sum(), weights, x, 1e-2, n_samples, 5
            )
        table.append(normalised_variance(samples, gradient))
    return np.array(table)


def test_wp_variance_grows_with_the_number_of_weights_np_with_the_number_of_units():
    """Werfel, Xie & Seung 2005: WP's noise ~ number of weights, NP's ~ number of units.

    More inputs per unit (n_pre = 2 ... 32 at 4 units): WP's variance grows as the 4 n_pre
    weights (slope ~1 against n_pre), NP's stays at its 4 + 1 units (slope 0).
    More units (n_post = 2 ... 32 at 4 inputs): both grow (slope ~1).
    Each point is compared with its first-order theory, P + 1, within 20%.
    """
    inputs = np.array([2, 4, 8, 16, 32])
    wp_inputs = variance_table("wp", [(4, n) for n in inputs])
    np_inputs = variance_table("np", [(4, n) for n in inputs])
    np_units = variance_table("np", [(n, 4) for n in inputs])
    np.testing.assert_allclose(wp_inputs, 4 * inputs + 1, rtol=0.2)
    np.testing.assert_allclose(np_inputs, 4 + 1, rtol=0.2)
    np.testing.assert_allclose(np_units, inputs + 1, rtol=0.2)
    theory_slope = log_log_slope(inputs, 4 * inputs + 1)  # 0.93: the +1 bends it slightly
    assert abs(log_log_slope(inputs, wp_inputs) - theory_slope) < 0.1
    assert abs(log_log_slope(inputs, np_inputs)) < 0.1
    assert abs(log_log_slope(inputs, np_units) - log_log_slope(inputs, inputs + 1)) < 0.1


# ----------------------------------------------------------------------- angle as sigma -> 0


def angle_degrees(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return math.degrees(math.acos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))


def test_angle_to_the_gradient_shrinks_as_sigma_falls_and_samples_grow():
    weights = weights_of((3, 4), 1)
    loss_fn, _, _ = tanh_layer_loss(weights, 1)
    gradient = autograd_gradient(loss_fn, weights).numpy()
    schedule = ((1.0, 50), (0.3, 400), (0.1, 1600), (0.01, 6400))
    angles = [
        angle_degrees(
            reward.weight_perturbation_gradient(loss_fn, weights, s, n, 11).numpy(), gradient
        )
        for s, n in schedule
    ]
    assert all(later < earlier for earlier, later in itertools.pairwise(angles)), angles
    assert angles[-1] < 5.0, angles


# ------------------------------------------------------------------------------ REINFORCE


def test_reinforce_expected_update_is_the_gradient_of_expected_reward_exactly():
    """Bernoulli-logistic units, all 2^3 outcomes enumerated: sum_y p(y) dW(y) equals the
    autograd gradient of E[R] = sum_y p(y) R(y), for every constant baseline."""
    generator = torch.Generator().manual_seed(4)
    weights = torch.randn(3, 2, generator=generator, dtype=torch.float64)
    x = torch.tensor([0.7, -1.3], dtype=torch.float64)
    outcomes = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=torch.float64)
    rewards = 2.0 + torch.randn(8, generator=generator, dtype=torch.float64)  # mean ~2, not 0

    def probabilities(w):
        p = torch.sigmoid(w @ x)
        return (outcomes * p + (1 - outcomes) * (1 - p)).prod(1)

    gradient = autograd_gradient(lambda w: probabilities(w) @ rewards, weights)
    p_y = probabilities(weights)
    for baseline in (0.0, float(p_y @ rewards), -3.0):
        expected_update = sum(
            p_y[k]
            * reward.three_factor_update(
                rewards[k], baseline, reward.bernoulli_eligibility(weights, x, outcomes[k]), 1.0
            )
            for k in range(8)
        )
        np.testing.assert_allclose(expected_update.numpy(), gradient.numpy(), atol=1e-12)


def test_three_factor_update_by_hand_and_the_baseline_lowers_the_exact_variance():
    eligibility = torch.tensor([[1.0, -2.0]])
    update = reward.three_factor_update(3.0, 1.0, eligibility, lr=0.5)
    np.testing.assert_allclose(update.numpy(), [[1.0, -2.0]])  # 0.5 * (3 - 1) * e
    # one Bernoulli unit, both outcomes: same mean with any baseline, less variance at E[R]
    weights, x = (
        torch.tensor([[0.3]], dtype=torch.float64),
        torch.tensor([1.0], dtype=torch.float64),
    )
    p = float(torch.sigmoid(weights @ x))
    probs, rewards = (1 - p, p), (4.0, 6.0)

    def exact_variance(baseline):
        updates = [
            reward.three_factor_update(
                rewards[y],
                baseline,
                reward.bernoulli_eligibility(weights, x, torch.tensor([y])),
                1.0,
            ).item()
            for y in (0, 1)
        ]
        mean = probs[0] * updates[0] + probs[1] * updates[1]
        return probs[0] * (updates[0] - mean) ** 2 + probs[1] * (updates[1] - mean) ** 2

    mean_reward = probs[0] * rewards[0] + probs[1] * rewards[1]
    assert exact_variance(mean_reward) < exact_variance(0.0) / 10


def test_reward_instead_of_rpe_is_biased_only_when_the_eligibility_is_not_centred():
    """Exact expectations: with e = (y - p) x (mean zero) any baseline is unbiased; with
    raw activity y x, using R instead of R - E[R] adds E[R] p x^T, a Hebbian drift; and the
    baseline that does not bias still lowers the variance."""
    weights = torch.tensor([[0.4, -0.2]], dtype=torch.float64)
    x = torch.tensor([1.0, 0.5], dtype=torch.float64)
    p = float(torch.sigmoid(weights @ x))
    rewards = np.array([3.0, 5.0])  # R(y = 0), R(y = 1): mean reward far from 0
    probs = np.array([1 - p, p])
    gradient = (rewards[1] - rewards[0]) * p * (1 - p) * x.numpy()  # d/dW of sum_y p(y) R(y)
    mean_reward = probs @ rewards

    def moments(baseline, centred):
        updates = [
            (rewards[y] - baseline) * ((y - p) if centred else y) * x.numpy() for y in (0, 1)
        ]
        mean = sum(probs[y] * updates[y] for y in (0, 1))
        return mean, sum(probs[y] * (updates[y] - mean) ** 2 for y in (0, 1)).sum()

    np.testing.assert_allclose(moments(0.0, centred=True)[0], gradient)
    np.testing.assert_allclose(moments(mean_reward, centred=False)[0], gradient)
    biased, _ = moments(0.0, centred=False)
    np.testing.assert_allclose(biased - gradient, mean_reward * p * x.numpy())
    assert moments(mean_reward, True)[1] < moments(0.0, True)[1] / 10
    # the library's Bernoulli eligibility is the centred one
    for y in (0.0, 1.0):
        e = reward.bernoulli_eligibility(weights, x, torch.tensor([y], dtype=torch.float64))
        np.testing.assert_allclose(e.numpy()[0], (y - p) * x.numpy())


def test_reinforce_gaussian_mean_update_matches_the_analytic_gradient():
    """R(y) = -|y - t|^2 with y = W x + xi: E[R] = -|W x - t|^2 - M sigma^2, so
    dE[R]/dW = -2 (W x - t) x^T; the mean REINFORCE update (baseline = the running
    average) matches it by the z-test, and the arguments are never changed."""
    generator = torch.Generator().manual_seed(9)
    weights = torch.randn(2, 3, generator=generator, dtype=torch.float64)
    x = torch.randn(3, generator=generator, dtype=torch.float64)
    t = torch.randn(2, generator=generator, dtype=torch.float64)
    analytic = -2 * np.outer((weights @ x - t).numpy(), x.numpy())
    sigma, baseline = 0.5, torch.tensor(0.0, dtype=torch.float64)
    before = (weights.clone(), x.clone())
    steps = torch.Generator().manual_seed(10)
    updates = []
    for _ in range(3000):
        new_weights, baseline, _ = reward.reinforce_gaussian_step(
            weights, x, lambda y: -((y - t) ** 2).sum(), baseline, sigma, 1.0, 0.05, steps
        )
        updates.append((new_weights - weights).numpy())
    assert torch.equal(weights, before[0]) and torch.equal(x, before[1])
    assert z_test_passes(np.array(updates[100:]), analytic)  # after the baseline warmed up
    expected_reward = -float(((weights @ x - t) ** 2).sum()) - 2 * sigma**2
    assert baseline.item() == pytest.approx(expected_reward, abs=1.0)


# ------------------------------------------------------- node perturbation in an MLP


def test_mlp_node_perturbation_mean_matches_autograd_in_every_layer():
    """Every unit of both layers jiggled at once, one scalar loss per example: the mean of
    2000 estimates matches autograd's gradient of the batch-mean loss, layer by layer."""
    generator = torch.Generator().manual_seed(12)
    w1 = 0.7 * torch.randn(4, 3, generator=generator, dtype=torch.float64)
    w2 = 0.7 * torch.randn(2, 4, generator=generator, dtype=torch.float64)
    x = torch.randn(5, 3, generator=generator, dtype=torch.float64)
    t = torch.randn(5, 2, generator=generator, dtype=torch.float64)

    def loss(w1, w2):
        return 0.5 * ((torch.tanh(x @ w1.T) @ w2.T - t) ** 2).sum(1).mean()

    leaves = [w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)]
    exact = torch.autograd.grad(loss(*leaves), leaves)
    noise = torch.Generator().manual_seed(13)
    samples = [
        reward.node_perturbation_mlp_gradients([w1, w2], x, t, 1e-3, noise) for _ in range(2000)
    ]
    for layer in range(2):
        layer_samples = np.stack([s[layer].numpy() for s in samples])
        assert z_test_passes(layer_samples, exact[layer].numpy())
    backprop = reward.backprop_mlp_gradients([w1, w2], x, t)
    for layer in range(2):
        np.testing.assert_allclose(backprop[layer].numpy(), exact[layer].numpy(), rtol=1e-10)


def test_teacher_regression_both_rules_learn_from_the_same_start():
    bp = reward.train_teacher_regression("bp", n_updates=300, lr=0.2, seed=3)
    np_ = reward.train_teacher_regression("np", n_updates=300, lr=0.1, seed=3)
    assert bp[0] == np_[0]  # same initial weights and first batch
    for losses in (bp, np_):
        assert losses[-50:].mean() < 0.3 * losses[:10].mean()
    with pytest.raises(ValueError, match="rule"):
        reward.train_teacher_regression("fa")


def test_no_function_changes_its_arguments():
    generator = torch.Generator().manual_seed(21)
    pre, noise = torch.randn(4, 3, generator=generator), torch.randn(4, 2, generator=generator)
    losses, clean = torch.randn(4, generator=generator), torch.randn(4, generator=generator)
    weights = [torch.randn(2, 3, generator=generator), torch.randn(1, 2, generator=generator)]
    target = torch.randn(4, 1, generator=generator)
    arguments = [pre, noise, losses, clean, *weights, target]
    before = [a.clone() for a in arguments]
    reward.node_perturbation_update(pre, noise, losses, clean, 0.1, 0.5)
    reward.three_factor_update(losses[0], clean[0], weights[0], 0.5)
    reward.node_perturbation_mlp_gradients(weights, pre, target, 0.1, 0)
    reward.node_perturbation_samples(lambda a: a.sum(), weights[0], pre, 0.1, 3, 0)
    reward.bernoulli_eligibility(weights[0], pre, torch.ones(4, 2))
    reward.gaussian_eligibility(weights[0], pre, noise, 0.1)
    for argument, copy in zip(arguments, before, strict=True):
        assert torch.equal(argument, copy)

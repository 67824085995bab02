"""The assignment-11 checkers: the library's reference and correct variants pass at several
seeds; each plausible mistake is rejected with its own id and message, in the student's
terms; the statistical check never rejects a correct estimator (1,000 seeds) and always
rejects a biased one."""

from __future__ import annotations

import functools

import catalogue
import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, solution_answers

from course_lib.checks.learning_from_reward import (
    NP_BATCH,
    NP_BATCHES,
    WP_SAMPLES,
    bias_verdict,
    check_eligibility_step,
    check_node_perturbation_update,
    check_np_unbiased,
    check_update_baseline,
    check_weight_perturbation_estimate,
    check_wp_unbiased,
    np_bias_problem,
    wp_bias_problem,
)
from course_lib.learning_rules.reward import (
    eligibility_step,
    node_perturbation_update,
    update_baseline,
    weight_perturbation_estimate,
)

SEEDS = (0, 1, 1111, 2005)


# Wrong answers here are often built on the reference, which a submission may not call.
rejects = functools.partial(catalogue.rejects, allow_reference=True)


def test_the_reference_itself_is_refused():
    with pytest.raises(AssertionError, match="uses the course's reference") as excinfo:
        check_update_baseline(update_baseline)
    assert excinfo.value.mistake == "learning_from_reward.uses_reference"
    wrapped = lambda *args: weight_perturbation_estimate(*args)  # noqa: E731
    with pytest.raises(AssertionError, match="uses the course's reference"):
        check_weight_perturbation_estimate(wrapped)


# ------------------------------------------------------------ part 1: weight perturbation


def wp_two_lines(loss_fn, weights, noise, sigma):
    loss_change = loss_fn(weights + noise) - loss_fn(weights)
    return loss_change * noise / sigma**2


def wp_floats(loss_fn, weights, noise, sigma):
    perturbed = float(loss_fn(weights + noise))
    clean = float(loss_fn(weights))
    return (perturbed - clean) / sigma**2 * noise


def wp_clone_then_add(loss_fn, weights, noise, sigma):
    trial = weights.clone()
    trial += noise  # in place, but on a copy: allowed
    return (loss_fn(trial) - loss_fn(weights)) * noise / sigma / sigma


@pytest.mark.parametrize("correct", [weight_perturbation_estimate, wp_two_lines, wp_floats,
                                     wp_clone_then_add])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_wp_estimates_pass(correct, seed):
    check_weight_perturbation_estimate(correct, seed=seed, allow_reference=True)


def wp_rule(perturb=lambda w, xi, s: w + xi, clean=lambda f, w, xi, s: f(w),
            factor=lambda w, xi, s: xi, divide=lambda xi, s: s**2, sign=1.0):
    """A student's (f(perturb) - clean) * factor / divide, with one piece changed."""

    def wrong(loss_fn, weights, noise, sigma):
        change = loss_fn(perturb(weights, noise, sigma)) - clean(loss_fn, weights, noise, sigma)
        return sign * change * factor(weights, noise, sigma) / divide(noise, sigma)

    return wrong


def wp_left_behind(loss_fn, weights, noise, sigma):
    clean = loss_fn(weights.clone())
    weights += noise
    return (loss_fn(weights) - clean) * noise / sigma**2


def wp_perturb_then_clean(loss_fn, weights, noise, sigma):
    """Perturbs in place first, so the 'clean' loss is the perturbed one: the estimate is 0."""
    weights += noise
    perturbed = loss_fn(weights)
    return (perturbed - loss_fn(weights)) * noise / sigma**2


def wp_undone_in_place(loss_fn, weights, noise, sigma):
    weights += noise
    perturbed = loss_fn(weights)
    weights -= noise  # rounding: not exactly the caller's weights again
    return (perturbed - loss_fn(weights)) * noise / sigma**2


def wp_scales_noise_in_place(loss_fn, weights, noise, sigma):
    change = loss_fn(weights + noise) - loss_fn(weights)
    noise /= sigma**2
    return change * noise


def wp_global_noise(loss_fn, weights, noise, sigma):
    fresh = torch.randn(weights.shape) * sigma
    return (loss_fn(weights + fresh) - loss_fn(weights)) * fresh / sigma**2


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (wp_rule(clean=lambda f, w, xi, s: 0.0), "learning_from_reward.wp_no_baseline",
         "the clean loss L\\(W\\) is not subtracted"),
        (wp_rule(sign=-1.0), "learning_from_reward.wp_sign_flipped", "the sign is flipped"),
        (wp_rule(divide=lambda xi, s: s), "learning_from_reward.wp_sigma_not_squared",
         "divide by sigma\\^2, the VARIANCE of the noise, not by sigma"),
        (wp_rule(divide=lambda xi, s: 1.0), "learning_from_reward.wp_no_sigma",
         "the division by sigma\\^2 is missing"),
        (wp_rule(perturb=lambda w, xi, s: w + s * xi), "learning_from_reward.wp_noise_rescaled",
         "`noise` is already xi ~ N\\(0, sigma\\^2 I\\)"),
        (wp_rule(perturb=lambda w, xi, s: w + s * xi, factor=lambda w, xi, s: s * xi),
         "learning_from_reward.wp_noise_rescaled", "not sigma \\* noise"),
        (wp_rule(perturb=lambda w, xi, s: w - xi),
         "learning_from_reward.wp_opposite_perturbation", "not L\\(W - xi\\)"),
        (wp_rule(clean=lambda f, w, xi, s: f(w - xi), divide=lambda xi, s: 2 * s**2),
         "learning_from_reward.wp_central_difference", "this is the two-sided estimate"),
        (wp_rule(factor=lambda w, xi, s: w), "learning_from_reward.wp_weights_not_noise",
         "must multiply the perturbation xi \\(`noise`\\), not the weights"),
        (wp_rule(divide=lambda xi, s: xi.var()), "learning_from_reward.wp_sample_variance",
         "not by the sample variance"),
        (wp_rule(divide=lambda xi, s: (xi**2).mean()), "learning_from_reward.wp_sample_variance",
         "not by the mean square"),
        (wp_rule(divide=lambda xi, s: s**2 * xi.numel()), "learning_from_reward.wp_scaled",
         "times \\(L\\(W \\+ xi\\) - L\\(W\\)\\) xi / sigma\\^2: look for a wrong normal"),
        (wp_rule(factor=lambda w, xi, s: xi + 1e-3), "learning_from_reward.wp_wrong_value",
         "differs from \\(L\\(W \\+ xi\\) - L\\(W\\)\\) xi / sigma\\^2"),
        (lambda *args: weight_perturbation_estimate(*args).clamp(-2, 2),
         "learning_from_reward.wp_clipped", "clipped to \\[-2, .*the formula has no limit"),
        (wp_left_behind, "learning_from_reward.wp_perturbation_left_behind",
         "left the perturbation in the caller's weights"),
        (wp_perturb_then_clean, "learning_from_reward.wp_perturbation_left_behind",
         "left the perturbation in the caller's weights"),
        (wp_undone_in_place, "learning_from_reward.wp_perturbation_undone_in_place",
         "took the noise off again: rounding leaves them changed"),
        (wp_scales_noise_in_place, "common.in_place", "changed its argument noise in place"),
        (wp_global_noise, "common.global_rng", "used or reseeded a global random generator"),
        (lambda *args: weight_perturbation_estimate(*args).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *args: weight_perturbation_estimate(*args).reshape(-1),
         "learning_from_reward.wp_shape", "the estimate has the shape of the weights"),
        (lambda *args: weight_perturbation_estimate(*args).T,
         "learning_from_reward.wp_transposed", "the estimate is transposed"),
        (lambda f, w, xi, s: weight_perturbation_estimate(f, w, xi, s).T
         if w.dim() == 2 and w.shape[0] != w.shape[1]
         else weight_perturbation_estimate(f, w, xi, s),
         "learning_from_reward.wp_transposed", "the transpose of"),
        (lambda *args: weight_perturbation_estimate(*args).numpy(), "common.wrong_type",
         "must return a torch.Tensor"),
        (lambda *args: weight_perturbation_estimate(*args).as_subclass(AlwaysEqual),
         "common.tensor_subclass", "plain torch.Tensor"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_wp_mistakes_rejected(wrong, mistake, message):
    rejects(check_weight_perturbation_estimate, wrong, mistake, message)


def test_an_in_place_perturbation_of_the_weights_is_not_a_generic_in_place_failure():
    """The specific message names what an in-place W += xi leaves behind; a change of the
    weights that is neither still gets the generic one."""

    def zeroes_weights(loss_fn, weights, noise, sigma):
        result = weight_perturbation_estimate(loss_fn, weights.clone(), noise, sigma)
        weights.zero_()
        return result

    rejects(check_weight_perturbation_estimate, zeroes_weights, "common.in_place",
            "changed its argument weights in place")


# ------------------------------------------------------------ part 1b: the statistical check


def _batched_estimates(loss_fn, weights, noises, sigma):
    """Every draw's (L(W + xi) - L(W)) xi / sigma^2 at once, written here from the loss's
    definition (a linear layer, squared error), not from the checker's code."""
    inputs, targets = loss_fn.inputs, loss_fn.targets

    def loss(w):  # w: (..., n_out, n_in)
        out = torch.einsum("bi,...oi->...bo", inputs, w)
        return 0.5 * ((out - targets) ** 2).sum(-1).mean(-1)

    return (loss(weights + noises) - loss(weights))[:, None, None] * noises / sigma**2


def test_the_statistical_problem_is_what_the_checker_hands_the_student():
    loss_fn, weights, noises, sigma, gradient = wp_bias_problem(3)
    assert noises.shape == (WP_SAMPLES, *weights.shape)
    leaf = weights.clone().requires_grad_(True)
    out = loss_fn.inputs @ leaf.T
    (0.5 * ((out - loss_fn.targets) ** 2).sum(-1).mean()).backward()
    torch.testing.assert_close(gradient, leaf.grad)
    one_by_one = torch.stack([weight_perturbation_estimate(loss_fn, weights, n, sigma)
                              for n in noises[:50]])
    torch.testing.assert_close(_batched_estimates(loss_fn, weights, noises[:50], sigma),
                               one_by_one)


def test_a_correct_estimator_is_never_rejected_and_a_biased_one_always():
    """1,000 seeds of the statistical check's problem, the estimates of a correct
    estimator computed at once: false rejections 0; wrong sign and sigma instead of
    sigma^2 rejected at every seed. Without the baseline the estimator is still unbiased
    (E[L(W) xi] = 0), so the statistical check passes it: the exact check names it."""
    rejected = {"correct": 0, "sign": 0, "sigma": 0, "no baseline": 0}
    for seed in range(1000):
        loss_fn, weights, noises, sigma, gradient = wp_bias_problem(seed)
        estimates = _batched_estimates(loss_fn, weights, noises, sigma)
        without_baseline = estimates + loss_fn(weights) * noises / sigma**2
        for name, candidate in (("correct", estimates), ("sign", -estimates),
                                ("sigma", estimates * sigma),
                                ("no baseline", without_baseline)):
            rejected[name] += bias_verdict(candidate, gradient) is not None
    assert rejected == {"correct": 0, "sign": 1000, "sigma": 1000, "no baseline": 0}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_statistical_check_passes_the_reference(seed):
    check_wp_unbiased(weight_perturbation_estimate, seed=seed, allow_reference=True)


def test_the_statistical_check_names_a_biased_estimator():
    def half(loss_fn, weights, noise, sigma):
        return 0.5 * weight_perturbation_estimate(loss_fn, weights, noise, sigma)

    rejects(check_wp_unbiased, half, "learning_from_reward.wp_biased",
            "is biased: averaged over 1000 draws of the noise, entry")


# ------------------------------------------------------------ part 2: node perturbation


def np_einsum(pre, noise, loss_perturbed, loss_clean, sigma, lr):
    change = loss_perturbed - loss_clean
    return -lr * torch.einsum("b,bi,bj->ij", change, noise, pre) / sigma**2


def np_loop(pre, noise, loss_perturbed, loss_clean, sigma, lr):
    update = torch.zeros(noise.shape[1], pre.shape[1], dtype=pre.dtype)
    for b in range(pre.shape[0]):
        change = loss_perturbed[b] - loss_clean[b]
        update = update - lr * change * torch.outer(noise[b], pre[b]) / sigma**2
    return update


@pytest.mark.parametrize("correct", [node_perturbation_update, np_einsum, np_loop])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_np_updates_pass(correct, seed):
    check_node_perturbation_update(correct, seed=seed, allow_reference=True)


def np_rule(loss=lambda p, c: p - c, post=lambda xi, x: xi, presyn=lambda xi, x: x,
            scale=lambda s, lr: -lr / s**2, batch="sum"):
    """A student's scale * sum_b loss_b post_b presyn_b^T, with one piece changed."""

    def wrong(pre, noise, loss_perturbed, loss_clean, sigma, lr):
        change = loss(loss_perturbed, loss_clean)
        a, b = post(noise, pre), presyn(noise, pre)
        if batch == "unpaired":
            total = change.sum() * a.T @ b
        else:
            total = (change[:, None] * a).T @ b
        if batch == "mean":
            total = total / pre.shape[0]
        return scale(sigma, lr) * total

    return wrong


def np_transposed_when_square(pre, noise, *rest):
    if pre.shape[1] != noise.shape[1]:
        return node_perturbation_update(pre, noise, *rest)
    return np_rule(post=lambda xi, x: x, presyn=lambda xi, x: xi)(pre, noise, *rest)


def np_in_place(pre, noise, loss_perturbed, loss_clean, sigma, lr):
    noise *= (loss_perturbed - loss_clean)[:, None]
    return -lr * noise.T @ pre / sigma**2


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (np_rule(loss=lambda p, c: p), "learning_from_reward.np_no_baseline",
         "uses the perturbed loss L_xi itself"),
        (np_rule(scale=lambda s, lr: lr / s**2), "learning_from_reward.np_sign_flipped",
         "the sign is flipped"),
        (np_rule(scale=lambda s, lr: 1 / s**2), "learning_from_reward.np_gradient_not_update",
         "this is the gradient estimate"),
        (np_rule(scale=lambda s, lr: -1 / s**2), "learning_from_reward.np_lr_missing",
         "the learning rate is missing"),
        (np_rule(scale=lambda s, lr: -lr / s), "learning_from_reward.np_sigma_not_squared",
         "divide by sigma\\^2, the VARIANCE"),
        (np_rule(scale=lambda s, lr: -lr), "learning_from_reward.np_no_sigma",
         "the division by sigma\\^2 is missing"),
        (np_rule(post=lambda xi, x: x, presyn=lambda xi, x: xi),
         "learning_from_reward.np_transposed", "the outer product is transposed"),
        (np_transposed_when_square, "learning_from_reward.np_transposed",
         "belongs to the POST-synaptic unit i"),
        (lambda *args: node_perturbation_update(*args).T, "learning_from_reward.np_transposed",
         "the outer product is transposed"),
        (lambda pre, noise, *rest: node_perturbation_update(pre, noise, *rest).T
         if pre.shape[1] != noise.shape[1] else node_perturbation_update(pre, noise, *rest),
         "learning_from_reward.np_transposed", "the transpose of"),
        (np_rule(presyn=lambda xi, x: torch.ones_like(x)), "learning_from_reward.np_pre_missing",
         "the pre-synaptic activity is missing"),
        (np_rule(batch="mean"), "learning_from_reward.np_batch_mean",
         "sum over the batch, do not average"),
        (np_rule(batch="unpaired"), "learning_from_reward.np_losses_not_paired",
         "that example's own xi_b x_b\\^T"),
        (np_rule(loss=lambda p, c: (p - c).mean().expand(p.shape), batch="sum"),
         "learning_from_reward.np_losses_not_paired", "not \\(mean_b"),
        (np_rule(scale=lambda s, lr: -lr / s**2 / 3), "learning_from_reward.np_scaled",
         "look for a wrong normalisation"),
        (lambda *args: node_perturbation_update(*args) + 1e-3,
         "learning_from_reward.np_wrong_value", "differs from -lr sum_b"),
        (np_in_place, "common.in_place", "changed its argument noise in place"),
        (lambda *args: node_perturbation_update(*args).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda pre, noise, *rest: noise[:, :, None] * pre[:, None, :],
         "learning_from_reward.np_shape", "the update has the shape of the weights"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_np_mistakes_rejected(wrong, mistake, message):
    rejects(check_node_perturbation_update, wrong, mistake, message)


# ------------------------------------------------------------ part 2b: the statistical check


def _batched_np_estimates(pre, noises, loss_perturbed, loss_clean, sigma):
    """Each call's gradient estimate, (1 / batch) sum_b (L_xi - L_0)_b xi_b x_b^T / sigma^2,
    for every call at once, written here from the rule's definition."""
    change = loss_perturbed - loss_clean
    return torch.einsum("kb,kbi,kbj->kij", change, noises, pre) / (sigma**2 * NP_BATCH)


def test_the_np_statistical_problem_is_what_the_checker_hands_the_student():
    """The losses and the gradient agree: with dL/dW = (dL/da) x^T, every loss change is
    (dL/da) . xi + ||xi||^2 / 2 exactly (the loss is 1/2 ||a - y||^2)."""
    pre, noises, perturbed, clean, sigma, lr, gradient = np_bias_problem(3)
    assert noises.shape[:2] == pre.shape[:2] == (NP_BATCHES, NP_BATCH)
    x = pre[0, 0]
    assert torch.equal(pre, x.expand_as(pre)), "one input, the same in every draw"
    d_loss_d_drive = gradient @ x / (x @ x)
    torch.testing.assert_close(gradient, torch.outer(d_loss_d_drive, x))
    torch.testing.assert_close(perturbed - clean,
                               noises @ d_loss_d_drive + 0.5 * (noises**2).sum(-1))
    by_reference = torch.stack([-node_perturbation_update(pre[k], noises[k], perturbed[k],
                                                          clean[k], sigma, lr) / (lr * NP_BATCH)
                                for k in range(5)])
    torch.testing.assert_close(_batched_np_estimates(pre[:5], noises[:5], perturbed[:5],
                                                     clean[:5], sigma), by_reference)


def test_a_correct_np_update_is_never_rejected_and_a_biased_one_always():
    """1,000 seeds of the node-perturbation problem: false rejections 0; wrong sign and
    sigma instead of sigma^2 rejected at every seed."""
    rejected = {"correct": 0, "sign": 0, "sigma": 0}
    for seed in range(1000):
        pre, noises, perturbed, clean, sigma, lr, gradient = np_bias_problem(seed)
        estimates = _batched_np_estimates(pre, noises, perturbed, clean, sigma)
        for name, candidate in (("correct", estimates), ("sign", -estimates),
                                ("sigma", estimates * sigma)):
            rejected[name] += bias_verdict(candidate, gradient) is not None
    assert rejected == {"correct": 0, "sign": 1000, "sigma": 1000}


@pytest.mark.parametrize("seed", SEEDS)
def test_the_np_statistical_check_passes_the_reference(seed):
    check_np_unbiased(node_perturbation_update, seed=seed, allow_reference=True)


def test_the_np_statistical_check_names_a_biased_update():
    def double(*args):
        return 2 * node_perturbation_update(*args)

    rejects(check_np_unbiased, double, "learning_from_reward.np_biased",
            "is biased: averaged over 50 calls on 20 draws of the noise each")


# ------------------------------------------------------------ part 3: the running baseline


def baseline_two_terms(baseline, reward, rate):
    return (1 - rate) * baseline + rate * reward


def baseline_lerp(baseline, reward, rate):
    return torch.lerp(baseline, torch.as_tensor(reward, dtype=baseline.dtype), rate)


@pytest.mark.parametrize("correct", [update_baseline, baseline_two_terms, baseline_lerp])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_baselines_pass(correct, seed):
    check_update_baseline(correct, seed=seed, allow_reference=True)


def baseline_in_place(baseline, reward, rate):
    baseline += rate * (reward - baseline)
    return baseline


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (lambda b, r, rate: b + (1 - rate) * (r - b),
         "learning_from_reward.baseline_rate_wrong_way", "the rate is applied the wrong way round"),
        (lambda b, r, rate: rate * b + (1 - rate) * r,
         "learning_from_reward.baseline_rate_wrong_way", "a small rate means a long memory"),
        (lambda b, r, rate: b + rate * r, "learning_from_reward.baseline_reward_not_rpe",
         "the reward prediction error"),
        (lambda b, r, rate: b - rate * (r - b), "learning_from_reward.baseline_sign_flipped",
         "the sign is flipped"),
        (lambda b, r, rate: r - b, "learning_from_reward.baseline_returns_rpe",
         "this is the reward prediction error R - R_bar"),
        (lambda b, r, rate: rate * (r - b), "learning_from_reward.baseline_returns_change",
         "add it to the old baseline"),
        (lambda b, r, rate: b.clone(), "learning_from_reward.baseline_not_updated",
         "the baseline did not change"),
        (lambda b, r, rate: b * 0 + r, "learning_from_reward.baseline_is_reward",
         "this is the reward itself"),
        (lambda b, r, rate: (1 - rate) * b + r, "learning_from_reward.baseline_new_not_scaled",
         "the new reward must enter with the rate"),
        (lambda b, r, rate: b + rate * (r - b) + 0.01, "learning_from_reward.baseline_wrong_value",
         "differs from R_bar \\+ rate \\(R - R_bar\\)"),
        (baseline_in_place, "common.in_place", "changed its argument baseline in place"),
        (lambda b, r, rate: float(b + rate * (r - b)) if b.dim() == 0 else b + rate * (r - b),
         "common.wrong_type", "must return a torch.Tensor"),
        (lambda b, r, rate: (b + rate * (r - b)).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda b, r, rate: (b + rate * (r - b)).reshape(1, -1),
         "learning_from_reward.baseline_shape", "the new baseline has the shape of the old one"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_baseline_mistakes_rejected(wrong, mistake, message):
    rejects(check_update_baseline, wrong, mistake, message)


# ------------------------------------------------------------ part 4: the eligibility trace


def trace_einsum(trace, pre, post_fluctuation, decay):
    return decay * trace + (1 - decay) * torch.einsum("i,j->ij", post_fluctuation, pre)


def trace_loops(trace, pre, post_fluctuation, decay):
    new = trace.clone()
    for i in range(trace.shape[0]):
        for j in range(trace.shape[1]):
            new[i, j] = decay * trace[i, j] + (1 - decay) * post_fluctuation[i] * pre[j]
    return new


@pytest.mark.parametrize("correct", [eligibility_step, trace_einsum, trace_loops])
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_traces_pass(correct, seed):
    check_eligibility_step(correct, seed=seed, allow_reference=True)


def trace_rule(keep, gain, transpose=False):
    """A student's keep(decay) * e + gain(decay) * outer(post, pre)."""

    def wrong(trace, pre, post_fluctuation, decay):
        outer = torch.outer(pre, post_fluctuation) if transpose else torch.outer(
            post_fluctuation, pre)
        return keep(decay) * trace + gain(decay) * outer

    return wrong


def same(decay):
    return decay


def complement(decay):
    return 1 - decay


def trace_transposed_when_square(trace, pre, post_fluctuation, decay):
    if trace.shape[0] != trace.shape[1]:
        return eligibility_step(trace, pre, post_fluctuation, decay)
    return trace_rule(same, complement, transpose=True)(trace, pre, post_fluctuation, decay)


def trace_in_place(trace, pre, post_fluctuation, decay):
    trace.mul_(decay)
    return trace.add_((1 - decay) * torch.outer(post_fluctuation, pre))


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (trace_rule(lambda d: 1.0, complement), "learning_from_reward.trace_not_decayed",
         "the trace does not decay"),
        (trace_rule(lambda d: 0.0, complement), "learning_from_reward.trace_old_dropped",
         "the old trace is dropped"),
        (trace_rule(same, lambda d: 1.0), "learning_from_reward.trace_new_term_not_scaled",
         "the new term must be scaled by \\(1 - decay\\)"),
        (trace_rule(complement, same), "learning_from_reward.trace_factors_swapped",
         "the factors are swapped"),
        (trace_rule(same, lambda d: d - 1), "learning_from_reward.trace_new_term_sign",
         "the sign of the new term is flipped"),
        (trace_rule(same, complement, transpose=True),
         "learning_from_reward.trace_outer_transposed", "the outer product is transposed"),
        (trace_transposed_when_square, "learning_from_reward.trace_outer_transposed",
         "POST-synaptic fluctuation dpost_i"),
        (trace_rule(same, lambda d: (1 - d) / 2), "learning_from_reward.trace_wrong_value",
         "differs from decay e \\+ \\(1 - decay\\) dpost_i pre_j"),
        (lambda *args: eligibility_step(*args).clamp(-3, 3), "learning_from_reward.trace_clipped",
         "clipped to \\[-3, 3\\]"),
        (trace_in_place, "common.in_place", "changed its argument trace in place"),
        (lambda t, pre, post, d: d * t + (1 - d) * post * pre if t.shape[0] == t.shape[1]
         else eligibility_step(t, pre, post, d), "learning_from_reward.trace_wrong_value",
         "differs from"),
        (lambda *args: eligibility_step(*args).T,
         "learning_from_reward.trace_transposed", "the new trace is transposed"),
        (lambda t, *rest: eligibility_step(t, *rest).T if t.shape[0] != t.shape[1]
         else eligibility_step(t, *rest), "learning_from_reward.trace_transposed",
         "the transpose of"),
        (lambda *args: eligibility_step(*args).double(), "common.wrong_dtype",
         "keep the dtype of the inputs"),
        (lambda *args: eligibility_step(*args).reshape(-1), "learning_from_reward.trace_shape",
         "the new term is the outer product dpost_i pre_j"),
        (not_implemented, "common.not_implemented", "not implemented yet"),
    ],
)
def test_trace_mistakes_rejected(wrong, mistake, message):
    rejects(check_eligibility_step, wrong, mistake, message)


def test_every_named_mistake_has_a_distinct_message():
    """No two mistake ids of one table share a message (each is named in its own terms)."""
    from course_lib.checks import learning_from_reward as checks

    tables = [
        checks._wp_mistakes(*next(checks._wp_cases(checks._generator(0)))),
        checks._np_mistakes(*next(checks._np_cases(checks._generator(0)))),
        checks._baseline_mistakes(*next(checks._baseline_cases(checks._generator(0)))),
        checks._trace_mistakes(*next(checks._trace_cases(checks._generator(0)))),
    ]
    for table in tables:
        by_id = {}
        for mistake, message, _ in table:
            by_id.setdefault(mistake, set()).add(message)
        messages = [m for ms in by_id.values() for m in ms]
        assert len(messages) == len(set(messages))


def test_the_solution_notebooks_answers_pass():
    """The functions of the source notebook's answer cells pass every checker at every
    seed (the nbgrader round trip, tests/test_nbgrader_pipeline.py, is slower)."""
    namespace = solution_answers("11_learning_from_reward")
    checks = {"weight_perturbation_estimate": check_weight_perturbation_estimate,
              "node_perturbation_update": check_node_perturbation_update,
              "update_baseline": check_update_baseline,
              "eligibility_step": check_eligibility_step}
    for name, check in checks.items():
        for seed in SEEDS:
            check(namespace[name], seed=seed)

"""Checkers for assignment 11_learning_from_reward.

The references are `course_lib.learning_rules.reward`: four pieces of learning from a
single number (a loss to minimise, or a reward to maximise)::

    weight perturbation   g     = (L(W + xi) - L(W)) xi / sigma^2        xi ~ N(0, sigma^2 I)
    node perturbation     dW_ij = -lr sum_b (L_xi - L_0)_b xi_bi x_bj / sigma^2
    running baseline      R_bar <- R_bar + rate (R - R_bar)            (R - R_bar: the RPE)
    eligibility trace     e_ij  <- decay e_ij + (1 - decay) dpost_i pre_j

Each check runs seeded cases in float32 (the course's dtype) and one in float64, of several
shapes (square matrices first, so that a transposed outer product is named by its values),
and the example printed in the test cell. It computes the expected value itself, in
float64, with private references to torch taken at import (an answer cell that patches
torch changes neither the cases nor the expected values). When an answer is wrong it names
the mistake from a table of plausible ones, or else says by what factor the answer is off,
where it is clipped, or which entry differs most. Every failure has a stable id
``learning_from_reward.<mistake>``.

The perturbation checks end with a statistical one (`check_wp_unbiased`,
`check_np_unbiased`): the student's estimates, averaged over many seeded draws of the
noise, must match autograd's gradient within a bound (Z standard errors) computed from
their own sample variance. The losses are quadratic (in the weights, or in the units'
summed inputs), for which the estimators are exactly unbiased (the odd moments of Gaussian
noise vanish), and the bound is wide enough that a correct estimator passes on every one
of 1,000 seeds (tests/test_checks_learning_from_reward.py), while one with the wrong sign
or the wrong sigma scaling fails on every one of them. An estimator without the baseline
is still unbiased (E[L xi] = 0), only noisier: the exact checks name that mistake.
"""

from __future__ import annotations

import torch

from course_lib.checks._common import (
    CheckFailure,
    call,
    close,
    fail,
    judge,
    own_work,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.learning_rules import reward as _reward

# Private references (see `_common`).
_randn = torch.randn
_rand = torch.rand
_zeros = torch.zeros
_ones = torch.ones
_stack = torch.stack
_as_tensor = torch.tensor
_isfinite = torch.isfinite
_equal = torch.equal
_tanh = torch.tanh
_grad = torch.autograd.grad
_unravel_index = torch.unravel_index
_Tensor = torch.Tensor
_float32 = torch.float32
_float64 = torch.float64
_type = type
_isinstance = isinstance

TOL = 1e-5  # absolute and relative: a correct float32 computation is well inside it
ASSIGNMENT = "learning_from_reward"

_REFERENCES = (_reward.weight_perturbation_estimate, _reward.node_perturbation_update,
               _reward.update_baseline, _reward.eligibility_step)
_own_work = own_work(ASSIGNMENT, _REFERENCES)


def _f64(*tensors: torch.Tensor) -> list[torch.Tensor]:
    return [t.to(_float64) for t in tensors]


def _outer(post: torch.Tensor, pre: torch.Tensor) -> torch.Tensor:
    """post_i pre_j: (n_post, n_pre)."""
    return post[:, None] * pre[None, :]


def _result(value, what: str, expected: torch.Tensor, dtype: torch.dtype, name: str,
            shape_hint: str) -> torch.Tensor:
    """The student's tensor (exact type, private copy), checked for shape, dtype and finiteness."""
    out = tensor(value, what, finite=False)
    if tuple(out.shape) != tuple(expected.shape):
        if out.dim() == 2 and tuple(out.shape) == tuple(expected.shape)[::-1]:
            fail(f"{ASSIGNMENT}.{name}_transposed",
                 f"{what} has shape {tuple(out.shape)}, the transpose of "
                 f"{tuple(expected.shape)}: {shape_hint}.")
        fail(f"{ASSIGNMENT}.{name}_shape",
             f"{what} has shape {tuple(out.shape)}; it should be {tuple(expected.shape)}: "
             f"{shape_hint}.")
    if out.dtype != dtype:
        fail("common.wrong_dtype",
             f"{what} has dtype {out.dtype} for {dtype} inputs: keep the dtype of the inputs "
             "(do not convert with .float() or .double(), and do not build a new tensor "
             "with torch.tensor(...) from the numbers).")
    if not bool(_isfinite(out).all()):
        fail("common.not_finite", f"{what} contains NaN or inf although every input is finite.")
    return out


def _judge(out, expected, what: str, mistakes, case: tuple, name: str, formula: str) -> None:
    """`judge` with this assignment's ids and tolerance."""
    judge(out, expected, what, mistakes, case, name, formula, assignment=ASSIGNMENT, tol=TOL)


def _sigma(generator, low: float, high: float) -> float:
    """A noise scale in [low, high), rounded: never 1 (sigma and sigma^2 must differ)."""
    return round(low + float(_rand(1, generator=generator)) * (high - low), 3)


# ---------------------------------------------------------------- part 1: weight perturbation


class _RegressionLoss:
    """L(W) = 1/2 mean_b ||W x_b - y_b||^2 (or its tanh-network version), computed in
    float64 from private copies; called by the student's code, so it returns a 0-d
    tensor like a torch loss, and works for weights of any dtype."""

    def __init__(self, inputs: torch.Tensor, targets: torch.Tensor, nonlinear: bool):
        self.inputs, self.targets, self.nonlinear = inputs, targets, nonlinear

    def __call__(self, weights) -> torch.Tensor:
        if _isinstance(weights, _Tensor):
            weights = weights.detach().to(_float64)
        return self.value(weights)

    def value(self, weights: torch.Tensor) -> torch.Tensor:
        """The loss of float64 ``weights`` (with their graph, for autograd)."""
        drive = self.inputs @ weights.T if weights.dim() == 2 else self.inputs * weights
        out = _tanh(drive) if self.nonlinear else drive
        return 0.5 * ((out - self.targets) ** 2).sum(-1).mean()


def _wp_loss_fn(shape, generator, nonlinear: bool) -> _RegressionLoss:
    """A loss far from 0 at the weights (so that the clean loss matters) for weights of
    ``shape``: (n_out, n_in) for a layer, (n,) for one weight per input."""
    n_in = shape[-1]
    inputs = _randn(6, n_in, generator=generator, dtype=_float64)
    targets = _randn(6, shape[0] if len(shape) == 2 else n_in, generator=generator,
                     dtype=_float64) * 2
    return _RegressionLoss(inputs, targets, nonlinear)


def _wp_cases(generator):
    """(loss_fn, weights, noise, sigma): a layer (square, then not), a nonlinear network, a
    vector of weights with sigma > 1, float64; then the test cell's example."""
    for shape, nonlinear, low, high, dtype in (((3, 3), False, 0.05, 0.4, _float32),
                                               ((2, 4), True, 0.05, 0.4, _float32),
                                               ((5,), False, 1.5, 3.0, _float32),
                                               ((3, 2), True, 0.05, 0.4, _float64)):
        loss_fn = _wp_loss_fn(shape, generator, nonlinear)
        weights = _randn(*shape, generator=generator, dtype=_float64) * 0.5
        sigma = _sigma(generator, low, high)
        noise = _randn(*shape, generator=generator, dtype=_float64) * sigma
        yield loss_fn, weights.to(dtype), noise.to(dtype), sigma
    yield _square_loss, _as_tensor([1.0, 2.0]), _as_tensor([0.1, 0.0]), 0.1  # the test cell's


def _square_loss(weights) -> torch.Tensor:
    """The test cell's loss, sum_i w_i^2 (in the weights' dtype: it is what the student sees)."""
    return (weights**2).sum()


def _loss(loss_fn, weights: torch.Tensor) -> torch.Tensor:
    return loss_fn(weights).to(_float64)


def _expected_wp(loss_fn, weights, noise, sigma):
    """(L(W + xi) - L(W)) xi / sigma^2, in float64 (W + xi rounded as the student's is)."""
    change = _loss(loss_fn, weights + noise) - _loss(loss_fn, weights)
    return change * noise.to(_float64) / sigma**2


def _wp_mistakes(loss_fn, weights, noise, sigma):
    perturbed, clean = _loss(loss_fn, weights + noise), _loss(loss_fn, weights)
    change = perturbed - clean
    xi, w = _f64(noise, weights)
    right = change * xi / sigma**2
    return [
        ("wp_no_baseline",
         "the clean loss L(W) is not subtracted: the estimate is (L(W + xi) - L(W)) xi / "
         "sigma^2. Without the baseline L(W) it is still unbiased but far noisier "
         "(L(W) xi / sigma^2 averages to zero only over many draws)",
         perturbed * xi / sigma**2),
        ("wp_sign_flipped",
         "the sign is flipped: return the gradient ESTIMATE g = +(L(W + xi) - L(W)) xi / "
         "sigma^2 (the loss grows along xi when the loss change is positive); the update "
         "-lr g is the caller's business",
         -right),
        ("wp_sigma_not_squared",
         "divide by sigma^2, the VARIANCE of the noise, not by sigma: E[xi xi^T] = sigma^2 I",
         change * xi / sigma),
        ("wp_no_sigma",
         "the division by sigma^2 is missing: E[xi xi^T] = sigma^2 I, so (L(W + xi) - L(W)) "
         "xi is sigma^2 times the gradient on average",
         change * xi),
        ("wp_noise_rescaled",
         "`noise` is already xi ~ N(0, sigma^2 I): perturb the weights by `noise` itself, "
         "not by sigma * noise",
         (_loss(loss_fn, weights + sigma * noise) - clean) * xi / sigma**2),
        ("wp_noise_rescaled",
         "`noise` is already xi ~ N(0, sigma^2 I): use `noise` itself, not sigma * noise",
         (_loss(loss_fn, weights + sigma * noise) - clean) * sigma * xi / sigma**2),
        ("wp_opposite_perturbation",
         "the weights are perturbed in the wrong direction: evaluate L(W + xi), not L(W - xi)",
         (_loss(loss_fn, weights - noise) - clean) * xi / sigma**2),
        ("wp_central_difference",
         "this is the two-sided estimate (L(W + xi) - L(W - xi)) xi / (2 sigma^2): write the "
         "one-sided one, (L(W + xi) - L(W)) xi / sigma^2, which needs only the one perturbed "
         "trial and the clean one",
         (perturbed - _loss(loss_fn, weights - noise)) * xi / (2 * sigma**2)),
        ("wp_weights_not_noise",
         "the loss change must multiply the perturbation xi (`noise`), not the weights: each "
         "weight is credited with how far IT was jiggled",
         change * w / sigma**2),
        ("wp_sample_variance",
         "divide by sigma^2, the variance the noise was drawn with, not by the sample "
         "variance of this one draw of noise",
         change * xi / xi.var() if xi.numel() > 1 else None),
        ("wp_sample_variance",
         "divide by sigma^2, the variance the noise was drawn with, not by the mean square "
         "of this one draw of noise",
         change * xi / (xi**2).mean()),
        ("wp_transposed",
         "the estimate is transposed: it has the layout of the weights, entry (i, j) for "
         "weight (i, j)",
         right.T if right.dim() == 2 and right.shape[0] == right.shape[1] else None),
    ]


def _changed(before: torch.Tensor, after) -> bool:
    """Whether the tensor the student was handed is no longer the one it was given."""
    if _type(after) is not _Tensor or after.shape != before.shape or after.dtype != before.dtype:
        return True
    return not _equal(after.detach(), before)


def _wp_in_place(weights, noise, given_weights, given_noise, what: str) -> None:
    """Name what an in-place perturbation left behind in the caller's tensors."""
    if _changed(weights, given_weights):
        now = given_weights.detach().to(_float64)
        if close(now, (weights + noise).to(_float64), TOL):
            fail(f"{ASSIGNMENT}.wp_perturbation_left_behind",
                 f"{what} left the perturbation in the caller's weights (they are W + xi after "
                 "the call, as after `weights += noise`): the perturbation lasts one trial "
                 "only. Evaluate loss_fn(weights + noise), which makes a new tensor and leaves "
                 "`weights` as it was.")
        if close(now, weights.to(_float64), TOL):
            fail(f"{ASSIGNMENT}.wp_perturbation_undone_in_place",
                 f"{what} perturbed the caller's weights in place and took the noise off "
                 f"again: rounding leaves them changed ({worst_entry(now, weights)}). Never "
                 "change `weights`: evaluate loss_fn(weights + noise), a new tensor.")
        fail("common.in_place", f"{what} changed its argument weights in place: compute new "
             "tensors instead (`weights + noise`, not `weights += noise`), because the "
             "caller still needs the original.")
    if _changed(noise, given_noise):
        fail("common.in_place", f"{what} changed its argument noise in place: compute new "
             "tensors instead (e.g. `noise / sigma**2`, not `noise /= sigma**2`).")


def _call_wp(fn, loss_fn, weights, noise, sigma, what: str):
    given_weights, given_noise = weights.clone(), noise.clone()
    value = call(fn, loss_fn, given_weights, given_noise, sigma, what=what, allow_in_place=True)
    _wp_in_place(weights, noise, given_weights, given_noise, what)
    return value


@single_threaded
@_own_work
def check_weight_perturbation_estimate(weight_perturbation_estimate, seed: int = 0) -> None:
    """Compare with (L(W + xi) - L(W)) xi / sigma^2 on seeded cases and name the mistake;
    then check that the estimates average to autograd's gradient (`check_wp_unbiased`)."""
    for loss_fn, weights, noise, sigma in _wp_cases(_generator(seed)):
        what = f"weight_perturbation_estimate(loss_fn, weights, noise, sigma={sigma})"
        value = _call_wp(weight_perturbation_estimate, loss_fn, weights, noise, sigma, what)
        expected = _expected_wp(loss_fn, weights, noise, sigma)
        out = _result(value, what, expected, weights.dtype, "wp",
                      "the estimate has the shape of the weights, one number per weight")
        _judge(out, expected, what, _wp_mistakes, (loss_fn, weights, noise, sigma), "wp",
               "(L(W + xi) - L(W)) xi / sigma^2")
    _check_wp_unbiased(weight_perturbation_estimate, seed)


# ------------------------------------------- part 1b: the estimate averages to the gradient

WP_SAMPLES = 1000  # draws of the noise averaged by the statistical check
Z = 6.0  # the statistical checks' bound, in standard errors of the mean (module docstring)


def wp_bias_problem(seed: int):
    """The statistical check's seeded problem: (loss_fn, weights, noises, sigma, gradient),
    with ``noises`` the (WP_SAMPLES, 2, 3) draws xi ~ N(0, sigma^2 I) and ``gradient``
    autograd's, in float64. The loss is quadratic, so E[g] is exactly the gradient."""
    generator = _generator(10_000 + seed)
    loss_fn = _wp_loss_fn((2, 3), generator, nonlinear=False)
    weights = _randn(2, 3, generator=generator, dtype=_float64) * 0.5
    sigma = 0.1
    noises = _randn(WP_SAMPLES, 2, 3, generator=generator, dtype=_float64) * sigma
    leaf = weights.clone().requires_grad_(True)
    (gradient,) = _grad(loss_fn.value(leaf), leaf)
    return loss_fn, weights, noises, sigma, gradient.detach()


def bias_verdict(estimates: torch.Tensor, gradient: torch.Tensor,
                 samples: str = "draws of the noise") -> str | None:
    """None if the mean of ``estimates`` (independent samples first) is within Z standard
    errors of ``gradient`` in every entry; else a message naming the worst entry."""
    count = estimates.shape[0]
    mean = estimates.mean(0)
    standard_error = estimates.std(0) / count**0.5
    excess = (mean - gradient).abs() - Z * standard_error
    if bool((excess <= 0).all()):
        return None
    index = tuple(int(i) for i in _unravel_index(excess.argmax(), excess.shape))
    return (f"averaged over {count} {samples}, entry {index} of the estimate is "
            f"{mean[index].item():.4g} +- {standard_error[index].item():.2g} (standard error) "
            f"but the gradient (autograd) is {gradient[index].item():.4g}")


def _check_wp_unbiased(fn, seed: int) -> None:
    loss_fn, weights, noises, sigma, gradient = wp_bias_problem(seed)
    what = "weight_perturbation_estimate"
    estimates = []
    for noise in noises:  # the student's function takes one draw at a time
        try:
            value = fn(loss_fn, weights, noise, sigma)
        except Exception as error:  # noqa: BLE001 - any error becomes feedback
            fail("common.raised", f"{what} raised {_type(error).__name__}: {error}")
        estimates.append(tensor(value, what, shape=tuple(weights.shape)).to(_float64))
    verdict = bias_verdict(_stack(estimates), gradient)
    if verdict is not None:
        fail(f"{ASSIGNMENT}.wp_biased",
             f"{what} is biased: {verdict}. A correct estimator averages to the gradient; "
             "check the sign and the division by sigma^2.")


@single_threaded
@_own_work
def check_wp_unbiased(weight_perturbation_estimate, seed: int = 0) -> None:
    """Only the statistical check: the estimates, averaged over WP_SAMPLES seeded draws of
    the noise, match autograd's gradient within Z standard errors in every entry."""
    _check_wp_unbiased(weight_perturbation_estimate, seed)


# ---------------------------------------------------------------- part 2: node perturbation


def _expected_np(pre, noise, loss_perturbed, loss_clean, sigma, lr):
    """-lr sum_b (L_xi - L_0)_b xi_b x_b^T / sigma^2, in float64."""
    pre, noise, perturbed, clean = _f64(pre, noise, loss_perturbed, loss_clean)
    return -lr * ((perturbed - clean)[:, None] * noise).T @ pre / sigma**2


def _np_mistakes(pre, noise, loss_perturbed, loss_clean, sigma, lr):
    pre, noise, perturbed, clean = _f64(pre, noise, loss_perturbed, loss_clean)
    change = perturbed - clean
    batch, n_post = noise.shape
    n_pre = pre.shape[1]
    right = _expected_np(pre, noise, loss_perturbed, loss_clean, sigma, lr)

    def rule(loss, post, presyn, scale=-lr / sigma**2):
        return scale * (loss[:, None] * post).T @ presyn

    return [
        ("np_no_baseline",
         "the update uses the perturbed loss L_xi itself, not the change L_xi - L_0: without "
         "the clean loss as a baseline the weights drift with the size of the loss instead "
         "of its change",
         rule(perturbed, noise, pre)),
        ("np_sign_flipped",
         "the sign is flipped: dW = -lr (L_xi - L_0) xi x^T / sigma^2 moves the weights "
         "AGAINST the direction of a jiggle that raised the loss",
         -right),
        ("np_gradient_not_update",
         "this is the gradient estimate (L_xi - L_0) xi x^T / sigma^2: return the update, "
         "-lr times it",
         rule(change, noise, pre, 1 / sigma**2)),
        ("np_lr_missing",
         "the learning rate is missing: dW = -lr (L_xi - L_0) xi x^T / sigma^2",
         rule(change, noise, pre, -1 / sigma**2)),
        ("np_sigma_not_squared",
         "divide by sigma^2, the VARIANCE of the noise, not by sigma",
         rule(change, noise, pre, -lr / sigma)),
        ("np_no_sigma",
         "the division by sigma^2 is missing: (L_xi - L_0) xi is sigma^2 times dL/da on "
         "average",
         rule(change, noise, pre, -lr)),
        ("np_transposed",
         "the outer product is transposed: the perturbation xi_i belongs to the "
         "POST-synaptic unit i (the rows), the activity x_j to the PRE-synaptic unit j "
         "(the columns)",
         rule(change, pre, noise) if n_post == n_pre else None),
        ("np_pre_missing",
         "the pre-synaptic activity is missing: xi_i perturbs unit i's summed input, not its "
         "weights; weight W_ij's share of that input is x_j, so dW_ij pairs xi_i with x_j "
         "(and a silent input's weight does not change)",
         rule(change, noise, _ones(batch, n_pre, dtype=_float64))),
        ("np_batch_mean",
         "sum over the batch, do not average: every example's perturbation is a separate "
         "estimate of that example's share of the gradient",
         right / batch if batch > 1 else None),
        ("np_losses_not_paired",
         "each example's loss change must multiply that example's own xi_b x_b^T: "
         "sum_b (L_xi - L_0)_b xi_b x_b^T, not (sum_b (L_xi - L_0)_b) (sum_b xi_b x_b^T)",
         -lr * change.sum() * noise.T @ pre / sigma**2 if batch > 1 else None),
        ("np_losses_not_paired",
         "each example's loss change must multiply that example's own xi_b x_b^T: "
         "sum_b (L_xi - L_0)_b xi_b x_b^T, not (mean_b (L_xi - L_0)_b) (sum_b xi_b x_b^T)",
         -lr * change.mean() * noise.T @ pre / sigma**2 if batch > 1 else None),
    ]


def _np_cases(generator):
    """(pre, noise, loss_perturbed, loss_clean, sigma, lr): a square batch first (so that a
    transposed outer product is named), a batch of one, a non-square batch with large
    losses, float64; then the test cell's example."""
    for batch, n_post, n_pre, loss_scale, dtype in ((4, 3, 3, 1.0, _float32),
                                                    (1, 2, 5, 1.0, _float32),
                                                    (6, 4, 2, 50.0, _float32),
                                                    (3, 3, 4, 1.0, _float64)):
        sigma = _sigma(generator, 0.05, 0.5)
        lr = round(float(_rand(1, generator=generator)) * 0.3 + 0.01, 3)
        pre = _randn(batch, n_pre, generator=generator, dtype=_float64)
        noise = _randn(batch, n_post, generator=generator, dtype=_float64) * sigma
        clean = (_rand(batch, generator=generator, dtype=_float64) + 0.5) * loss_scale
        perturbed = clean + _randn(batch, generator=generator, dtype=_float64) * sigma
        yield pre.to(dtype), noise.to(dtype), perturbed.to(dtype), clean.to(dtype), sigma, lr
    # the test cell's: one example, loss up by 0.02 after jiggling the units by +-0.1
    yield (_as_tensor([[1.0, 0.5, 2.0]]), _as_tensor([[0.1, -0.1]]), _as_tensor([1.02]),
           _as_tensor([1.0]), 0.1, 0.5)


@single_threaded
@_own_work
def check_node_perturbation_update(node_perturbation_update, seed: int = 0) -> None:
    """Compare with -lr sum_b (L_xi - L_0)_b xi_b x_b^T / sigma^2; name the mistake."""
    for case in _np_cases(_generator(seed)):
        pre, noise, perturbed, clean, sigma, lr = case
        what = (f"node_perturbation_update(pre, noise, loss_perturbed, loss_clean, "
                f"sigma={sigma}, lr={lr})")
        value = call(node_perturbation_update, pre.clone(), noise.clone(), perturbed.clone(),
                     clean.clone(), sigma, lr, what=what)
        expected = _expected_np(*case)
        out = _result(value, what, expected, pre.dtype, "np",
                      "the update has the shape of the weights, (n_post, n_pre): row i is "
                      "the unit that was perturbed, column j its input")
        _judge(out, expected, what, _np_mistakes, case, "np",
               "-lr sum_b (L_xi - L_0)_b xi_b x_b^T / sigma^2")
    _check_np_unbiased(node_perturbation_update, seed)


# --------------------------------------------- part 2b: the update averages to -lr gradient

NP_BATCHES, NP_BATCH = 50, 20  # the statistical check: 50 calls, each on 20 draws of the noise


def np_bias_problem(seed: int):
    """The statistical check's seeded problem, in float64: one input x (4,) to a linear layer
    W (3, 4) with target y, loss L(a) = 1/2 ||a - y||^2 of the summed input a = W x (+ xi);
    returns (pre, noises, loss_perturbed, loss_clean, sigma, lr, gradient) with ``pre`` x
    repeated (NP_BATCHES, NP_BATCH, 4), ``noises`` (NP_BATCHES, NP_BATCH, 3), the two
    losses (NP_BATCHES, NP_BATCH) and autograd's gradient dL/dW. The loss is quadratic in
    a, so E[(L_xi - L_0) xi] / sigma^2 is exactly dL/da."""
    generator = _generator(20_000 + seed)
    weights = _randn(3, 4, generator=generator, dtype=_float64) * 0.5
    x = _randn(4, generator=generator, dtype=_float64)
    target = _randn(3, generator=generator, dtype=_float64) * 2
    sigma, lr = 0.1, 0.05
    noises = _randn(NP_BATCHES, NP_BATCH, 3, generator=generator, dtype=_float64) * sigma
    drive = weights @ x
    loss_clean = 0.5 * ((drive - target) ** 2).sum() + _zeros(NP_BATCHES, NP_BATCH,
                                                              dtype=_float64)
    loss_perturbed = 0.5 * ((drive + noises - target) ** 2).sum(-1)
    leaf = weights.clone().requires_grad_(True)
    (gradient,) = _grad(0.5 * ((leaf @ x - target) ** 2).sum(), leaf)
    pre = x + _zeros(NP_BATCHES, NP_BATCH, 4, dtype=_float64)
    return pre, noises, loss_perturbed, loss_clean, sigma, lr, gradient.detach()


def _check_np_unbiased(fn, seed: int) -> None:
    pre, noises, perturbed, clean, sigma, lr, gradient = np_bias_problem(seed)
    what = "node_perturbation_update"
    estimates = []
    for batch in range(NP_BATCHES):  # each call sums NP_BATCH estimates: divide by it
        args = (pre[batch], noises[batch], perturbed[batch], clean[batch], sigma, lr)
        try:
            value = fn(*args)
        except Exception as error:  # noqa: BLE001 - any error becomes feedback
            fail("common.raised", f"{what} raised {_type(error).__name__}: {error}")
        update = tensor(value, what, shape=tuple(gradient.shape)).to(_float64)
        estimates.append(-update / (lr * NP_BATCH))
    verdict = bias_verdict(_stack(estimates), gradient,
                           f"calls on {NP_BATCH} draws of the noise each (-dW / (lr batch))")
    if verdict is not None:
        fail(f"{ASSIGNMENT}.np_biased",
             f"{what} is biased: {verdict}. A correct update averages to -lr times the "
             "gradient; check the sign, the learning rate and the division by sigma^2.")


@single_threaded
@_own_work
def check_np_unbiased(node_perturbation_update, seed: int = 0) -> None:
    """Only the statistical check: -dW / (lr batch), averaged over NP_BATCHES calls on
    seeded noise, matches autograd's gradient within Z standard errors in every entry."""
    _check_np_unbiased(node_perturbation_update, seed)


# ---------------------------------------------------------------- part 3: the baseline


def _baseline_mistakes(baseline, reward, rate):
    baseline, reward = _f64(baseline, reward)
    error = reward - baseline
    return [
        ("baseline_rate_wrong_way",
         "the rate is applied the wrong way round: `rate` is the weight of the NEW reward, "
         "R_bar + rate (R - R_bar) = (1 - rate) R_bar + rate R, so a small rate means a "
         "long memory",
         baseline + (1 - rate) * error),
        ("baseline_reward_not_rpe",
         "the baseline moves by rate * R, the reward itself: it must move by rate * (R - "
         "R_bar), the reward prediction error, so that it settles at the average reward",
         baseline + rate * reward),
        ("baseline_sign_flipped",
         "the sign is flipped: the baseline moves TOWARDS the reward, R_bar + rate (R - R_bar)",
         baseline - rate * error),
        ("baseline_returns_rpe",
         "this is the reward prediction error R - R_bar: return the new baseline, "
         "R_bar + rate (R - R_bar)",
         error),
        ("baseline_returns_change",
         "this is only the change rate (R - R_bar): add it to the old baseline",
         rate * error),
        ("baseline_not_updated",
         "the baseline did not change: R_bar + rate (R - R_bar)",
         baseline),
        ("baseline_is_reward",
         "this is the reward itself: the baseline is a running AVERAGE, R_bar + rate (R - R_bar)",
         reward),
        ("baseline_new_not_scaled",
         "the new reward must enter with the rate: (1 - rate) R_bar + rate R",
         (1 - rate) * baseline + reward),
    ]


def _baseline_cases(generator):
    """(baseline, reward, rate): one baseline per context first (for a single number,
    every wrong value is some multiple of the right one), 0-d tensors, a number as the
    reward, float64; then the test cell's example."""
    for shape, number, dtype in (((4,), False, _float32), ((), False, _float32),
                                 ((), True, _float32), ((3,), False, _float64)):
        baseline = _randn(shape, generator=generator, dtype=_float64)
        reward = baseline + 1 + _rand(shape, generator=generator, dtype=_float64) * 2
        rate = round(float(_rand(1, generator=generator)) * 0.3 + 0.02, 3)
        reward = round(float(reward), 3) if number else reward.to(dtype)
        yield baseline.to(dtype), reward, rate
    yield _as_tensor(0.5), _as_tensor(1.5), 0.1  # the test cell's


@single_threaded
@_own_work
def check_update_baseline(update_baseline, seed: int = 0) -> None:
    """Compare with R_bar + rate (R - R_bar); name the mistake."""
    for baseline, reward, rate in _baseline_cases(_generator(seed)):
        what = f"update_baseline(baseline, reward, rate={rate})"
        given_reward = reward.clone() if _type(reward) is _Tensor else reward
        value = call(update_baseline, baseline.clone(), given_reward, rate, what=what)
        reward = _as_tensor(reward, dtype=_float64) if _type(reward) is float else reward
        expected = baseline.to(_float64) + rate * (reward.to(_float64) - baseline.to(_float64))
        out = _result(value, what, expected, baseline.dtype, "baseline",
                      "the new baseline has the shape of the old one")
        _judge(out, expected, what, _baseline_mistakes, (baseline, reward, rate), "baseline",
               "R_bar + rate (R - R_bar)")


# ---------------------------------------------------------------- part 4: the eligibility trace


def _expected_trace(trace, pre, post, decay):
    """decay e + (1 - decay) dpost_i pre_j, in float64."""
    trace, pre, post = _f64(trace, pre, post)
    return decay * trace + (1 - decay) * _outer(post, pre)


def _trace_mistakes(trace, pre, post, decay):
    trace, pre, post = _f64(trace, pre, post)
    hebbian = _outer(post, pre)
    square = trace.shape[0] == trace.shape[1]
    return [
        ("trace_not_decayed",
         "the trace does not decay: the old trace must be multiplied by `decay`, so that a "
         "synapse forgets an old coincidence of pre and post",
         trace + (1 - decay) * hebbian),
        ("trace_old_dropped",
         "the old trace is dropped: keep decay * e, the memory that bridges the delay until "
         "the reward arrives",
         (1 - decay) * hebbian),
        ("trace_new_term_not_scaled",
         "the new term must be scaled by (1 - decay): e <- decay e + (1 - decay) dpost pre",
         decay * trace + hebbian),
        ("trace_factors_swapped",
         "the factors are swapped: the old trace is kept with `decay`, the new term enters "
         "with (1 - decay)",
         (1 - decay) * trace + decay * hebbian),
        ("trace_new_term_sign",
         "the sign of the new term is flipped: + (1 - decay) dpost_i pre_j",
         decay * trace - (1 - decay) * hebbian),
        ("trace_outer_transposed",
         "the outer product is transposed: e_ij pairs the POST-synaptic fluctuation dpost_i "
         "(rows) with the PRE-synaptic activity pre_j (columns)",
         decay * trace + (1 - decay) * _outer(pre, post) if square else None),
        ("trace_transposed",
         "the new trace is transposed: keep the layout of the old one, (n_post, n_pre)",
         (decay * trace + (1 - decay) * hebbian).T if square else None),
    ]


def _trace_cases(generator):
    """(trace, pre, post_fluctuation, decay): square first, then not, a large trace with a
    decay close to 1, float64; then the test cell's example."""
    for n_post, n_pre, scale, low, dtype in ((3, 3, 1.0, 0.6, _float32),
                                             (2, 5, 1.0, 0.6, _float32),
                                             (4, 2, 30.0, 0.95, _float32),
                                             (3, 4, 1.0, 0.6, _float64)):
        trace = _randn(n_post, n_pre, generator=generator, dtype=_float64) * scale
        pre = _rand(n_pre, generator=generator, dtype=_float64)  # rates: >= 0
        post = _randn(n_post, generator=generator, dtype=_float64)
        decay = round(low + float(_rand(1, generator=generator)) * (0.99 - low), 3)
        yield trace.to(dtype), pre.to(dtype), post.to(dtype), decay
    yield _ones(2, 2), _as_tensor([1.0, 0.0]), _as_tensor([0.5, -1.0]), 0.8  # the test cell's


@single_threaded
@_own_work
def check_eligibility_step(eligibility_step, seed: int = 0) -> None:
    """Compare with decay e + (1 - decay) dpost_i pre_j; name the mistake."""
    for trace, pre, post, decay in _trace_cases(_generator(seed)):
        what = f"eligibility_step(trace, pre, post_fluctuation, decay={decay})"
        value = call(eligibility_step, trace.clone(), pre.clone(), post.clone(), decay,
                     what=what)
        expected = _expected_trace(trace, pre, post, decay)
        out = _result(value, what, expected, trace.dtype, "trace",
                      "the trace keeps its shape (n_post, n_pre), one number per synapse; the "
                      "new term is the outer product dpost_i pre_j")
        _judge(out, expected, what, _trace_mistakes, (trace, pre, post, decay), "trace",
               "decay e + (1 - decay) dpost_i pre_j")


__all__ = ["CheckFailure", "check_eligibility_step", "check_node_perturbation_update",
           "check_np_unbiased", "check_update_baseline", "check_weight_perturbation_estimate",
           "check_wp_unbiased", "bias_verdict", "np_bias_problem", "wp_bias_problem"]

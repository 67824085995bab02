"""The assignment-04 checkers: the references and correct variants pass at several seeds;
each plausible mistake (written as a student would) is rejected with its message and id."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects

from course_lib import regularisers, sparsity
from course_lib.checks.brain_like_costs import (
    check_l1_weights,
    check_l2_rates,
    check_soft_threshold,
)

SEEDS = (0, 4242, 97, 1001, 7)


# ------------------------------------------------------------------ part 1: L1 on weights


def _tensors(weights):
    return [weights] if isinstance(weights, torch.Tensor) else list(weights)


def _l1(penalty):
    """A student's penalty ``penalty(list_of_tensors, beta)`` with the right validation."""

    def l1_weights(weights, beta):
        if beta < 0:
            raise ValueError("beta must be >= 0")
        return penalty(_tensors(weights), beta)

    return l1_weights


def l1_as_in_the_solution(weights, beta):
    if beta < 0:
        raise ValueError("beta must be >= 0")
    if isinstance(weights, torch.Tensor):
        weights = [weights]
    return beta * sum(w.abs().sum() for w in weights)


def l1_loop(weights, beta):
    if beta < 0:
        raise ValueError("beta must be >= 0")
    total = torch.zeros(())
    for w in _tensors(weights):
        for value in w.flatten():
            total = total + torch.abs(value)
    return total * beta


L1_CORRECT = [
    regularisers.l1_weights,
    l1_as_in_the_solution,
    l1_loop,
    _l1(lambda ws, b: b * torch.cat([w.flatten() for w in ws]).norm(p=1)),
    _l1(lambda ws, b: b * sum(torch.linalg.vector_norm(w, ord=1) for w in ws)),
    _l1(lambda ws, b: sum((b * w.abs()).sum() for w in ws)),
]


@pytest.mark.parametrize("l1", L1_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_l1_passes(l1, seed):
    check_l1_weights(l1, seed=seed)


def l1_first_only(weights, beta):
    if beta < 0:
        raise ValueError
    first = weights if isinstance(weights, torch.Tensor) else next(iter(weights))
    return beta * first.abs().sum()


def l1_list_only(weights, beta):
    if beta < 0:
        raise ValueError
    if isinstance(weights, list):
        return beta * sum(w.abs().sum() for w in weights)
    return beta * weights.abs().sum()


def l1_matrices_only(weights, beta):
    if beta < 0:
        raise ValueError
    return beta * sum(w.abs().sum(dim=(0, 1)) for w in _tensors(weights))


def _l1_always_list(weights, beta):
    """list() of a tensor gives its rows: right by accident, except for a scalar."""
    if beta < 0:
        raise ValueError
    return beta * sum(w.abs().sum() for w in list(weights))


def l1_zero_beta_rejected(weights, beta):
    if beta <= 0:
        raise ValueError("beta must be positive")
    return beta * sum(w.abs().sum() for w in _tensors(weights))


def l1_subclass(weights, beta):
    return l1_as_in_the_solution(weights, beta).as_subclass(AlwaysEqual)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (_l1(lambda ws, b: b * sum(w.sum() for w in ws)), "brain_like_costs.l1_no_abs",
         "take the absolute value"),
        (_l1(lambda ws, b: b * sum(w.pow(2).sum() for w in ws)), "brain_like_costs.l1_squared",
         "this is the L2 penalty"),
        (_l1(lambda ws, b: b * torch.cat([w.flatten() for w in ws]).norm()),
         "brain_like_costs.l1_euclidean_norm", "this is the Euclidean norm"),
        (_l1(lambda ws, b: b * torch.cat([w.flatten() for w in ws]).abs().mean()),
         "brain_like_costs.l1_mean", "do not average"),
        (_l1(lambda ws, b: b * sum(w.abs().mean() for w in ws)),
         "brain_like_costs.l1_mean", "do not average"),
        (_l1(lambda ws, b: sum(w.abs().sum() for w in ws)), "brain_like_costs.l1_no_beta",
         "multiply by beta"),
        (l1_first_only, "brain_like_costs.l1_first_only", "not only the first"),
        (_l1(lambda ws, b: b * ws[-1].abs().sum()), "brain_like_costs.l1_last_only",
         "not only the last"),
        (l1_list_only, "common.raised", r"a tuple of \d tensors .* raised AttributeError"),
        (l1_matrices_only, "common.raised", r"raised IndexError"),
        (_l1_always_list, "common.raised", r"shape \(\), beta=.*\) raised TypeError"),
        (_l1(lambda ws, b: b * sum(torch.sqrt(w**2).sum() for w in ws)),
         "common.gradient_not_finite", "the gradient contains NaN"),
        (_l1(lambda ws, b: b * sum(w.abs().sum().item() for w in ws) * torch.ones(())),
         "brain_like_costs.l1_no_gradient", "carries no gradient"),
        (_l1(lambda ws, b: b * sum(w.detach().abs().sum() for w in ws)),
         "brain_like_costs.l1_no_gradient", "carries no gradient"),
        (_l1(lambda ws, b: b * sum(torch.where(w >= 0, w, -w.detach()).sum() for w in ws)),
         "brain_like_costs.l1_wrong_gradient", r"should be\s+beta \* sign\(w\)"),
        (_l1(lambda ws, b: (b * sum(w.abs().sum() for w in ws)).item()), "common.wrong_type",
         "must return a torch.Tensor, got builtins.float"),
        (_l1(lambda ws, b: b * torch.stack([w.abs().sum() for w in ws])),
         "brain_like_costs.penalty_not_scalar", r"must return a scalar tensor \(shape \(\)\)"),
        (l1_subclass, "common.tensor_subclass", "must return a plain torch.Tensor"),
        (l1_zero_beta_rejected, "brain_like_costs.zero_beta_rejected", "beta = 0 is allowed"),
        (lambda ws, b: abs(b) * sum(w.abs().sum() for w in _tensors(ws)),
         "brain_like_costs.negative_coefficient_accepted", r"beta=-0.1\) should raise ValueError"),
        (lambda ws, b: b * sum(w.abs().sum() for w in _tensors(ws)) if b >= 0 else 1 / 0,
         "brain_like_costs.negative_coefficient_wrong_error", "raised ZeroDivisionError"),
        # a cap the instructions never ask for, reached only by large weights
        (_l1(lambda ws, b: b * sum(w.abs().clamp(max=5.0).sum() for w in ws)),
         "brain_like_costs.values_limited", "do not clamp, cap or round"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_l1_is_rejected_with_its_message(wrong, mistake, message):
    rejects(check_l1_weights, wrong, mistake, message)


# ------------------------------------------------------------------ part 2: L2 on rates


def _l2(reduce):
    def l2_rates(rates, beta):
        if beta < 0:
            raise ValueError("beta must be >= 0")
        return reduce(rates, beta)

    return l2_rates


def l2_einsum(rates, beta):
    if beta < 0:
        raise ValueError
    steps, batch, _ = rates.shape
    return beta * torch.einsum("tbi,tbi->", rates, rates) / (steps * batch)


L2_CORRECT = [
    regularisers.l2_rates,
    _l2(lambda r, b: b * (r * r).sum() / (r.shape[0] * r.shape[1])),
    _l2(lambda r, b: b * r.pow(2).sum(dim=2).mean(dim=(0, 1))),
    _l2(lambda r, b: b * (r.norm(dim=-1) ** 2).mean()),
    l2_einsum,
]


@pytest.mark.parametrize("l2", L2_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_l2_passes(l2, seed):
    check_l2_rates(l2, seed=seed)


def l2_zero_beta_rejected(rates, beta):
    if beta <= 0:
        raise ValueError("beta must be positive")
    return beta * rates.pow(2).sum(dim=-1).mean()


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (_l2(lambda r, b: b * r.pow(2).mean()), "brain_like_costs.l2_mean_over_units",
         "sum over the units"),
        (_l2(lambda r, b: b * r.clamp(-5, 5).pow(2).sum(-1).mean()),
         "brain_like_costs.values_limited", "do not clamp, cap or round"),
        (_l2(lambda r, b: b * r.pow(2).sum()), "brain_like_costs.l2_sum_over_batch_and_time",
         "average over the batch and over time"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=(0, 2)).mean()),
         "brain_like_costs.l2_sum_over_time", "average over time too"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=(1, 2)).mean()),
         "brain_like_costs.l2_sum_over_batch", "average over the batch too"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=0).mean()), "brain_like_costs.l2_wrong_axis",
         "you summed over the first axis"),
        (_l2(lambda r, b: b * r.sum(dim=-1).mean()), "brain_like_costs.l2_not_squared",
         "square the rates"),
        (_l2(lambda r, b: b * r.abs().sum(dim=-1).mean()), "brain_like_costs.l2_not_squared",
         r"nor Σ_i \|a_it\|"),
        (_l2(lambda r, b: b * torch.relu(r).pow(2).sum(dim=-1).mean()),
         "brain_like_costs.l2_rectified", "do not\\s+rectify"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=-1).sqrt().mean()),
         "brain_like_costs.l2_square_root", "do not take a square root"),
        (_l2(lambda r, b: r.pow(2).sum(dim=-1).mean()), "brain_like_costs.l2_no_beta",
         "multiply by beta"),
        (_l2(lambda r, b: b * r.squeeze().pow(2).sum(dim=-1).mean()),
         "brain_like_costs.l2_sum_over_batch_and_time", r"\(4, 1, 1\)"),
        (_l2(lambda r, b: torch.tensor(regularisers.l2_rates(r, b).item())),
         "brain_like_costs.l2_no_gradient", "carries no gradient"),
        (_l2(lambda r, b: b * (r.pow(2).sum(dim=-1).sqrt() ** 2).mean()),
         "common.gradient_not_finite", "the gradient contains NaN"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=-1).mean(dim=0)),
         "brain_like_costs.penalty_not_scalar", "must return a scalar tensor"),
        (l2_zero_beta_rejected, "brain_like_costs.zero_beta_rejected", "beta = 0 is allowed"),
        (lambda r, b: abs(b) * r.pow(2).sum(dim=-1).mean(),
         "brain_like_costs.negative_coefficient_accepted", r"beta=-1.0\) should raise ValueError"),
        (_l2(lambda r, b: (b * r.pow(2).sum(dim=-1).mean()).numpy()), "common.raised",
         "raised RuntimeError"),
        (_l2(lambda r, b: (b * r.pow(2).sum(dim=-1).mean()).detach().numpy()),
         "common.wrong_type", "got numpy.ndarray"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_l2_is_rejected_with_its_message(wrong, mistake, message):
    rejects(check_l2_rates, wrong, mistake, message)


# ------------------------------------------------------------------ part 3: soft threshold


def _st(step):
    def soft_threshold(w, lam):
        if lam < 0:
            raise ValueError("lam must be >= 0")
        return step(w, lam)

    return soft_threshold


def threshold_where(w, lam):
    if lam < 0:
        raise ValueError
    return torch.where(w.abs() > lam, w - lam * torch.sign(w), torch.zeros_like(w))


def threshold_loop(w, lam):
    if lam < 0:
        raise ValueError
    flat = w.flatten().tolist()
    out = [max(abs(v) - lam, 0.0) * (1 if v > 0 else -1) for v in flat]
    return torch.tensor(out, dtype=w.dtype).reshape(w.shape)


ST_CORRECT = [
    sparsity.soft_threshold,
    _st(lambda w, lam: torch.nn.functional.softshrink(w, lam)),
    _st(lambda w, lam: torch.sign(w) * torch.relu(w.abs() - lam)),
    _st(lambda w, lam: torch.relu(w - lam) - torch.relu(-w - lam)),
    threshold_where,
    threshold_loop,
]


@pytest.mark.parametrize("step", ST_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_soft_threshold_passes(step, seed):
    check_soft_threshold(step, seed=seed)


def in_place(w, lam):
    if lam < 0:
        raise ValueError
    w.copy_(sparsity.soft_threshold(w, lam))
    return w


def almost_zero(w, lam):
    return sparsity.soft_threshold(w, lam) + 1e-9 * (w.abs() <= lam)


def multiplicative(w, lam):
    if lam < 0:
        raise ValueError
    return w * torch.clamp(1 - lam / w.abs(), min=0)


def two_d_only(w, lam):
    if lam < 0:
        raise ValueError
    out = torch.zeros_like(w)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            out[i, j] = torch.sign(w[i, j]) * max(abs(w[i, j]) - lam, 0)
    return out


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (_st(lambda w, lam: w * (w.abs() > lam)), "brain_like_costs.hard_threshold",
         "this is a hard threshold"),
        (_st(lambda w, lam: w - lam * torch.sign(w)), "brain_like_costs.threshold_crosses_zero",
         "not cross it and change sign"),
        (_st(lambda w, lam: (w.abs() - lam).clamp_min(0)), "brain_like_costs.threshold_sign_lost",
         "keep the sign of the weight"),
        (_st(lambda w, lam: torch.relu(w - lam)), "brain_like_costs.threshold_rectified",
         "negative weights must shrink"),
        (_st(lambda w, lam: w - lam), "brain_like_costs.threshold_not_on_magnitude",
         "subtract lam from the magnitude"),
        (_st(lambda w, lam: w / (1 + lam)), "brain_like_costs.threshold_is_l2_step",
         r"the L2 step, w / \(1 \+ lam\)"),
        (_st(lambda w, lam: w * (1 - lam)), "brain_like_costs.threshold_is_weight_decay",
         "like weight decay"),
        (_st(lambda w, lam: torch.sign(w) * torch.clamp(w.abs() - lam, 0, 1)),
         "brain_like_costs.threshold_wrong_value", "should be sign"),
        (_st(lambda w, lam: torch.sign(w) * torch.clamp(w.abs() - lam, 0, 100)),
         "brain_like_costs.values_limited", "do not clamp, cap or round"),
        (_st(lambda w, lam: w if lam == 0 else sparsity.soft_threshold(w, lam)),
         "brain_like_costs.threshold_returns_input", "returned w itself"),
        (_st(lambda w, lam: w.view_as(w) if lam == 0 else sparsity.soft_threshold(w, lam)),
         "brain_like_costs.threshold_returns_input", "not a new tensor"),
        (in_place, "common.in_place", "changed its argument w in place"),
        (almost_zero, "brain_like_costs.threshold_not_exact_zero", "must become exactly 0"),
        (multiplicative, "common.not_finite", "contains NaN or inf"),
        (two_d_only, "common.raised", r"shape \(\d,\) .* raised IndexError"),
        (_st(lambda w, lam: sparsity.soft_threshold(w, lam).double()), "common.wrong_dtype",
         "dtype torch.float64 but should have dtype torch.float32"),
        (_st(lambda w, lam: sparsity.soft_threshold(w, lam).to_sparse()), "common.sparse",
         "sparse tensor"),
        (_st(lambda w, lam: sparsity.soft_threshold(w, lam).to("meta")), "common.device",
         "returned a tensor on meta"),
        (_st(lambda w, lam: np.sign(w.numpy()) * 0), "common.wrong_type", "got numpy.ndarray"),
        (_st(lambda w, lam: sparsity.soft_threshold(w, lam).tolist()), "common.wrong_type",
         "got builtins.list"),
        (_st(lambda w, lam: None), "common.wrong_type", "did you forget `return`"),
        (lambda w, lam: sparsity.soft_threshold(w, lam) if lam >= 0 else 1 / 0,
         "brain_like_costs.negative_coefficient_wrong_error",
         "raised ZeroDivisionError"),
        (lambda w, lam: sparsity.soft_threshold(w, lam) if lam > 0 else 1 / 0,
         "common.raised", r"lam=0.0\) raised ZeroDivisionError"),
        (lambda w, lam: sparsity.soft_threshold(w, abs(lam)),
         "brain_like_costs.negative_coefficient_accepted", r"lam=-0.5\) should raise ValueError"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_soft_threshold_is_rejected_with_its_message(wrong, mistake, message):
    rejects(check_soft_threshold, wrong, mistake, message)


def test_zero_lam_rejected_is_named():
    def positive_only(w, lam):
        if lam <= 0:
            raise ValueError("lam must be positive")
        return sparsity.soft_threshold(w, lam)

    rejects(check_soft_threshold, positive_only, "brain_like_costs.zero_lam_rejected",
              "lam = 0 is allowed")


def test_a_patched_torch_changes_neither_cases_nor_expected_values(monkeypatch):
    """An answer cell that patches torch.sign and torch.randn cannot make a wrong step pass."""
    wrong = _st(lambda w, lam: w * (w.abs() > lam))
    monkeypatch.setattr(torch, "sign", lambda w: w * 0)
    monkeypatch.setattr(torch, "randn", lambda *a, **k: torch.zeros(a[0]))
    with pytest.raises(AssertionError):
        check_soft_threshold(wrong)

"""The assignment-04 checkers: the references pass; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import regularisers, sparsity
from course_lib.checks.brain_like_costs import (
    check_l1_weights,
    check_l2_rates,
    check_soft_threshold,
)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def _tensors(weights):
    return [weights] if isinstance(weights, torch.Tensor) else list(weights)


def _validated(penalty):
    def wrapped(weights, beta):
        if beta < 0:
            raise ValueError("beta must be >= 0")
        return penalty(_tensors(weights), beta)

    return wrapped


# ------------------------------------------------------------------ part 1: L1 on weights


def l1_as_in_the_solution(weights, beta):
    if beta < 0:
        raise ValueError("beta must be >= 0")
    if isinstance(weights, torch.Tensor):
        weights = [weights]
    return beta * sum(w.abs().sum() for w in weights)


@pytest.mark.parametrize("l1", [regularisers.l1_weights, l1_as_in_the_solution])
def test_reference_l1_passes(l1):
    check_l1_weights(l1)
    check_l1_weights(l1, seed=404)


def l1_first_only(weights, beta):
    if beta < 0:
        raise ValueError
    return (
        beta * (weights if isinstance(weights, torch.Tensor) else next(iter(weights))).abs().sum()
    )


def l1_list_only(weights, beta):
    if beta < 0:
        raise ValueError
    if isinstance(weights, list):
        return beta * sum(w.abs().sum() for w in weights)
    return beta * weights.abs().sum()


def l1_item(weights, beta):
    return torch.tensor(regularisers.l1_weights(weights, beta).item())


def l1_no_validation(weights, beta):
    return abs(beta) * sum(w.abs().sum() for w in _tensors(weights))


def l1_numpy(weights, beta):
    return float(regularisers.l1_weights(weights, beta).detach())


def l1_vector(weights, beta):
    return beta * torch.stack([w.abs().sum() for w in _tensors(weights)])


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_validated(lambda ws, b: b * sum(w.sum() for w in ws)), "take the absolute value"),
        (_validated(lambda ws, b: b * sum(w.pow(2).sum() for w in ws)), "this is the L2 penalty"),
        (
            _validated(lambda ws, b: b * torch.cat([w.flatten() for w in ws]).norm()),
            "this is the Euclidean norm",
        ),
        (
            _validated(lambda ws, b: b * torch.cat([w.flatten() for w in ws]).abs().mean()),
            "do not average",
        ),
        (_validated(lambda ws, b: sum(w.abs().sum() for w in ws)), "multiply by beta"),
        (l1_first_only, "not only the first"),
        (_validated(lambda ws, b: b * ws[-1].abs().sum()), "not only the last"),
        (l1_list_only, r"a tuple of \d tensors"),
        (l1_item, "carries no gradient"),
        (l1_numpy, "must return a torch.Tensor, got builtins.float"),
        (l1_vector, r"must return a scalar tensor \(shape \(\)\)"),
        (l1_no_validation, r"beta=-0.1\) should raise ValueError"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_l1_is_rejected_with_its_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_l1_weights(wrong)


# ------------------------------------------------------------------ part 2: L2 on rates


def _l2(reduce):
    def wrapped(rates, beta):
        if beta < 0:
            raise ValueError("beta must be >= 0")
        return reduce(rates, beta)

    return wrapped


def test_reference_l2_passes():
    check_l2_rates(regularisers.l2_rates)
    check_l2_rates(regularisers.l2_rates, seed=99)
    check_l2_rates(_l2(lambda r, b: b * (r * r).sum() / (r.shape[0] * r.shape[1])), seed=3)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_l2(lambda r, b: b * r.pow(2).mean()), "sum over the units"),
        (_l2(lambda r, b: b * r.pow(2).sum()), "average over the batch and over time"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=(0, 2)).mean()), "average over time too"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=(1, 2)).mean()), "average over the batch too"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=0).mean()), "you summed over the first axis"),
        (_l2(lambda r, b: b * r.sum(dim=-1).mean()), "square the rates"),
        (_l2(lambda r, b: b * r.abs().sum(dim=-1).mean()), r"nor Σ_i \|a_it\|"),
        (_l2(lambda r, b: b * r.pow(2).sum(dim=-1).sqrt().mean()), "do not take a square root"),
        (_l2(lambda r, b: r.pow(2).sum(dim=-1).mean()), "multiply by beta"),
        (_l2(lambda r, b: torch.tensor(regularisers.l2_rates(r, b).item())), "carries no gradient"),
        (lambda r, b: abs(b) * r.pow(2).sum(dim=-1).mean(), r"beta=-1.0\) should raise ValueError"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_l2_is_rejected_with_its_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_l2_rates(wrong)


# ------------------------------------------------------------------ part 3: soft threshold


def _st(step):
    def wrapped(w, lam):
        if lam < 0:
            raise ValueError("lam must be >= 0")
        return step(w, lam)

    return wrapped


def test_reference_soft_threshold_passes():
    check_soft_threshold(sparsity.soft_threshold)
    check_soft_threshold(sparsity.soft_threshold, seed=5)
    check_soft_threshold(_st(lambda w, lam: torch.nn.functional.softshrink(w, lam)), seed=8)


def in_place(w, lam):
    if lam < 0:
        raise ValueError
    w.copy_(sparsity.soft_threshold(w, lam))
    return w


def almost_zero(w, lam):
    return sparsity.soft_threshold(w, lam) + 1e-9 * (w.abs() <= lam)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_st(lambda w, lam: w * (w.abs() > lam)), "this is a hard threshold"),
        (_st(lambda w, lam: w - lam * torch.sign(w)), "not cross it and change sign"),
        (_st(lambda w, lam: (w.abs() - lam).clamp_min(0)), "keep the sign of the weight"),
        (_st(lambda w, lam: torch.relu(w - lam)), "negative weights must shrink"),
        (_st(lambda w, lam: w - lam), "subtract lam from the magnitude"),
        (_st(lambda w, lam: w / (1 + lam)), r"the L2 step, w / \(1 \+ lam\)"),
        (_st(lambda w, lam: w * (1 - lam)), "like weight decay"),
        (in_place, "changed w in place"),
        (almost_zero, "must become exactly 0"),
        (_st(lambda w, lam: np.sign(w.numpy()) * 0), "got numpy.ndarray"),
        (
            lambda w, lam: sparsity.soft_threshold(w, abs(lam)),
            r"lam=-0.5\) should raise ValueError",
        ),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_soft_threshold_is_rejected_with_its_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_soft_threshold(wrong)

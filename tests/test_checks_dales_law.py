"""The assignment-02 checkers: the reference passes; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import pytest
import torch

from course_lib import dale
from course_lib.checks.dales_law import (
    check_balance_ei,
    check_dale_signs,
    check_dale_weight,
    check_scale_to_spectral_radius,
    check_sign_matrix,
)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ part 1: signs and D


def test_reference_signs_pass():
    for seed in (0, 5, 99):
        check_dale_signs(dale.dale_signs, seed=seed)
        check_sign_matrix(dale.sign_matrix, seed=seed)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (
            lambda e, i: torch.cat([-torch.ones(i), torch.ones(e)]),
            "puts the inhibitory units first",
        ),
        (
            lambda e, i: torch.cat([torch.ones(e), torch.zeros(i)]),
            "an inhibitory unit has sign -1, not 0",
        ),
        (lambda e, i: torch.diag(dale.dale_signs(e, i)), "should be \\(4,\\): one sign per unit"),
        (lambda e, i: torch.cat([torch.ones(e + 1), -torch.ones(i - 1)]), "should have n_exc = 3"),
        (
            lambda e, i: dale.dale_signs(e, i).tolist(),
            "must return a torch.Tensor, got builtins.list",
        ),
        (
            lambda e, i: torch.cat([torch.ones(e), -2 * torch.ones(i)]),
            "must contain only \\+1 and -1",
        ),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_signs_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_dale_signs(wrong)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda s: s, "should be \\(3, 3\\): D is a square diagonal matrix"),
        (lambda s: s[:, None].repeat(1, len(s)), "non-zero entries off the diagonal"),
        (lambda s: s[None, :].repeat(len(s), 1), "non-zero entries off the diagonal"),
        (lambda s: torch.eye(len(s)), "returned the identity"),
        (lambda s: -torch.diag(s), "should be diag\\(signs\\); entry"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_sign_matrices_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_sign_matrix(wrong)


# ------------------------------------------------------------------ part 2: effective weight


def in_place(w, s):
    return w.data.clamp_(min=0) * s


WRONG_WEIGHTS = [
    (lambda w, s: torch.diag(s) @ torch.relu(w), "applied to the rows \\(postsynaptic units\\)"),
    (lambda w, s: s[:, None] * torch.relu(w), "multiplies column j: relu\\(w_raw\\) @ D"),
    (lambda w, s: w.abs() * s, "use relu, not abs"),
    (lambda w, s: w * s, "were not rectified"),
    (lambda w, s: torch.relu(w @ torch.diag(s)), "rectify first, then apply the signs"),
    (lambda w, s: torch.relu(w), "the signs were not applied"),
    (lambda w, s: -torch.relu(w) * s, "the signs are inverted"),
    (lambda w, s: (torch.relu(w) * s).detach(), "no gradient flows"),
    (in_place, "changed w_raw in place"),
    (lambda w, s: torch.relu(w).T * s, "returned shape|should be relu"),
    (lambda w, s: torch.relu(w) * s + 0.01, "should be relu\\(w_raw\\) @ diag\\(signs\\); entry"),
    (not_implemented, "is not implemented yet"),
]


def test_reference_weight_passes():
    check_dale_weight(dale.dale_weight)
    check_dale_weight(lambda w, s: torch.relu(w) @ torch.diag(s), seed=12)
    check_dale_weight(lambda w, s: w.clamp(min=0) * s, seed=3)


@pytest.mark.parametrize(("wrong", "message"), WRONG_WEIGHTS)
def test_wrong_weights_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_dale_weight(wrong)


# ------------------------------------------------------------------ part 3: balance


def scale_excitation(w, s):
    e, i = w[:, s > 0].sum(1), w[:, s < 0].sum(1)
    out = w.clone()
    out[:, s > 0] *= (i / e)[:, None]
    return out


def inverted_ratio(w, s):
    e, i = w[:, s > 0].sum(1), w[:, s < 0].sum(1)
    out = w.clone()
    out[:, s < 0] *= (i / e)[:, None]
    return out


def by_columns(w, s):
    e, i = w[s > 0, :].sum(0), w[s < 0, :].sum(0)
    out = w.clone()
    out[s < 0, :] *= (e / i)[None, :]
    return out


def one_factor(w, s):
    out = w.clone()
    out[:, s < 0] *= w[:, s > 0].sum() / w[:, s < 0].sum()
    return out


def in_place_balance(w, s):
    e, i = w[:, s > 0].sum(1), w[:, s < 0].sum(1)
    w[:, s < 0] *= (e / i)[:, None]
    return w


def balance_with_diagonal_bug(w, s):
    """Balanced, but rescales the excitatory weights a little as well."""
    out = dale.balance_ei(w, s)
    return out * 1.1


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (scale_excitation, "rescale only the inhibitory ones"),
        (inverted_ratio, "the factor is inverted"),
        (by_columns, "balance each row"),
        (one_factor, "each row \\(each postsynaptic unit\\) needs its own factor"),
        (lambda w, s: dale.balance_ei(w, s) * s, "return the non-negative magnitudes"),
        (in_place_balance, "changed w_pos in place"),
        (lambda w, s: w, "is not balanced: row"),
        (balance_with_diagonal_bug, "is balanced but differs from the reference"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_balances_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_balance_ei(wrong)


def test_reference_balance_passes():
    check_balance_ei(dale.balance_ei)
    check_balance_ei(dale.balance_ei, seed=404)


# ------------------------------------------------------------------ part 4: spectral radius


def _rho(w):
    return torch.linalg.eigvals(w).abs().max()


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda w, r: w * r / torch.linalg.matrix_norm(w, 2), "largest singular value"),
        (lambda w, r: w * r / torch.linalg.eigvals(w).real.max(), "largest real part"),
        (lambda w, r: w * r / torch.linalg.eigvalsh(w).abs().max(), "eigvalsh assumes a symmetric"),
        (lambda w, r: w * r / w.abs().max(), "largest \\|entry\\|"),
        (lambda w, r: w * r / torch.linalg.matrix_norm(w), "Frobenius norm"),
        (lambda w, r: w * _rho(w) / r, "the factor is upside down"),
        (lambda w, r: w.abs() * r / _rho(w), "the signs were lost"),
        (lambda w, r: w * r, "has spectral radius"),
        (lambda w, r: w.mul_(r / _rho(w)), "changed w in place"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_scalings_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_scale_to_spectral_radius(wrong)


def test_reference_scaling_passes():
    check_scale_to_spectral_radius(dale.scale_to_spectral_radius)
    check_scale_to_spectral_radius(lambda w, r: w * (r / _rho(w)), seed=8)


def test_checkers_write_nothing_to_stderr(capfd):
    check_dale_signs(dale.dale_signs)
    check_sign_matrix(dale.sign_matrix)
    check_dale_weight(dale.dale_weight)
    check_balance_ei(dale.balance_ei)
    check_scale_to_spectral_radius(dale.scale_to_spectral_radius)
    assert capfd.readouterr().err == ""

"""The assignment-02 checkers: the reference and correct variants pass at several seeds;
each plausible mistake is rejected with its own message and mistake id, in the student's
terms."""

from __future__ import annotations

import functools

import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects

from course_lib import connectivity, dale
from course_lib.checks import dales_law

# The catalogue builds many cases on the reference; a submission may not (tested below).
check_dale_signs = functools.partial(dales_law.check_dale_signs, allow_reference=True)
check_sign_matrix = functools.partial(dales_law.check_sign_matrix, allow_reference=True)
check_dale_weight = functools.partial(dales_law.check_dale_weight, allow_reference=True)
check_balance_ei = functools.partial(dales_law.check_balance_ei, allow_reference=True)
check_scale_to_spectral_radius = functools.partial(dales_law.check_scale_to_spectral_radius,
                                                   allow_reference=True)

SEEDS = (0, 2027, 58)


# ------------------------------------------------------------------ part 1: signs and D


def loop_signs(n_exc, n_inh):
    signs = torch.empty(n_exc + n_inh)
    for k in range(n_exc + n_inh):
        signs[k] = 1.0 if k < n_exc else -1.0
    return signs


def where_signs(n_exc, n_inh):
    return torch.where(torch.arange(n_exc + n_inh) < n_exc, 1.0, -1.0)


def loop_d(signs):
    d = torch.zeros(len(signs), len(signs), dtype=signs.dtype)  # float32 D breaks W64 @ D
    for k, sign in enumerate(signs):
        d[k, k] = sign
    return d


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_signs_and_sign_matrices_pass(seed):
    for fn in (dale.dale_signs, loop_signs, where_signs):
        check_dale_signs(fn, seed=seed)
    for fn in (dale.sign_matrix, torch.diag, loop_d, lambda s: torch.eye(len(s)) * s,
               torch.diag_embed):
        check_sign_matrix(fn, seed=seed)


SIGN_MISTAKES = [
    (lambda e, i: torch.cat([-torch.ones(i), torch.ones(e)]), "dales_law.inhibitory_first",
     "puts the inhibitory units first"),
    (lambda e, i: torch.cat([torch.ones(e), torch.zeros(i)]), "dales_law.inhibitory_sign_zero",
     "an inhibitory unit has sign -1, not 0"),
    (lambda e, i: torch.diag(dale.dale_signs(e, i)), "dales_law.signs_not_vector",
     r"should be \(5,\): one sign per unit"),
    (lambda e, i: torch.cat([torch.ones(e + 1), -torch.ones(i - 1)]),
     "dales_law.wrong_number_of_signs", "should have n_exc = 3"),
    (lambda e, i: torch.cat([torch.ones(e), -2 * torch.ones(i)]),
     "dales_law.signs_not_plus_minus_one", r"must contain only \+1 and -1"),
    (lambda e, i: dale.dale_signs(e, i).roll(1), "dales_law.signs_wrong_order",
     r"should be 3 times \+1 followed by 2 times -1"),
    (lambda e, i: torch.tensor([1] * e + [-1] * i), "common.wrong_dtype", "torch.int64"),
    (lambda e, i: torch.tensor([1.0] * e + [-1.0] * i, dtype=torch.float64), "common.wrong_dtype",
     "torch.float64"),
    (lambda e, i: torch.cat([torch.ones(e), -torch.ones(max(i, 1))]), "common.wrong_shape",
     r"dale_signs\(5, 0\) has shape \(6,\)"),
    (lambda e, i: torch.cat([torch.ones(max(e, 1)), -torch.ones(i)]), "common.wrong_shape",
     r"dale_signs\(0, 3\) has shape \(4,\)"),
    (lambda e, i: dale.dale_signs(e, i).tolist(), "common.wrong_type", "got builtins.list"),
    (lambda e, i: dale.dale_signs(e, i).as_subclass(AlwaysEqual), "common.tensor_subclass",
     "subclass"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), SIGN_MISTAKES)
def test_wrong_signs_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_dale_signs, wrong, mistake, message)


def fill_diagonal_in_place(signs):
    d = torch.zeros(len(signs), len(signs))
    d.diagonal().copy_(signs.abs_())
    return d


D_MISTAKES = [
    (lambda s: s, "dales_law.d_not_square", r"should be \(5, 5\): D is a square diagonal"),
    (lambda s: s[:, None].repeat(1, len(s)), "dales_law.d_off_diagonal", "off the diagonal"),
    (lambda s: s[None, :].repeat(len(s), 1), "dales_law.d_off_diagonal", "off the diagonal"),
    (lambda s: torch.eye(len(s)), "dales_law.d_identity", "returned the identity"),
    (lambda s: -torch.diag(s), "dales_law.d_signs_inverted", "the signs inverted"),
    (lambda s: torch.diag(s.clamp(max=0.5)), "dales_law.d_wrong_diagonal",
     r"should be diag\(signs\); entry"),
    (lambda s: torch.diag(s).long(), "common.wrong_dtype", "torch.int64"),
    (lambda s: torch.diag(s).float(), "common.wrong_dtype",
     "has dtype torch.float32 but the signs are torch.float64"),
    (lambda s: torch.diag(s).to_sparse(), "common.sparse", "sparse"),
    (fill_diagonal_in_place, "common.in_place", "changed its argument signs in place"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), D_MISTAKES)
def test_wrong_sign_matrices_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_sign_matrix, wrong, mistake, message)


# ------------------------------------------------------------------ part 2: effective weight


def loop_weight(w, s):
    out = torch.zeros_like(w)
    for j in range(w.shape[1]):
        out[:, j] = torch.clamp(w[:, j], min=0) * s[j]
    return out


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_weights_pass(seed):
    for fn in (dale.dale_weight, lambda w, s: torch.relu(w) @ torch.diag(s),
               lambda w, s: w.clamp(min=0) * s, lambda w, s: torch.einsum("ij,j->ij", w.relu(), s),
               lambda w, s: torch.where(w > 0, w, 0.0) * s, loop_weight):
        check_dale_weight(fn, seed=seed)


def relu_in_place(w, s):
    return torch.relu_(w) * s


WEIGHT_MISTAKES = [
    (lambda w, s: torch.diag(s) @ torch.relu(w), "dales_law.rows_not_columns",
     r"applied to the rows \(postsynaptic units\)"),
    (lambda w, s: s[:, None] * torch.relu(w), "dales_law.rows_not_columns",
     r"multiplies column j: relu\(w_raw\) @ D"),
    (lambda w, s: w.abs() * s, "dales_law.abs_not_relu", "use relu, not abs"),
    (lambda w, s: w * s, "dales_law.not_rectified", "were not rectified"),
    (lambda w, s: torch.relu(w @ torch.diag(s)), "dales_law.rectified_after_signs",
     "rectify first, then apply the signs"),
    (lambda w, s: torch.relu(w), "dales_law.signs_missing", "the signs were not applied"),
    (lambda w, s: -torch.relu(w) * s, "dales_law.signs_inverted", "the signs are inverted"),
    (lambda w, s: (torch.relu(w) * s).detach(), "common.no_gradient", "no gradient flows"),
    (lambda w, s: torch.relu(w.detach()) * s + 0 * w, "dales_law.wrong_gradient",
     "wrong gradient with respect to w_raw"),
    (lambda w, s: torch.tensor((torch.relu(w) * s).tolist(), dtype=w.dtype),
     "common.no_gradient", "no gradient flows"),
    (relu_in_place, "common.in_place", "changed its argument w in place"),
    (lambda w, s: torch.relu(w).T * s, "dales_law.weight_wrong", r"should be relu\(w_raw\)"),
    (lambda w, s: torch.relu(w) * s + 0.01, "dales_law.weight_wrong",
     r"should be relu\(w_raw\) @ diag\(signs\); entry"),
    (lambda w, s: (torch.relu(w) * s).double(), "common.wrong_dtype",
     "dtype torch.float64 for a torch.float32 w_raw"),
    (lambda w, s: (torch.relu(w) * s).float(), "common.wrong_dtype",
     "dtype torch.float32 for a torch.float64 w_raw"),
    (lambda w, s: torch.relu(w) * torch.where(s > 0, 1.0, -1.0)[: w.shape[0]],
     "common.raised", "raised RuntimeError"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), WEIGHT_MISTAKES)
def test_wrong_weights_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_dale_weight, wrong, mistake, message)


def test_a_weight_that_only_works_for_square_matrices_is_caught():
    def square_only(w, s):
        n = w.shape[0]
        return torch.relu(w) @ torch.diag(s[:n])

    rejects(check_dale_weight, square_only, "common.raised", "raised RuntimeError")


# ------------------------------------------------------------------ part 3: balance


def loop_balance(w, s):
    out = w.clone()
    for i in range(w.shape[0]):
        e = sum(w[i, j] for j in range(w.shape[1]) if s[j] > 0)
        inh = sum(w[i, j] for j in range(w.shape[1]) if s[j] < 0)
        for j in range(w.shape[1]):
            if s[j] < 0:
                out[i, j] = w[i, j] * e / inh
    return out


def sliced_balance(w, s):
    """Uses the course's convention that excitatory units come first."""
    n_exc = int((s > 0).sum())
    e, i = w[:, :n_exc].sum(1, keepdim=True), w[:, n_exc:].sum(1, keepdim=True)
    return torch.cat([w[:, :n_exc], w[:, n_exc:] * e / i], dim=1)


def where_balance(w, s):
    e = (w * (s > 0)).sum(1, keepdim=True)
    i = (w * (s < 0)).sum(1, keepdim=True)
    return torch.where(s < 0, w * (e / i), w)


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_balances_pass(seed):
    for fn in (dale.balance_ei, loop_balance, sliced_balance, where_balance):
        check_balance_ei(fn, seed=seed)


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


def guarded_balance(w, s):
    """Leaves a row without excitation unchanged instead of scaling its inhibition to 0."""
    e, i = w[:, s > 0].sum(1), w[:, s < 0].sum(1)
    out = w.clone()
    out[:, s < 0] *= torch.where(e > 0, e / i, 1.0)[:, None]
    return out


BALANCE_MISTAKES = [
    (scale_excitation, "dales_law.balance_scaled_excitation", "rescale only the inhibitory"),
    (inverted_ratio, "dales_law.balance_factor_inverted", "the factor is inverted"),
    (by_columns, "dales_law.balance_columns", "balance each row"),
    (one_factor, "dales_law.balance_one_factor", r"each row \(each postsynaptic unit\) needs"),
    (lambda w, s: dale.balance_ei(w, s) * s, "dales_law.balance_signed",
     "return the non-negative magnitudes"),
    (in_place_balance, "common.in_place", "changed its argument w in place"),
    (lambda w, s: w, "dales_law.not_balanced", "is not balanced: row"),
    (lambda w, s: dale.balance_ei(w, s) - 0.1, "dales_law.balance_negative",
     "returned negative entries"),
    (lambda w, s: dale.balance_ei(w, s) * 1.1, "dales_law.balance_wrong_factor",
     "is balanced but differs from the expected result"),
    (guarded_balance, "dales_law.not_balanced", "unit 1 receives no excitation.*row 1"),
    (lambda w, s: dale.balance_ei(w, s).double(), "common.wrong_dtype",
     "dtype torch.float64 for a torch.float32 w_pos"),
    (lambda w, s: dale.balance_ei(w, s).numpy(), "common.wrong_type", "numpy.ndarray"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), BALANCE_MISTAKES)
def test_wrong_balances_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_balance_ei, wrong, mistake, message)


# ------------------------------------------------------------------ part 4: spectral radius


def _rho(w):
    return torch.linalg.eigvals(w).abs().max()


def power_iteration_free(w, r):
    """Correct: the modulus written out from real and imaginary parts, float64 inside."""
    eig = torch.linalg.eigvals(w.double())
    rho = (eig.real**2 + eig.imag**2).sqrt().max()
    return (w.double() * (r / rho)).to(w.dtype)


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_scalings_pass(seed):
    for fn in (dale.scale_to_spectral_radius, lambda w, r: w * (r / _rho(w)),
               lambda w, r: r * w / _rho(w).item(), power_iteration_free):
        check_scale_to_spectral_radius(fn, seed=seed)


RADIUS_MISTAKES = [
    (lambda w, r: w * r / torch.linalg.matrix_norm(w, 2), "dales_law.radius_singular_value",
     "largest singular value"),
    (lambda w, r: w * r / torch.linalg.eigvals(w).real.max(), "dales_law.radius_real_part",
     "real parts of the eigenvalues"),
    (lambda w, r: w * r / torch.linalg.eigvals(w).real.abs().max(),
     "dales_law.radius_real_part", "real parts of the eigenvalues"),
    (lambda w, r: w * r / torch.linalg.eigvalsh(w).abs().max(), "dales_law.radius_eigvalsh",
     "eigvalsh assumes a symmetric"),
    (lambda w, r: w * r / w.abs().max(), "dales_law.radius_max_entry", r"largest \|entry\|"),
    (lambda w, r: w * r / torch.linalg.matrix_norm(w), "dales_law.radius_frobenius",
     "Frobenius norm"),
    (lambda w, r: w * _rho(w) / r, "dales_law.radius_factor_inverted", "upside down"),
    (lambda w, r: w.abs() * r / _rho(w), "dales_law.radius_signs_lost", "the signs were lost"),
    (lambda w, r: w * r, "dales_law.radius_wrong", "has spectral radius"),
    (lambda w, r: (w * (r / _rho(w))).T, "dales_law.radius_not_one_factor",
     "right spectral radius but is not w times one positive factor"),
    (lambda w, r: w * r / torch.linalg.eigvals(w)[0], "dales_law.radius_complex_result",
     "returned a complex matrix"),
    (lambda w, r: w.mul_(r / _rho(w)), "common.in_place", "changed its argument w in place"),
    (lambda w, r: (w * (r / _rho(w))).double(), "common.wrong_dtype",
     "dtype torch.float64 for a torch.float32 w"),
    (not_implemented, "common.not_implemented", "is not implemented yet"),
]


@pytest.mark.parametrize(("wrong", "mistake", "message"), RADIUS_MISTAKES)
def test_wrong_scalings_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_scale_to_spectral_radius, wrong, mistake, message)


def test_checkers_write_nothing_to_stderr(capfd):
    check_dale_signs(dale.dale_signs)
    check_sign_matrix(dale.sign_matrix)
    check_dale_weight(dale.dale_weight)
    check_balance_ei(dale.balance_ei)
    check_scale_to_spectral_radius(dale.scale_to_spectral_radius)
    assert capfd.readouterr().err == ""


@pytest.mark.parametrize("seed", SEEDS)
def test_correct_float32_computations_pass_on_float64_cases(seed):
    """Issue 13 §2: computing in float32 and handing back the caller's dtype is correct."""

    def in_float32(fn):
        def wrapped(w, other):
            return fn(w.float(), other.float() if torch.is_tensor(other) else other).to(w.dtype)

        return wrapped

    check_dale_weight(in_float32(dale.dale_weight), seed=seed)
    check_balance_ei(in_float32(dale.balance_ei), seed=seed)
    check_scale_to_spectral_radius(in_float32(dale.scale_to_spectral_radius), seed=seed)


@pytest.mark.parametrize(
    ("check", "submission"),
    [
        (dales_law.check_dale_signs, dale.dale_signs),
        (dales_law.check_sign_matrix, lambda s: dale.sign_matrix(s)),
        (dales_law.check_dale_weight, lambda w, s: dale.dale_weight(w, s)),
        (dales_law.check_balance_ei, dale.balance_ei),
        (dales_law.check_scale_to_spectral_radius,
         lambda w, r: w * (r / connectivity.spectral_radius(w))),
    ],
)
def test_a_submission_may_not_use_the_reference(check, submission):
    rejects(check, submission, "dales_law.uses_reference", "reference implementation")


def test_own_code_passes_without_the_reference_flag():
    dales_law.check_dale_signs(loop_signs)
    dales_law.check_sign_matrix(loop_d)
    dales_law.check_dale_weight(loop_weight)
    dales_law.check_balance_ei(loop_balance)
    dales_law.check_scale_to_spectral_radius(power_iteration_free)

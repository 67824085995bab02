"""Checkers for assignment 02_dales_law.

The references are in `course_lib.dale` (Song, Yang & Wang 2016, "Dale's principle")::

    s = (+1, ..., +1, -1, ..., -1)        n_exc excitatory units first, then n_inh inhibitory
    D = diag(s)
    W_eff = [W_raw]_+ D                    the sign of the presynaptic unit acts on columns
    balance: scale each row's inhibitory magnitudes so that sum_E W_ij = sum_I W_ij
    W -> W * rho_target / rho(W)           rho = largest |eigenvalue| (spectral radius)
"""

from __future__ import annotations

import torch

from course_lib._validate import make_generator
from course_lib.checks._common import (
    as_tensor,
    call,
    close,
    fail,
    single_threaded,
    worst_entry,
)
from course_lib.connectivity import spectral_radius
from course_lib.dale import balance_ei, dale_weight

# ---------------------------------------------------------------- part 1: signs and D


@single_threaded
def check_dale_signs(dale_signs, seed: int = 0) -> None:
    """``dale_signs(n_exc, n_inh)``: +1 for the first n_exc units, -1 for the next n_inh."""
    rng = make_generator(seed)
    cases = [(3, 1), (4, 4), (1, 5)]
    for _ in range(3):
        cases.append(
            (
                int(torch.randint(1, 20, (1,), generator=rng)),
                int(torch.randint(1, 8, (1,), generator=rng)),
            )
        )
    for n_exc, n_inh in cases:
        what = f"dale_signs({n_exc}, {n_inh})"
        signs = as_tensor(call(dale_signs, n_exc, n_inh, what=what), what)
        n = n_exc + n_inh
        if tuple(signs.shape) != (n,):
            fail(
                f"{what} has shape {tuple(signs.shape)} but should be ({n},): one sign per unit, "
                "a vector (not a matrix)."
            )
        values = signs.detach().double()
        expected = torch.cat([torch.ones(n_exc), -torch.ones(n_inh)]).double()
        if torch.equal(values, expected):
            continue
        if bool((values == 0).any()) and bool(((values == 0) | (values == 1)).all()):
            fail(
                f"{what} contains 0s: an inhibitory unit has sign -1, not 0 (D multiplies "
                "its outgoing weights by -1 to make them inhibitory)."
            )
        if not bool(((values == 1) | (values == -1)).all()):
            fail(f"{what} must contain only +1 and -1, got {values.tolist()}.")
        if torch.equal(values, expected.flip(0)):
            fail(
                f"{what} puts the inhibitory units first: the convention is excitatory units "
                "0 .. n_exc-1 first (+1), then the n_inh inhibitory units (-1)."
            )
        if int((values == 1).sum()) != n_exc:
            fail(
                f"{what} has {int((values == 1).sum())} entries +1 but should have n_exc = "
                f"{n_exc} (and {n_inh} entries -1)."
            )
        fail(
            f"{what} should be {n_exc} times +1 followed by {n_inh} times -1, "
            f"got {values.tolist()}."
        )


@single_threaded
def check_sign_matrix(sign_matrix, seed: int = 0) -> None:
    """``sign_matrix(signs)``: the diagonal matrix D = diag(signs)."""
    rng = make_generator(seed)
    for n in (3, 5, int(torch.randint(4, 12, (1,), generator=rng))):
        signs = torch.where(torch.rand(n, generator=rng) < 0.6, 1.0, -1.0)
        signs[0], signs[-1] = 1.0, -1.0
        what = f"sign_matrix({signs.tolist()})"
        d = as_tensor(call(sign_matrix, signs.clone(), what=what), what)
        expected = torch.diag(signs)
        if tuple(d.shape) != (n, n):
            fail(
                f"{what} has shape {tuple(d.shape)} but should be ({n}, {n}): D is a square "
                "diagonal matrix with the signs on its diagonal (torch.diag)."
            )
        values = d.detach().double()
        if close(values, expected):
            continue
        off_diagonal = values - torch.diag(torch.diagonal(values))
        if off_diagonal.any():
            fail(
                f"{what} has non-zero entries off the diagonal: D = diag(signs) is zero "
                "everywhere except its diagonal."
            )
        if close(values, torch.eye(n)):
            fail(f"{what} returned the identity: put the signs (+1 and -1) on the diagonal.")
        fail(f"{what} should be diag(signs); {worst_entry(values, expected)}.")


# ---------------------------------------------------------------- part 2: effective weight


def _dale_mistakes(w, s):
    relu = torch.relu(w)
    return [
        (
            "the signs were applied to the rows (postsynaptic units). Dale's sign belongs to "
            "the presynaptic unit j, so it multiplies column j: relu(w_raw) @ D, "
            "not D @ relu(w_raw)",
            s[:, None] * relu if w.shape[0] == s.shape[0] else None,
        ),
        (
            "use relu, not abs: a raw weight below zero is a silent synapse (0); abs would "
            "turn it into a positive weight of the same size",
            w.abs() * s,
        ),
        ("the raw weights were not rectified: apply relu to w_raw before the signs", w * s),
        (
            "rectify first, then apply the signs: relu(w_raw @ D) sets every inhibitory "
            "weight to zero",
            torch.relu(w * s),
        ),
        ("the signs were not applied: multiply relu(w_raw) by D", relu),
        (
            "the signs are inverted: excitatory columns must be >= 0, inhibitory ones <= 0",
            -relu * s,
        ),
    ]


@single_threaded
def check_dale_weight(dale_weight_fn, seed: int = 0) -> None:
    """``dale_weight(w_raw, signs)`` = relu(w_raw) @ diag(signs), differentiable, no in-place."""
    rng = make_generator(seed)
    shapes = [(6, 6), (8, 8), (5, 7)]
    for n_post, n_pre in shapes:
        w = torch.randn(n_post, n_pre, generator=rng, dtype=torch.float64)
        s = torch.where(torch.rand(n_pre, generator=rng) < 0.6, 1.0, -1.0).double()
        s[0], s[-1] = 1.0, -1.0
        what = f"dale_weight(w_raw, signs) with w_raw of shape ({n_post}, {n_pre})"
        before = w.clone()
        leaf = w.clone().requires_grad_(True)
        out = as_tensor(call(dale_weight_fn, leaf, s.clone(), what=what), what)
        if not torch.equal(leaf.detach(), before):
            fail(f"{what} changed w_raw in place: compute a new tensor (torch.relu, not relu_).")
        expected = dale_weight(before, s)
        if tuple(out.shape) != (n_post, n_pre):
            fail(
                f"{what} returned shape {tuple(out.shape)}; the effective weight has the shape "
                f"of w_raw, ({n_post}, {n_pre}) = (post, pre)."
            )
        if not close(out.detach(), expected):
            for message, wrong in _dale_mistakes(before, s):
                if wrong is not None and close(out.detach(), wrong):
                    fail(f"{what}: {message}.")
            fail(
                f"{what} should be relu(w_raw) @ diag(signs); "
                f"{worst_entry(out.detach(), expected)}."
            )
        if not out.requires_grad:
            fail(
                f"no gradient flows through {what}: the constraint is applied in the forward "
                "pass, so do not detach w_raw or use torch.no_grad."
            )
        out.sum().backward()
        expected_grad = (before > 0).double() * s
        if leaf.grad is None or not close(leaf.grad, expected_grad):
            fail(
                f"the gradient of sum({what}) with respect to w_raw should be D's sign where "
                "w_raw > 0 and 0 where the synapse is rectified to zero."
            )


# ---------------------------------------------------------------- part 3: E/I balance


def _random_magnitudes(n, rng, *, signs):
    w = torch.rand(n, n, generator=rng, dtype=torch.float64)
    w = w * (torch.rand(n, n, generator=rng) < 0.7).double()
    w.fill_diagonal_(0.0)
    inh = (signs < 0).nonzero().squeeze(1)
    exc = (signs > 0).nonzero().squeeze(1)
    for row in range(n):  # every unit gets at least one E and one I input (not itself)
        for group in (inh, exc):
            others = group[group != row]
            pick = others[int(torch.randint(len(others), (1,), generator=rng))]
            w[row, pick] = max(float(w[row, pick]), 0.5)
    return w


def _balance_mistakes(w, s):
    exc, inh = s > 0, s < 0
    e_row, i_row = w[:, exc].sum(1), w[:, inh].sum(1)
    ratio = torch.where(i_row > 0, e_row / i_row.clamp_min(1e-30), 0.0)
    scale_exc = w.clone()
    scale_exc[:, exc] *= torch.where(e_row > 0, i_row / e_row.clamp_min(1e-30), 0.0)[:, None]
    inverted = w.clone()
    inverted[:, inh] *= torch.where(e_row > 0, 1 / ratio.clamp_min(1e-30), 0.0)[:, None]
    e_col, i_col = w[exc, :].sum(0), w[inh, :].sum(0)
    columns = w.clone()
    columns[inh, :] *= torch.where(i_col > 0, e_col / i_col.clamp_min(1e-30), 0.0)[None, :]
    one_factor = w.clone()
    one_factor[:, inh] *= w[:, exc].sum() / w[:, inh].sum()
    reference = balance_ei(w, s)
    return [
        (
            "every row sums to zero, but the excitatory weights changed: keep the excitatory "
            "magnitudes and rescale only the inhibitory ones",
            scale_exc,
        ),
        (
            "the factor is inverted: multiply the inhibitory weights of row i by "
            "(excitatory sum of row i) / (inhibitory sum of row i)",
            inverted,
        ),
        (
            "balance each row (all the inputs of one postsynaptic unit), not each column: "
            "weights are (post, pre)",
            columns,
        ),
        (
            "one factor for the whole matrix balances the network on average only: each row "
            "(each postsynaptic unit) needs its own factor",
            one_factor,
        ),
        (
            "return the non-negative magnitudes W_+ (the signs are applied later, by "
            "dale_weight), not the signed matrix W_+ D",
            reference * s,
        ),
    ]


@single_threaded
def check_balance_ei(balance_ei_fn, seed: int = 0) -> None:
    """``balance_ei(w_pos, signs)``: rescale each row's inhibitory magnitudes so that
    its excitatory and inhibitory sums are equal."""
    rng = make_generator(seed)
    for n, n_inh in ((6, 2), (10, 3), (int(torch.randint(8, 16, (1,), generator=rng)), 4)):
        s = torch.cat([torch.ones(n - n_inh), -torch.ones(n_inh)]).double()
        w = _random_magnitudes(n, rng, signs=s)
        what = f"balance_ei(w_pos, signs) for {n - n_inh} E and {n_inh} I units"
        before = w.clone()
        out = as_tensor(call(balance_ei_fn, w, s.clone(), what=what), what)
        if not torch.equal(w, before):
            fail(f"{what} changed w_pos in place: work on a copy (w_pos.clone()).")
        if tuple(out.shape) != (n, n):
            fail(f"{what} returned shape {tuple(out.shape)}; it should be ({n}, {n}).")
        out = out.detach().double()
        expected = balance_ei(before, s)
        if close(out, expected):
            continue
        for message, wrong in _balance_mistakes(before, s):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        net = (out * s).sum(1)
        if (out < 0).any():
            fail(f"{what} returned negative entries: it returns magnitudes (>= 0).")
        if not torch.allclose(net, torch.zeros_like(net), atol=1e-6):
            row = int(net.abs().argmax())
            fail(
                f"{what} is not balanced: row {row} has excitatory sum "
                f"{float(out[row, s > 0].sum()):.4g} but inhibitory sum "
                f"{float(out[row, s < 0].sum()):.4g}; they must be equal."
            )
        fail(
            f"{what} is balanced but differs from the reference: keep the excitatory weights "
            "and multiply each row's inhibitory weights by one factor; "
            f"{worst_entry(out, expected)}."
        )


# ---------------------------------------------------------------- part 4: spectral radius


def _radius_mistakes(w, radius):
    eig = torch.linalg.eigvals(w)
    return [
        (
            "you divided by the largest singular value (the matrix 2-norm, torch.linalg."
            "matrix_norm(w, 2)); the spectral radius is the largest |eigenvalue|",
            w * radius / torch.linalg.matrix_norm(w, 2),
        ),
        (
            "you used the largest real part of the eigenvalues; the eigenvalues of a "
            "non-symmetric matrix are complex: use their modulus, eigvals(w).abs().max()",
            w * radius / eig.real.max(),
        ),
        (
            "torch.linalg.eigvalsh assumes a symmetric matrix, and a Dale weight matrix is "
            "not symmetric: use torch.linalg.eigvals and take the modulus",
            w * radius / torch.linalg.eigvalsh(w).abs().max(),
        ),
        (
            "you divided by the largest |entry|, not by the spectral radius (largest |eigenvalue|)",
            w * radius / w.abs().max(),
        ),
        (
            "you divided by the Frobenius norm, not by the spectral radius (largest |eigenvalue|)",
            w * radius / torch.linalg.matrix_norm(w),
        ),
        (
            "the factor is upside down: multiply by radius / rho(w), not rho(w) / radius",
            w * eig.abs().max() / radius,
        ),
        (
            "the signs were lost: scale the signed matrix by a positive factor, "
            "do not take abs() of it",
            w.abs() * radius / eig.abs().max(),
        ),
    ]


@single_threaded
def check_scale_to_spectral_radius(scale_fn, seed: int = 0) -> None:
    """``scale_to_spectral_radius(weight, radius)`` = weight * radius / max|eig(weight)|."""
    rng = make_generator(seed)
    for n, n_inh in ((6, 2), (12, 3), (int(torch.randint(8, 20, (1,), generator=rng)), 4)):
        s = torch.cat([torch.ones(n - n_inh), -torch.ones(n_inh)]).double()
        w = balance_ei(_random_magnitudes(n, rng, signs=s), s) * s
        w = w + 0.3 * torch.randn(n, n, generator=rng, dtype=torch.float64).abs() * s
        radius = round(float(torch.rand(1, generator=rng)) * 1.5 + 0.5, 2)
        what = f"scale_to_spectral_radius(w, radius={radius}) for a {n} x {n} E/I matrix"
        before = w.clone()
        out = as_tensor(call(scale_fn, w, radius, what=what), what)
        if not torch.equal(w, before):
            fail(f"{what} changed w in place: return a new tensor.")
        if tuple(out.shape) != (n, n):
            fail(f"{what} returned shape {tuple(out.shape)}; it should be ({n}, {n}).")
        out = out.detach().double()
        expected = before * (radius / spectral_radius(before))
        if close(out, expected, tol=1e-5):
            continue
        for message, wrong in _radius_mistakes(before, radius):
            if close(out, wrong, tol=1e-5):
                fail(f"{what}: {message}.")
        got = spectral_radius(out)
        if abs(got - radius) > 1e-4:
            fail(
                f"{what} has spectral radius {got:.4g}, not {radius}: the spectral radius is "
                "the largest |eigenvalue| (torch.linalg.eigvals(w).abs().max())."
            )
        fail(
            f"{what} has the right spectral radius but is not w times one positive factor "
            f"(the signs and the E/I balance must be kept); {worst_entry(out, expected)}."
        )

"""Checkers for assignment 02_dales_law.

The references are in `course_lib.dale` (Song, Yang & Wang 2016, "Dale's principle")::

    s = (+1, ..., +1, -1, ..., -1)        n_exc excitatory units first, then n_inh inhibitory
    D = diag(s)
    W_eff = [W_raw]_+ D                    the sign of the presynaptic unit acts on columns
    balance: scale each row's inhibitory magnitudes so that sum_E W_ij = sum_I W_ij
    W -> W * rho_target / rho(W)           rho = largest |eigenvalue| (spectral radius)

The expected values are computed here, with private references to the torch functions
taken at import (an answer cell that patches ``torch.relu`` changes nothing here). Each
checker also runs the example its test cell prints, so that printed value is asserted.
A submission that runs the course's reference code fails with ``dales_law.uses_reference``.
"""

from __future__ import annotations

import torch

from course_lib import connectivity, dale
from course_lib.checks._common import (
    call,
    close,
    fail,
    finite_gradient,
    own_work,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)

# Private references (see the module docstring).
_tensor = torch.tensor
_rand = torch.rand
_randn = torch.randn
_randint = torch.randint
_relu = torch.relu
_where = torch.where
_cat = torch.cat
_ones = torch.ones
_eye = torch.eye
_diag = torch.diag
_equal = torch.equal
_grad = torch.autograd.grad
_eigvals = torch.linalg.eigvals
_eigvalsh = torch.linalg.eigvalsh
_matrix_norm = torch.linalg.matrix_norm
_float32 = torch.float32
_float64 = torch.float64


_REFERENCES = (dale.dale_signs, dale.sign_matrix, dale.dale_weight, dale.balance_ei,
               dale.scale_to_spectral_radius, connectivity.spectral_radius)


def _random_signs(n: int, rng, dtype=_float64) -> torch.Tensor:
    """Random +1/-1 signs, both present when n >= 2 (not sorted: D and relu(W) D work for
    any order)."""
    signs = _where(_rand(n, generator=rng) < 0.6, 1.0, -1.0).to(dtype)
    signs[0] = 1.0
    if n > 1:
        signs[-1] = -1.0
    return signs


_own_work = own_work("dales_law", _REFERENCES)


def _dtype_name(dtype) -> str:
    return str(dtype).replace("torch.", "")


# ---------------------------------------------------------------- part 1: signs and D


def _expected_signs(n_exc: int, n_inh: int) -> torch.Tensor:
    return _cat([_ones(n_exc, dtype=_float64), -_ones(n_inh, dtype=_float64)])


def _check_signs_values(values, n_exc, n_inh, what) -> None:
    expected = _expected_signs(n_exc, n_inh)
    if _equal(values, expected):
        return
    if bool(((values == 0) | (values == 1)).all()) and bool((values == 0).any()):
        fail("dales_law.inhibitory_sign_zero",
             f"{what} contains 0s: an inhibitory unit has sign -1, not 0 (D multiplies its "
             "outgoing weights by -1 to make them inhibitory).")
    if not bool(((values == 1) | (values == -1)).all()):
        fail("dales_law.signs_not_plus_minus_one",
             f"{what} must contain only +1 and -1, got {values.tolist()}.")
    if _equal(values, expected.flip(0)):
        fail("dales_law.inhibitory_first",
             f"{what} puts the inhibitory units first: the convention is the n_exc excitatory "
             "units first (+1), then the n_inh inhibitory units (-1).")
    if int((values == 1).sum()) != n_exc:
        fail("dales_law.wrong_number_of_signs",
             f"{what} has {int((values == 1).sum())} entries +1 but should have n_exc = "
             f"{n_exc} (and n_inh = {n_inh} entries -1).")
    fail("dales_law.signs_wrong_order",
         f"{what} should be {n_exc} times +1 followed by {n_inh} times -1, got "
         f"{values.tolist()}.")


@single_threaded
@_own_work
def check_dale_signs(dale_signs, seed: int = 0) -> None:
    """``dale_signs(n_exc, n_inh)``: a float32 vector, +1 for the first n_exc units, -1 for
    the next n_inh; n_exc = 0 or n_inh = 0 included."""
    rng = _generator(seed)
    cases = [(3, 2), (3, 1), (4, 4), (1, 5), (5, 0), (0, 3), (1, 0)]
    for _ in range(3):
        cases.append((int(_randint(1, 20, (1,), generator=rng)),
                      int(_randint(1, 8, (1,), generator=rng))))
    for n_exc, n_inh in cases:
        what = f"dale_signs({n_exc}, {n_inh})"
        signs = tensor(call(dale_signs, n_exc, n_inh, what=what), what)
        n = n_exc + n_inh
        if tuple(signs.shape) != (n,):
            if signs.dim() == 2:
                fail("dales_law.signs_not_vector",
                     f"{what} has shape {tuple(signs.shape)} but should be ({n},): one sign "
                     "per unit, a vector (D = diag(signs) is the next function's job).")
            fail("common.wrong_shape", f"{what} has shape {tuple(signs.shape)} but should be "
                 f"({n},): one sign per unit, n_exc + n_inh = {n}.")
        _check_signs_values(signs.to(_float64), n_exc, n_inh, what)
        if signs.dtype != _float32:
            fail("common.wrong_dtype",
                 f"{what} has dtype {signs.dtype} but should be torch.float32 (torch.ones' "
                 "default): the signs multiply float32 weights; integer signs break that "
                 "arithmetic and float64 ones turn the weights into float64.")


def _check_one_d(sign_matrix, signs, what) -> None:
    n = signs.shape[0]
    d = tensor(call(sign_matrix, signs.clone(), what=what), what)
    if tuple(d.shape) != (n, n):
        fail("dales_law.d_not_square",
             f"{what} has shape {tuple(d.shape)} but should be ({n}, {n}): D is a square "
             "diagonal matrix with the signs on its diagonal (torch.diag).")
    values = d.to(_float64)
    expected = _diag(signs.to(_float64))
    if not _equal(values, expected):
        if (values - _diag(values.diagonal())).any():
            fail("dales_law.d_off_diagonal",
                 f"{what} has non-zero entries off the diagonal: D = diag(signs) is zero "
                 "everywhere except its diagonal.")
        if _equal(values, _eye(n, dtype=_float64)):
            fail("dales_law.d_identity",
                 f"{what} returned the identity: put the signs (+1 and -1) on the diagonal.")
        if _equal(values, -expected):
            fail("dales_law.d_signs_inverted",
                 f"{what} has the signs inverted: D[j, j] = signs[j], +1 for excitatory unit "
                 "j and -1 for an inhibitory one.")
        fail("dales_law.d_wrong_diagonal",
             f"{what} should be diag(signs); {worst_entry(values, expected)}.")
    if d.dtype != signs.dtype:
        fail("common.wrong_dtype",
             f"{what} has dtype {d.dtype} but the signs are {signs.dtype}: build D in the "
             "dtype of the signs (torch.diag(signs) does), so it multiplies the weights.")


@single_threaded
@_own_work
def check_sign_matrix(sign_matrix, seed: int = 0) -> None:
    """``sign_matrix(signs)``: the diagonal matrix D = diag(signs), in the signs' dtype."""
    rng = _generator(seed)
    cases = [_tensor([1.0, 1.0, 1.0, -1.0, -1.0])]  # the printed example
    for n in (3, 5, int(_randint(4, 12, (1,), generator=rng))):
        cases.append(_random_signs(n, rng, _float32))
    cases += [_ones(4), -_ones(2), -_ones(1)]
    cases.append(_random_signs(6, rng, _float64))  # "in the dtype of signs": not only float32
    for signs in cases:
        kind = "" if signs.dtype == _float32 else f", dtype={signs.dtype}"
        what = f"sign_matrix({signs.tolist()}{kind})"
        _check_one_d(sign_matrix, signs, what)


# ---------------------------------------------------------------- part 2: effective weight


def _dale_weight(w, s):
    return _relu(w) * s


def _dale_mistakes(w, s):
    """(id, message, wrong value) for the plausible mistakes, in float64."""
    relu = _relu(w)
    mistakes = []
    if w.shape[0] == w.shape[1]:
        mistakes.append((
            "dales_law.rows_not_columns",
            "the signs were applied to the rows (postsynaptic units). Dale's sign belongs to "
            "the presynaptic unit j, so it multiplies column j: relu(w_raw) @ D, "
            "not D @ relu(w_raw)",
            s[:, None] * relu))
    return mistakes + [
        ("dales_law.abs_not_relu",
         "use relu, not abs: a raw weight below zero is a silent synapse (0); abs would turn "
         "it into a positive weight of the same size",
         w.abs() * s),
        ("dales_law.not_rectified",
         "the raw weights were not rectified: apply relu to w_raw before the signs", w * s),
        ("dales_law.rectified_after_signs",
         "rectify first, then apply the signs: relu(w_raw @ D) sets every inhibitory weight "
         "to zero",
         _relu(w * s)),
        ("dales_law.signs_missing", "the signs were not applied: multiply relu(w_raw) by D",
         relu),
        ("dales_law.signs_inverted",
         "the signs are inverted: excitatory columns must be >= 0, inhibitory ones <= 0",
         -relu * s),
    ]


def _weight_cases(rng):
    """(w_raw, signs, what): the printed example first, then square, non-square, one row,
    one column, all excitatory, all inhibitory, in float64 and float32."""
    cases = []
    shapes = [((6, 6), _float64, None), ((8, 8), _float64, None), ((5, 7), _float64, None),
              ((7, 4), _float32, None), ((1, 5), _float64, None), ((4, 1), _float64, 1.0),
              ((5, 5), _float64, 1.0), ((3, 6), _float32, -1.0)]
    for (n_post, n_pre), dtype, only in shapes:
        w = _randn(n_post, n_pre, generator=rng, dtype=_float64).to(dtype)
        s = _ones(n_pre, dtype=dtype) * only if only else _random_signs(n_pre, rng, dtype)
        kind = {None: "", 1.0: ", all excitatory", -1.0: ", all inhibitory"}[only]
        cases.append((w, s, f"dale_weight(w_raw, signs) with w_raw of shape ({n_post}, "
                            f"{n_pre}), {_dtype_name(dtype)}{kind}"))
    # the printed example, after two square cases (they tell rows from columns)
    example = (_tensor([[0.5, -1.0, 2.0], [-0.3, 0.4, 0.1]]), _tensor([1.0, 1.0, -1.0]))
    cases.insert(2, (*example, "dale_weight on the example above (expected [[0.5, 0, -2], "
                               "[0, 0.4, -0.1]])"))
    return cases


def _check_weight_value(fn, w, s, what) -> None:
    tol = 1e-6 if w.dtype == _float64 else 1e-5  # a float32 computation must pass too
    out = tensor(call(fn, w.clone(), s.clone(), what=what), what)
    if tuple(out.shape) != tuple(w.shape):
        fail("common.wrong_shape",
             f"{what} returned shape {tuple(out.shape)}; the effective weight has the shape "
             f"of w_raw, {tuple(w.shape)} = (post, pre).")
    if out.dtype != w.dtype:
        fail("common.wrong_dtype", f"{what} returned dtype {out.dtype} for a {w.dtype} "
             "w_raw: keep the dtype of w_raw.")
    exact_w, exact_s = w.to(_float64), s.to(_float64)
    expected = _dale_weight(exact_w, exact_s)
    if not close(out, expected, tol):
        for mistake, message, wrong in _dale_mistakes(exact_w, exact_s):
            if close(out, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        fail("dales_law.weight_wrong",
             f"{what} should be relu(w_raw) @ diag(signs); {worst_entry(out, expected)}.")


def _check_weight_gradient(fn, w, s, what) -> None:
    """Applied in the forward pass: the gradient is D's sign where w_raw > 0, else 0."""
    leaf = w.clone().requires_grad_(True)
    out = tensor(call(fn, leaf, s.clone(), what=what), what, keep_graph=True)
    if not out.requires_grad:
        fail("common.no_gradient",
             f"no gradient flows through {what}: the constraint is applied in the forward "
             "pass, so do not detach w_raw or use .data, numpy or torch.no_grad.")
    upstream = _randn(w.shape, generator=_generator(5), dtype=w.dtype)
    (gradient,) = _grad(out, leaf, upstream, allow_unused=True)
    gradient = finite_gradient(gradient, what)
    expected = upstream * (w > 0).to(w.dtype) * s
    if not close(gradient, expected, 1e-6):
        fail("dales_law.wrong_gradient",
             f"{what} has the right value but the wrong gradient with respect to w_raw "
             f"({worst_entry(gradient, expected)}): it should be the sign of D where w_raw > 0 "
             "and 0 where the synapse is rectified to zero.")


@single_threaded
@_own_work
def check_dale_weight(dale_weight_fn, seed: int = 0) -> None:
    """``dale_weight(w_raw, signs)`` = relu(w_raw) @ diag(signs) for any (post, pre) shape,
    in w_raw's dtype, differentiable, without in-place changes."""
    cases = _weight_cases(_generator(seed))
    for w, s, what in cases:  # values first: they name the mistake best
        _check_weight_value(dale_weight_fn, w, s, what)
    for w, s, what in cases:
        _check_weight_gradient(dale_weight_fn, w, s, what)


# ---------------------------------------------------------------- part 3: E/I balance


def _balance(w, s):
    """Each row's inhibitory entries times (excitatory sum / inhibitory sum) of that row."""
    inh = s < 0
    scale = w[:, ~inh].sum(1) / w[:, inh].sum(1)
    out = w.clone()
    out[:, inh] = out[:, inh] * scale[:, None]
    return out


def _random_magnitudes(n_post, n_pre, rng, signs):
    """Sparse non-negative magnitudes; every row has an E and an I input (a square matrix
    has no self-connection)."""
    w = _rand(n_post, n_pre, generator=rng, dtype=_float64)
    w = w * (_rand(n_post, n_pre, generator=rng) < 0.7).to(_float64)
    if n_post == n_pre:
        w.fill_diagonal_(0.0)
    inh = (signs < 0).nonzero().squeeze(1)
    exc = (signs > 0).nonzero().squeeze(1)
    for row in range(n_post):
        for group in (inh, exc):
            others = group[group != row] if n_post == n_pre else group
            pick = others[int(_randint(len(others), (1,), generator=rng))]
            w[row, pick] = max(float(w[row, pick]), 0.5)
    return w


def _balance_mistakes(w, s):
    exc, inh = s > 0, s < 0
    e_row, i_row = w[:, exc].sum(1), w[:, inh].sum(1)
    scale_exc = w.clone()
    scale_exc[:, exc] *= (i_row / e_row)[:, None]
    inverted = w.clone()
    inverted[:, inh] *= (i_row / e_row)[:, None]
    one_factor = w.clone()
    one_factor[:, inh] *= w[:, exc].sum() / w[:, inh].sum()
    mistakes = [
        ("dales_law.balance_scaled_excitation",
         "every row is balanced, but the excitatory weights changed: keep the excitatory "
         "magnitudes and rescale only the inhibitory ones",
         scale_exc),
        ("dales_law.balance_factor_inverted",
         "the factor is inverted: multiply the inhibitory weights of row i by "
         "(excitatory sum of row i) / (inhibitory sum of row i)",
         inverted),
        ("dales_law.balance_one_factor",
         "one factor for the whole matrix balances the network on average only: each row "
         "(each postsynaptic unit) needs its own factor",
         one_factor),
        ("dales_law.balance_signed",
         "return the non-negative magnitudes W_+ (the signs are applied later, by "
         "dale_weight), not the signed matrix W_+ D",
         _balance(w, s) * s),
    ]
    if w.shape[0] == w.shape[1]:
        e_col, i_col = w[exc, :].sum(0), w[inh, :].sum(0)
        columns = w.clone()
        columns[inh, :] *= (e_col / i_col)[None, :]
        mistakes.append((
            "dales_law.balance_columns",
            "balance each row (all the inputs of one postsynaptic unit), not each column: "
            "weights are (post, pre)",
            columns))
    return mistakes


def _balance_cases(rng):
    example = (_tensor([[0.0, 1.0, 2.0, 1.0], [3.0, 0.0, 1.0, 2.0], [1.0, 1.0, 0.0, 4.0]]),
               _tensor([1.0, 1.0, -1.0, -1.0]))
    cases = [(*example, "balance_ei on the example above (row 0: inhibitory entries times 1/3, "
                        "expected [[0, 1, 2/3, 1/3], [3, 0, 1, 2], [1, 1, 0, 2]])")]
    n_random = int(_randint(8, 16, (1,), generator=rng))
    for n_post, n_pre, n_inh, dtype in ((6, 6, 2, _float64), (10, 10, 3, _float64),
                                        (5, 8, 3, _float64), (9, 4, 1, _float64),
                                        (n_random, n_random, 4, _float64), (7, 7, 2, _float32)):
        s = _cat([_ones(n_pre - n_inh), -_ones(n_inh)]).to(_float64)
        w = _random_magnitudes(n_post, n_pre, rng, s)
        cases.append((w.to(dtype), s.to(dtype),
                      f"balance_ei(w_pos, signs) for a ({n_post}, {n_pre}) w_pos, "
                      f"{n_pre - n_inh} E and {n_inh} I presynaptic units, {_dtype_name(dtype)}"))
    cases.insert(3, cases.pop(0))  # the printed example after two square cases
    s = _cat([_ones(4), -_ones(2)]).to(_float64)
    w = _random_magnitudes(5, 6, rng, s)
    w[1, :4] = 0.0  # a unit without excitatory input: its inhibition scales to 0
    cases.append((w, s, "balance_ei(w_pos, signs) where unit 1 receives no excitation"))
    return cases


def _check_one_balance(fn, w, s, what) -> None:
    tol = 1e-6 if w.dtype == _float64 else 1e-5  # a float32 computation must pass too
    out = tensor(call(fn, w.clone(), s.clone(), what=what), what)
    if tuple(out.shape) != tuple(w.shape):
        fail("common.wrong_shape",
             f"{what} returned shape {tuple(out.shape)}; it should be {tuple(w.shape)}, the "
             "shape of w_pos.")
    if out.dtype != w.dtype:
        fail("common.wrong_dtype",
             f"{what} returned dtype {out.dtype} for a {w.dtype} w_pos: keep its dtype.")
    exact_w, exact_s = w.to(_float64), s.to(_float64)
    expected = _balance(exact_w, exact_s)
    if not close(out, expected, tol):
        for mistake, message, wrong in _balance_mistakes(exact_w, exact_s):
            if close(out, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        value = out.to(_float64)
        if (value < 0).any():
            fail("dales_law.balance_negative",
                 f"{what} returned negative entries: it returns magnitudes (>= 0).")
        net = (value * exact_s).sum(1)
        if not close(net, net * 0, tol):
            row = int(net.abs().argmax())
            fail("dales_law.not_balanced",
                 f"{what} is not balanced: row {row} has excitatory sum "
                 f"{float(value[row, exact_s > 0].sum()):.4g} but inhibitory sum "
                 f"{float(value[row, exact_s < 0].sum()):.4g}; they must be equal.")
        fail("dales_law.balance_wrong_factor",
             f"{what} is balanced but differs from the expected result: keep the excitatory "
             "weights and multiply each row's inhibitory weights by one factor, (excitatory "
             f"sum) / (inhibitory sum) of that row; {worst_entry(out, expected)}.")


@single_threaded
@_own_work
def check_balance_ei(balance_ei_fn, seed: int = 0) -> None:
    """``balance_ei(w_pos, signs)``: rescale each row's inhibitory magnitudes so that its
    excitatory and inhibitory sums are equal (square and non-square, float32 and float64)."""
    for w, s, what in _balance_cases(_generator(seed)):
        _check_one_balance(balance_ei_fn, w, s, what)


# ---------------------------------------------------------------- part 4: spectral radius


def _rho(w) -> torch.Tensor:
    return _eigvals(w.to(_float64)).abs().max()


def _radius_mistakes(w, radius):
    eig = _eigvals(w)
    real_part = ("you used the real parts of the eigenvalues; the eigenvalues of a "
                 "non-symmetric matrix are complex: use their modulus, eigvals(w).abs().max()")
    return [
        ("dales_law.radius_singular_value",
         "you divided by the largest singular value (the matrix 2-norm, torch.linalg."
         "matrix_norm(w, 2)); the spectral radius is the largest |eigenvalue|",
         w * radius / _matrix_norm(w, 2)),
        ("dales_law.radius_real_part", real_part, w * radius / eig.real.max()),
        ("dales_law.radius_real_part", real_part, w * radius / eig.real.abs().max()),
        ("dales_law.radius_eigvalsh",
         "torch.linalg.eigvalsh assumes a symmetric matrix, and a Dale weight matrix is "
         "not symmetric: use torch.linalg.eigvals and take the modulus",
         w * radius / _eigvalsh(w).abs().max()),
        ("dales_law.radius_max_entry",
         "you divided by the largest |entry|, not by the spectral radius (largest |eigenvalue|)",
         w * radius / w.abs().max()),
        ("dales_law.radius_frobenius",
         "you divided by the Frobenius norm, not by the spectral radius (largest |eigenvalue|)",
         w * radius / _matrix_norm(w)),
        ("dales_law.radius_factor_inverted",
         "the factor is upside down: multiply by radius / rho(w), not rho(w) / radius",
         w * eig.abs().max() / radius),
        ("dales_law.radius_signs_lost",
         "the signs were lost: scale the signed matrix by a positive factor, do not take "
         "abs() of it",
         w.abs() * radius / eig.abs().max()),
    ]


def _radius_cases(rng):
    cases = [(_tensor([[0.0, 2.0], [-2.0, 0.0]]), 1.0,
              "scale_to_spectral_radius on the example above (expected [[0, 1], [-1, 0]])")]
    n_random = int(_randint(8, 20, (1,), generator=rng))
    for n, n_inh, dtype in ((6, 2, _float64), (12, 3, _float64), (n_random, 4, _float64),
                            (9, 3, _float32), (5, 3, _float64)):
        s = _cat([_ones(n - n_inh), -_ones(n_inh)]).to(_float64)
        w = _balance(_random_magnitudes(n, n, rng, s), s) * s
        w = w + 0.3 * _randn(n, n, generator=rng, dtype=_float64).abs() * s
        radius = round(float(_rand(1, generator=rng)) * 1.5 + 0.5, 2)
        cases.append((w.to(dtype), radius,
                      f"scale_to_spectral_radius(w, radius={radius}) for a {n} x {n} E/I "
                      f"matrix, {_dtype_name(dtype)}"))
    cases.append(cases.pop(0))  # the printed example last: its eigenvalues are ±2i, which
    # the real-part mistakes turn into a division by zero
    return cases


def _check_one_radius(fn, w, radius, what) -> None:
    tol = 1e-5 if w.dtype == _float64 else 1e-4  # eigenvalues in float32: ~1e-6 relative
    out = tensor(call(fn, w.clone(), radius, what=what), what)
    if out.is_complex():
        fail("dales_law.radius_complex_result",
             f"{what} returned a complex matrix: you divided by a complex eigenvalue; divide "
             "by its modulus, torch.linalg.eigvals(w).abs().max().")
    if tuple(out.shape) != tuple(w.shape):
        fail("common.wrong_shape", f"{what} returned shape {tuple(out.shape)}; it should be "
             f"{tuple(w.shape)}, the shape of w.")
    if out.dtype != w.dtype:
        fail("common.wrong_dtype",
             f"{what} returned dtype {out.dtype} for a {w.dtype} w: keep its dtype.")
    exact = w.to(_float64)
    expected = exact * (radius / _rho(exact))
    if not close(out, expected, tol):
        for mistake, message, wrong in _radius_mistakes(exact, radius):
            if close(out, wrong, tol):
                fail(mistake, f"{what}: {message}.")
        got = float(_rho(out))
        if abs(got - radius) > 10 * tol * radius:
            fail("dales_law.radius_wrong",
                 f"{what} has spectral radius {got:.4g}, not {radius}: the spectral radius is "
                 "the largest |eigenvalue| (torch.linalg.eigvals(w).abs().max()).")
        fail("dales_law.radius_not_one_factor",
             f"{what} has the right spectral radius but is not w times one positive factor "
             f"(the signs and the E/I balance must be kept); {worst_entry(out, expected)}.")


@single_threaded
@_own_work
def check_scale_to_spectral_radius(scale_fn, seed: int = 0) -> None:
    """``scale_to_spectral_radius(weight, radius)`` = weight * radius / max|eig(weight)|."""
    for w, radius, what in _radius_cases(_generator(seed)):
        _check_one_radius(scale_fn, w, radius, what)

"""Checkers for assignment 05_spatial_embedding.

The references are in `course_lib.regularisers` (Achterberg et al. 2023, spatially
embedded RNNs):

- `grid_positions(shape, spacing)`: unit ``k`` at the row-major grid index of ``k``;
- `distance_matrix(positions)`: Euclidean ``d_ij = ||p_i - p_j||``;
- `distance_penalty(W, D, beta)`: ``beta Σ_ij |W_ij| d_ij``;
- `communicability(W)`: ``expm(S^-1/2 |W| S^-1/2)`` with a zero diagonal, ``S`` the
  diagonal of out-strengths ``s_j = Σ_i |W_ij|`` (Crofts & Higham 2009), ``0^-1/2 = 0``.

Every failure names its mistake with a stable id ``spatial_embedding.<mistake>``.
"""

from __future__ import annotations

import itertools

import torch

from course_lib.checks._common import (
    CheckFailure,
    call,
    close,
    fail,
    finite_gradient,
    single_threaded,
    tensor,
    worst_entry,
)
from course_lib.checks._common import (
    generator as _generator,
)
from course_lib.regularisers import distance_matrix as reference_distance_matrix
from course_lib.regularisers import distance_penalty as reference_distance_penalty

# Private references (see `_common`): an answer cell that patches torch changes neither
# the cases nor the expected values.
_rand = torch.rand
_randint = torch.randint
_where = torch.where
_sign = torch.sign
_matrix_exp = torch.linalg.matrix_exp
_eye = torch.eye
_exp = torch.exp
_as_tensor = torch.tensor
_isfinite = torch.isfinite
_float64 = torch.float64
_float32 = torch.float32


def _expect_value_error(fn, args: tuple, what: str, reason: str) -> None:
    try:
        fn(*args)
    except ValueError:
        return
    except NotImplementedError:
        fail("common.not_implemented", f"{what} is not implemented yet (it raised "
             "NotImplementedError): replace the `raise NotImplementedError()` with your code.")
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail("spatial_embedding.negative_beta_wrong_error",
             f"{what} raised {type(error).__name__}; it should raise ValueError: {reason}.")
    fail("spatial_embedding.negative_beta_accepted", f"{what} should raise ValueError: {reason}.")


def _signed(shape, generator, dtype=_float64, zeros: float = 0.0) -> torch.Tensor:
    """Entries with |w| in [0.1, 1.1] and random signs; a fraction ``zeros`` of them 0."""
    magnitude = 0.1 + _rand(shape, generator=generator, dtype=_float64)
    sign = _where(_rand(shape, generator=generator) < 0.5, -1.0, 1.0).to(_float64)
    keep = _rand(shape, generator=generator) >= zeros
    return (magnitude * sign * keep).to(dtype)


# ---------------------------------------------------------------- part 1: grid positions


def _row_major(shape) -> torch.Tensor:
    return _as_tensor(list(itertools.product(*(range(n) for n in shape))), dtype=_float64)


def _grid_mistakes(shape, spacing):
    ranges = [range(n) for n in shape]
    row_major = _row_major(shape)
    column_major = _as_tensor(
        [tuple(reversed(c)) for c in itertools.product(*reversed(ranges))], dtype=_float64
    )
    return [
        ("spatial_embedding.grid_column_major",
         "units are numbered in row-major (C) order: the LAST coordinate changes fastest "
         "(for shape (2, 3), unit 1 is at (0, 1)); yours is column-major",
         column_major * spacing),
        ("spatial_embedding.grid_coordinates_reversed",
         "the coordinates are in reverse order: column d of the result is the index along "
         "axis d of `shape`",
         row_major.flip(1) * spacing),
        ("spatial_embedding.grid_starts_at_one",
         "grid indices start at 0: unit 0 sits at the origin",
         (row_major + 1) * spacing),
        ("spatial_embedding.grid_no_spacing", "multiply the grid indices by `spacing`", row_major),
        ("spatial_embedding.grid_spacing_squared",
         "multiply the grid indices by `spacing` once, not squared",
         row_major * spacing**2),
    ]


def _check_grid_case(grid_positions, shape, spacing) -> None:
    what = f"grid_positions({shape}, spacing={spacing})" if spacing is not None else \
        f"grid_positions({shape})"
    args = (shape,) if spacing is None else (shape, spacing)
    out = tensor(call(grid_positions, *args, what=what), what)
    spacing = 1.0 if spacing is None else spacing
    expected = _row_major(shape) * spacing
    n_units = expected.shape[0]
    if tuple(out.shape) != tuple(expected.shape):
        hint = ""
        if tuple(out.shape) == (len(shape), n_units):
            hint = " It looks transposed: one ROW per unit, one column per dimension."
        fail("spatial_embedding.grid_wrong_shape",
             f"{what} has shape {tuple(out.shape)} but should be (n_units, n_dims) = "
             f"({n_units}, {len(shape)}).{hint}")
    if not out.is_floating_point():
        fail("spatial_embedding.grid_not_float",
             f"{what} has dtype {out.dtype}: positions must be floating point "
             "(distances and gradients need floats), e.g. torch.float32.")
    if close(out, expected):
        return
    for mistake, message, wrong in _grid_mistakes(shape, spacing):
        if close(out, wrong):
            fail(mistake, f"{what}: {message}.")
    fail("spatial_embedding.grid_wrong_value",
         f"{what} differs from the row-major grid times spacing; {worst_entry(out, expected)}.")


@single_threaded
def check_grid_positions(grid_positions, seed: int = 0) -> None:
    """Row-major positions of 1-, 2- and 3-D grids (sides of 1 too), with spacing and with
    the default spacing 1, as floats; the examples of the instructions and test cell."""
    rng = _generator(seed)
    cases = [((2, 3), 1.0), ((2, 3), 2.0), ((4,), 2.0), ((2, 2, 3), 0.5), ((1, 3), 1.5)]
    for dims in (1, 2, 3, 2):
        shape = tuple(int(n) for n in _randint(1, 5, (dims,), generator=rng))
        spacing = round(float(_rand(1, generator=rng)) * 2 + 0.25, 2)
        cases.append((shape, spacing))
    cases.append(((3, 2), None))  # the default spacing
    cases.append(((2, 2), 3))  # an integer spacing: the positions are still floats
    for shape, spacing in cases:
        _check_grid_case(grid_positions, shape, spacing)


# ---------------------------------------------------------------- part 2: distance matrix


def _distance_mistakes(positions):
    difference = positions[:, None, :] - positions[None, :, :]
    euclid = difference.pow(2).sum(-1).sqrt()
    return [
        ("spatial_embedding.distance_squared",
         "these are SQUARED distances: take the square root of Σ (p_i - p_j)²",
         difference.pow(2).sum(-1)),
        ("spatial_embedding.distance_manhattan",
         "this is the Manhattan (city-block) distance Σ|p_i - p_j|: the course uses the "
         "Euclidean distance sqrt(Σ (p_i - p_j)²)",
         difference.abs().sum(-1)),
        ("spatial_embedding.distance_chebyshev",
         "this is the largest coordinate difference (Chebyshev distance): use the "
         "Euclidean distance sqrt(Σ (p_i - p_j)²) over all coordinates",
         difference.abs().amax(-1)),
        ("spatial_embedding.distance_normalised",
         "do not normalise the distances (no division by the largest distance)",
         euclid / euclid.max()),
        ("spatial_embedding.distance_first_coordinate_only",
         "the distances depend on the first coordinate only: sum the squared differences "
         "over every coordinate (the last axis of positions)",
         difference[..., 0].abs()),
    ]


_GRAM_HINT = (
    "a squared distance computed as |p_i|² + |p_j|² - 2 p_i·p_j (the Gram trick) loses "
    "precision and can even come out negative by rounding; compute the differences "
    "p_i - p_j instead (broadcasting or torch.cdist), or at least clamp at 0 before the "
    "square root"
)


def _check_distance_case(distance_matrix, positions, tol: float) -> None:
    n, dims = positions.shape
    what = f"distance_matrix(positions of shape ({n}, {dims}) and dtype {positions.dtype})"
    out = tensor(call(distance_matrix, positions.clone(), what=what), what, finite=False,
                 dtype=positions.dtype)
    expected = reference_distance_matrix(positions.to(_float64))
    if tuple(out.shape) != (n, n):
        hint = ""
        if tuple(out.shape) == (dims, dims):
            hint = " positions is (n_units, n_dims): one row per unit."
        fail("spatial_embedding.distance_wrong_shape",
             f"{what} has shape {tuple(out.shape)} but should be (n_units, n_units) = "
             f"({n}, {n}).{hint}")
    if not bool(_isfinite(out).all()):
        fail("spatial_embedding.distance_not_finite", f"{what} contains NaN or inf: {_GRAM_HINT}.")
    if close(out, expected, tol):
        return
    for mistake, message, wrong in _distance_mistakes(positions.to(_float64)):
        if close(out, wrong, tol):
            fail(mistake, f"{what}: {message}.")
    if not close(out, out.T, tol):
        fail("spatial_embedding.distance_not_symmetric",
             f"{what} is not symmetric: the distance from i to j is the distance from j to i.")
    if not close(out.diagonal(), expected.diagonal(), tol):
        worst = out.diagonal().abs().max().item()
        fail("spatial_embedding.distance_diagonal_not_zero",
             f"{what}: the distance of a unit to itself must be 0, yours is up to {worst:.3g}. "
             "Add no epsilon under the square root (the distances are constants, not trained "
             f"through), and note that {_GRAM_HINT}.")
    fail("spatial_embedding.distance_wrong_value",
         f"{what} should be sqrt(Σ (p_i - p_j)²); {worst_entry(out, expected)}.")


@single_threaded
def check_distance_matrix(distance_matrix, seed: int = 0) -> None:
    """Euclidean distances between every pair of units, (n, n), for 1-, 2- and 3-D
    positions, float32 and float64, near and far from the origin; the example."""
    rng = _generator(seed)
    cases = [_as_tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], dtype=_float64)]
    for dims in (1, 2, 3):
        n = 3 if dims == 1 else int(_randint(3, 9, (1,), generator=rng))
        cases.append(_rand(n, dims, generator=rng, dtype=_float64) * 4)
    for positions in cases:
        _check_distance_case(distance_matrix, positions, 1e-6)
    # a float32 grid as in the chapter, and a layout far from the origin
    grid = _row_major((2, 3, 2)).to(_float32) * 0.7
    _check_distance_case(distance_matrix, grid + 0.1 * _rand(grid.shape, generator=rng), 1e-5)
    far = _rand(6, 3, generator=rng, dtype=_float64) * 4 + 1000.0
    _check_distance_case(distance_matrix, far, 1e-6)
    # the example printed in the test cell
    _check_distance_case(distance_matrix, _as_tensor([[0.0, 0.0], [3.0, 4.0]]), 1e-6)


# ---------------------------------------------------------------- part 3: distance penalty


def _unlimited(check_case, *args, name: str) -> None:
    """Run ``check_case`` on a case with very small and very large values; a wrong value
    there (after the ordinary cases passed) is a clamp or a cap the instructions never
    asked for."""
    try:
        check_case(*args)
    except CheckFailure as failure:
        if not failure.mistake.endswith("wrong_value"):
            raise
        fail("spatial_embedding.values_limited",
             f"{failure.message} The answer is right for values of ordinary size but wrong "
             f"when {name} are very small or very large: do not clamp, cap or round anything "
             "(and add no epsilon); the formula has no limit.")


def _penalty_mistakes(weight, distances, beta):
    return [
        ("spatial_embedding.penalty_no_abs",
         "take |W|: an inhibitory (negative) long connection costs wiring too, and with W "
         "itself positive and negative weights cancel",
         beta * (weight * distances).sum()),
        ("spatial_embedding.penalty_squared", "use |W|, not W²",
         beta * (weight.pow(2) * distances).sum()),
        ("spatial_embedding.penalty_matrix_product",
         "multiply |W| and the distances elementwise (each synapse by its own length), "
         "not as matrices",
         beta * (weight.abs() @ distances).sum()),
        ("spatial_embedding.penalty_product_of_sums",
         "multiply each synapse by its own length before summing, not the two sums",
         beta * weight.abs().sum() * distances.sum()),
        ("spatial_embedding.penalty_mean", "sum over all synapses, do not average",
         beta * (weight.abs() * distances).mean()),
        ("spatial_embedding.penalty_halved",
         "do not halve the sum: W is not symmetric, W_ij and W_ji are two different synapses "
         "and each one costs |W_ij| d_ij",
         beta * (weight.abs() * distances).sum() / 2),
        ("spatial_embedding.penalty_no_beta", "multiply by beta",
         (weight.abs() * distances).sum()),
        ("spatial_embedding.penalty_no_distances",
         "the distances are missing: this is the plain L1 penalty",
         beta * weight.abs().sum()),
    ]


def _check_penalty_case(distance_penalty, weight, distances, beta, tol: float = 1e-6) -> None:
    n = weight.shape[0]
    leaf = weight.clone().requires_grad_(True)
    what = f"distance_penalty(W of shape ({n}, {n}) and dtype {weight.dtype}, D, beta={beta})"
    try:
        out = call(distance_penalty, leaf, distances.clone(), beta, what=what)
    except CheckFailure as failure:
        if beta == 0 and failure.mistake == "common.raised" and "ValueError" in failure.message:
            fail("spatial_embedding.zero_beta_rejected",
                 f"{what} raised ValueError, but beta = 0 is allowed (it switches the penalty "
                 "off): raise only for beta < 0.")
        raise
    out = tensor(out, what, keep_graph=True)
    if out.dim() != 0:
        fail("spatial_embedding.penalty_not_scalar",
             f"{what} must return a scalar tensor (shape ()), got shape {tuple(out.shape)}: "
             "a penalty is one number added to the loss.")
    value = out.detach().clone()
    expected = reference_distance_penalty(weight.to(_float64), distances.to(_float64), beta)
    if not close(value, expected, tol):
        for mistake, message, wrong in _penalty_mistakes(
                weight.to(_float64), distances.to(_float64), beta):
            if close(value, wrong, tol):
                fail(mistake, f"{what} is {value.item():.5g}: {message}.")
        fail("spatial_embedding.penalty_wrong_value",
             f"{what} is {value.item():.5g} but should be beta Σ|W_ij| d_ij = "
             f"{expected.item():.5g}.")
    if not out.requires_grad:
        fail("spatial_embedding.penalty_no_gradient",
             f"{what} carries no gradient: build it from W with torch operations (no .item(), "
             ".detach() or numpy), so it can train the network.")
    out.backward()
    gradient = finite_gradient(leaf.grad, what)
    nonzero = weight != 0
    right = close(gradient[nonzero], (beta * _sign(weight) * distances)[nonzero], tol)
    # at W_ij = 0, |W_ij| has no derivative: any value in [-beta d_ij, beta d_ij] is valid
    bound = beta * distances[~nonzero] * (1 + tol) + tol
    if not right or bool((gradient[~nonzero].abs() > bound).any()):
        fail("spatial_embedding.penalty_wrong_gradient",
             f"the gradient of {what} should be beta * sign(W) * D.")


@single_threaded
def check_distance_penalty(distance_penalty, seed: int = 0) -> None:
    """beta Σ |W_ij| d_ij: value, scalar, gradient beta sign(W) d (finite at W_ij = 0),
    float32, beta = 0 allowed, ValueError for beta < 0, the example."""
    rng = _generator(seed)
    for index in range(4):
        n = int(_randint(3, 8, (1,), generator=rng))
        dtype = _float32 if index == 3 else _float64
        weight = _signed((n, n), rng, dtype, zeros=0.3)
        distances = reference_distance_matrix(_rand(n, 2, generator=rng, dtype=dtype) * 3)
        beta = 0.0 if index == 2 else round(float(_rand(1, generator=rng)) * 0.9 + 0.1, 3)
        _check_penalty_case(distance_penalty, weight, distances, beta,
                            1e-5 if dtype == _float32 else 1e-6)
    # weights and distances far from 1 (magnitudes 1e-3 to 1e3) reach any clamp or cap
    weight = _signed((5, 5), rng) * 10.0 ** (_rand(5, 5, generator=rng, dtype=_float64) * 6 - 3)
    layout = _rand(5, 2, generator=rng, dtype=_float64) * 10.0 ** (
        _rand(5, 1, generator=rng, dtype=_float64) * 6 - 3)
    _unlimited(_check_penalty_case, distance_penalty, weight,
               reference_distance_matrix(layout), 0.5, name="weights or distances")
    # the example printed in the test cell
    _check_penalty_case(distance_penalty, _as_tensor([[0.0, -2.0], [1.0, 0.0]]),
                        _as_tensor([[0.0, 5.0], [5.0, 0.0]]), 0.1)
    _expect_value_error(
        distance_penalty,
        (_as_tensor([[1.0, 1.0], [1.0, 1.0]]), _as_tensor([[0.0, 1.0], [1.0, 0.0]]), -0.1),
        "distance_penalty(W, D, beta=-0.1)",
        "beta must be >= 0 (a negative coefficient would reward long connections)",
    )


# ---------------------------------------------------------------- part 4: communicability


def _zero_diagonal(matrix):
    return matrix * (1 - _eye(matrix.shape[0], dtype=matrix.dtype))


def _normalised(magnitude, strength):
    inv = _where(strength > 0, strength.clamp_min(1e-30).rsqrt(), 0.0)
    return inv[:, None] * magnitude * inv[None, :]


def _expected_communicability(weight: torch.Tensor) -> torch.Tensor:
    """expm(S^-1/2 |W| S^-1/2), zero diagonal, 0^-1/2 = 0: the reference of
    `course_lib.regularisers.communicability`, with the private references."""
    magnitude = weight.abs()
    return _zero_diagonal(_matrix_exp(_normalised(magnitude, magnitude.sum(dim=0))))


def _communicability_mistakes(weight):
    magnitude = weight.abs()
    out_strength = magnitude.sum(dim=0)
    in_strength = magnitude.sum(dim=1)
    good = _normalised(magnitude, out_strength)
    inv = _where(out_strength > 0, 1 / out_strength.clamp_min(1e-30), 0.0)
    once = "normalise on both sides by S^-1/2 (|W_ij| / sqrt(s_i s_j)), not once by S^-1"
    return [
        ("spatial_embedding.communicability_diagonal_kept",
         "the diagonal (a unit's communication with itself) must be set to 0",
         _matrix_exp(good)),
        ("spatial_embedding.communicability_not_normalised",
         "normalise before the exponential: expm(S^-1/2 |W| S^-1/2), not expm(|W|)",
         _zero_diagonal(_matrix_exp(magnitude))),
        ("spatial_embedding.communicability_in_strength",
         "use the OUT-strength s_j = Σ_i |W_ij|, a column sum in the (post, pre) "
         "convention; you used row sums (the in-strength)",
         _zero_diagonal(_matrix_exp(_normalised(magnitude, in_strength)))),
        ("spatial_embedding.communicability_elementwise_exp",
         "use the matrix exponential torch.linalg.matrix_exp, not the elementwise torch.exp",
         _zero_diagonal(_exp(good))),
        ("spatial_embedding.communicability_normalised_once", once,
         _zero_diagonal(_matrix_exp(magnitude * inv[None, :]))),
        ("spatial_embedding.communicability_normalised_once", once,
         _zero_diagonal(_matrix_exp(inv[:, None] * magnitude))),
        ("spatial_embedding.communicability_no_abs",
         "use |W|: communicability counts walks through synapses of either sign",
         _zero_diagonal(_matrix_exp(_normalised(weight, out_strength)))),
        ("spatial_embedding.communicability_signed_strength",
         "use |W| everywhere, also in the strengths s_j = Σ_i |W_ij|: with signed sums, "
         "excitation and inhibition cancel",
         _zero_diagonal(_matrix_exp(_normalised(weight, weight.sum(dim=0))))),
    ]


_SILENT_HINT = (
    "take s^-1/2 = 0 where s = 0, and keep the gradient finite too: compute the power on a "
    "safe copy, e.g. torch.where(s > 0, s.clamp_min(1e-30).rsqrt(), 0.0) (a NaN or inf in "
    "the branch that torch.where discards still poisons the gradient)"
)


def _check_communicability_case(communicability, weight, description: str) -> None:
    n = weight.shape[0]
    tol = 1e-5 if weight.dtype == _float32 else 1e-6
    what = f"communicability(W of shape ({n}, {n}){description})"
    out = tensor(call(communicability, weight.clone(), what=what), what, finite=False)
    expected = _expected_communicability(weight.to(_float64))
    if tuple(out.shape) != (n, n):
        fail("spatial_embedding.communicability_wrong_shape",
             f"{what} has shape {tuple(out.shape)} but should be ({n}, {n}).")
    silent = bool((weight.abs().sum(dim=0) == 0).any())
    if not bool(_isfinite(out).all()):
        if silent:
            fail("spatial_embedding.communicability_silent_unit_not_finite",
                 f"{what} contains NaN or inf: a unit with no outgoing synapse has strength "
                 f"s = 0, and 0^-1/2 is undefined; {_SILENT_HINT}.")
        fail("common.not_finite", f"{what} contains NaN or inf.")
    if close(out, expected, tol):
        return
    for mistake, message, wrong in _communicability_mistakes(weight.to(_float64)):
        if close(out, wrong, tol):
            fail(mistake, f"{what}: {message}.")
    if silent:
        fail("spatial_embedding.communicability_silent_unit_wrong",
             f"{what}: {worst_entry(out, expected)} (take s^-1/2 = 0 where s = 0, which treats "
             "the unit as isolated).")
    fail("spatial_embedding.communicability_wrong_value",
         f"{what} should be expm(S^-1/2 |W| S^-1/2) with a zero diagonal; "
         f"{worst_entry(out, expected)}.")


def _check_communicability_gradient(communicability, weight, readout, description) -> None:
    """The seRNN penalty trains through C: the gradient of Σ_ij R_ij C_ij must be finite
    and right (compared where W_ij != 0: at 0, |W_ij| has no derivative)."""
    what = f"communicability(W{description})"
    leaf = weight.clone().requires_grad_(True)
    out = tensor(call(communicability, leaf, what=what), what, keep_graph=True)
    if not out.requires_grad:
        fail("spatial_embedding.communicability_no_gradient",
             f"{what} carries no gradient: use torch operations only (no .detach(), numpy or "
             "scipy.linalg.expm), so the seRNN penalty can train the network.")
    (out * readout).sum().backward()
    if leaf.grad is not None and not bool(_isfinite(leaf.grad).all()):
        fail("spatial_embedding.communicability_gradient_not_finite",
             f"{what}: the gradient contains NaN or inf although the values are finite; "
             f"{_SILENT_HINT}.")
    gradient = finite_gradient(leaf.grad, what)
    reference_leaf = weight.clone().requires_grad_(True)
    (_expected_communicability(reference_leaf) * readout).sum().backward()
    nonzero = weight != 0
    if not close(gradient[nonzero], reference_leaf.grad[nonzero], 1e-5):
        fail("spatial_embedding.communicability_wrong_gradient",
             f"{what}: the values are right but the gradient is not: "
             f"{worst_entry(gradient[nonzero], reference_leaf.grad[nonzero])} (some step is "
             "cut from the graph, e.g. a strength computed from a detached copy).")


@single_threaded
def check_communicability(communicability, seed: int = 0) -> None:
    """expm(S^-1/2 |W| S^-1/2), zero diagonal, out-strengths, finite values and gradients
    for a silent unit, float32, the example."""
    rng = _generator(seed)
    for index in range(4):
        n = int(_randint(3, 7, (1,), generator=rng))
        weight = _signed((n, n), rng, _float32 if index == 3 else _float64, zeros=0.3)
        weight[0, 1] = 0.9  # at least one synapse in column 1 so the case is not degenerate
        _check_communicability_case(communicability, weight, f", dtype {weight.dtype}")
    # C does not change when W is scaled (|W_ij| / sqrt(s_i s_j)): very weak and very
    # strong synapses reach any clamp or epsilon on the strengths
    weight = _signed((5, 5), rng)
    for scale in (1e-4, 1e3):
        _unlimited(_check_communicability_case, communicability, weight * scale,
                   f" with all weights of size about {scale:g}", name="the weights")
    # a unit with no outgoing synapse (column of zeros): 0^-1/2 is taken as 0
    weight = _signed((4, 4), rng)
    weight[:, 2] = 0.0
    silent = " when unit 2 has no outgoing synapse (W[:, 2] = 0)"
    _check_communicability_case(communicability, weight, silent)
    _check_communicability_case(communicability, weight * 0, ", all zero")
    # the example printed in the test cell: C = sinh(1) off the diagonal
    swap = _as_tensor([[0.0, 1.0], [1.0, 0.0]])
    _check_communicability_case(communicability, swap, ", the swap example")
    # gradients must flow and stay finite: the seRNN penalty trains through C
    readout = _rand(4, 4, generator=rng, dtype=_float64)
    _check_communicability_gradient(communicability, _signed((4, 4), rng), readout, "")
    _check_communicability_gradient(communicability, weight, readout, silent)

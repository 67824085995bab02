"""Checkers for assignment 05_spatial_embedding.

The references are in `course_lib.regularisers` (Achterberg et al. 2023, spatially
embedded RNNs):

- `grid_positions(shape, spacing)`: unit ``k`` at the row-major grid index of ``k``;
- `distance_matrix(positions)`: Euclidean ``d_ij = ||p_i - p_j||``;
- `distance_penalty(W, D, beta)`: ``beta Σ_ij |W_ij| d_ij``;
- `communicability(W)`: ``expm(S^-1/2 |W| S^-1/2)`` with a zero diagonal, ``S`` the
  diagonal of out-strengths ``s_j = Σ_i |W_ij|`` (Crofts & Higham 2009), ``0^-1/2 = 0``.
"""

from __future__ import annotations

import itertools

import torch

from course_lib._validate import make_generator
from course_lib.checks._common import as_tensor, call, close, fail, single_threaded, worst_entry
from course_lib.regularisers import communicability as reference_communicability
from course_lib.regularisers import distance_matrix as reference_distance_matrix
from course_lib.regularisers import distance_penalty as reference_distance_penalty
from course_lib.regularisers import grid_positions as reference_grid_positions


def _expect_value_error(fn, args: tuple, what: str, reason: str) -> None:
    try:
        fn(*args)
    except ValueError:
        return
    except Exception as error:  # noqa: BLE001 - any error becomes feedback
        fail(f"{what} raised {type(error).__name__}; it should raise ValueError: {reason}.")
    fail(f"{what} should raise ValueError: {reason}.")


def _signed(shape, generator) -> torch.Tensor:
    """float64 entries with |w| in [0.1, 1.1] and random signs."""
    magnitude = 0.1 + torch.rand(shape, generator=generator, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0).double()
    return magnitude * sign


# ---------------------------------------------------------------- part 1: grid positions


def _grid_mistakes(shape, spacing):
    ranges = [range(n) for n in shape]
    row_major = torch.tensor(list(itertools.product(*ranges)), dtype=torch.float64)
    column_major = torch.tensor(
        [tuple(reversed(c)) for c in itertools.product(*reversed(ranges))], dtype=torch.float64
    )
    return [
        (
            "units are numbered in row-major (C) order: the LAST coordinate changes fastest "
            "(for shape (2, 3), unit 1 is at (0, 1)); yours is column-major",
            column_major * spacing,
        ),
        (
            "the coordinates are in reverse order: column d of the result is the index along "
            "axis d of `shape`",
            row_major.flip(1) * spacing,
        ),
        (
            "grid indices start at 0: unit 0 sits at the origin",
            (row_major + 1) * spacing,
        ),
        ("multiply the grid indices by `spacing`", row_major),
        ("multiply the grid indices by `spacing` once, not squared", row_major * spacing**2),
    ]


@single_threaded
def check_grid_positions(grid_positions, seed: int = 0) -> None:
    """Row-major positions of 1-, 2- and 3-D grids, with spacing, as floats."""
    rng = make_generator(seed)
    cases = [((2, 3), 1.0), ((4,), 2.0), ((2, 2, 3), 0.5)]
    for dims in (1, 2, 3):
        shape = tuple(int(n) for n in torch.randint(2, 5, (dims,), generator=rng))
        spacing = round(float(torch.rand(1, generator=rng)) * 2 + 0.25, 2)
        cases.append((shape, spacing))
    for shape, spacing in cases:
        what = f"grid_positions({shape}, spacing={spacing})"
        out = as_tensor(call(grid_positions, shape, spacing, what=what), what)
        expected = reference_grid_positions(shape, spacing)
        n_units = expected.shape[0]
        if tuple(out.shape) != tuple(expected.shape):
            hint = ""
            if tuple(out.shape) == (len(shape), n_units):
                hint = " It looks transposed: one ROW per unit, one column per dimension."
            fail(
                f"{what} has shape {tuple(out.shape)} but should be (n_units, n_dims) = "
                f"({n_units}, {len(shape)}).{hint}"
            )
        if not out.is_floating_point():
            fail(
                f"{what} has dtype {out.dtype}: positions must be floating point "
                "(distances and gradients need floats), e.g. torch.float32."
            )
        if close(out, expected):
            continue
        for message, wrong in _grid_mistakes(shape, spacing):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(f"{what} differs from the row-major grid times spacing; {worst_entry(out, expected)}.")


# ---------------------------------------------------------------- part 2: distance matrix


def _distance_mistakes(positions):
    difference = positions[:, None, :] - positions[None, :, :]
    euclid = difference.pow(2).sum(-1).sqrt()
    return [
        (
            "these are SQUARED distances: take the square root of Σ (p_i - p_j)²",
            difference.pow(2).sum(-1),
        ),
        (
            "this is the Manhattan (city-block) distance Σ|p_i - p_j|: the course uses the "
            "Euclidean distance sqrt(Σ (p_i - p_j)²)",
            difference.abs().sum(-1),
        ),
        (
            "this is the largest coordinate difference (Chebyshev distance): use the "
            "Euclidean distance sqrt(Σ (p_i - p_j)²) over all coordinates",
            difference.abs().amax(-1),
        ),
        (
            "do not normalise the distances (no division by the largest distance)",
            euclid / euclid.max(),
        ),
        (
            "the distances depend on the first coordinate only: sum the squared differences "
            "over every coordinate (the last axis of positions)",
            difference[..., 0].abs(),
        ),
    ]


@single_threaded
def check_distance_matrix(distance_matrix, seed: int = 0) -> None:
    """Euclidean distances between every pair of units, (n, n), zero diagonal."""
    rng = make_generator(seed)
    cases = [torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]], dtype=torch.float64)]
    for dims in (1, 2, 3):
        n = int(torch.randint(3, 9, (1,), generator=rng))
        if dims == 1:
            n = 3  # with 3 points on a line, only a few mistakes coincide
        cases.append(torch.rand(n, dims + (dims == 1), generator=rng, dtype=torch.float64) * 4)
    for positions in cases:
        n, dims = positions.shape
        what = f"distance_matrix(positions of shape ({n}, {dims}))"
        out = as_tensor(call(distance_matrix, positions.clone(), what=what), what)
        expected = reference_distance_matrix(positions)
        if tuple(out.shape) != (n, n):
            hint = ""
            if tuple(out.shape) == (dims, dims):
                hint = " positions is (n_units, n_dims): one row per unit."
            fail(
                f"{what} has shape {tuple(out.shape)} but should be (n_units, n_units) = "
                f"({n}, {n}).{hint}"
            )
        if close(out, expected, tol=1e-5):
            continue
        for message, wrong in _distance_mistakes(positions):
            if close(out, wrong, tol=1e-5):
                fail(f"{what}: {message}.")
        if not close(out, out.T, tol=1e-5):
            fail(f"{what} is not symmetric: the distance from i to j is the distance from j to i.")
        fail(f"{what} should be sqrt(Σ (p_i - p_j)²); {worst_entry(out, expected)}.")


# ---------------------------------------------------------------- part 3: distance penalty


def _penalty_mistakes(weight, distances, beta):
    return [
        (
            "take |W|: an inhibitory (negative) long connection costs wiring too, and with W "
            "itself positive and negative weights cancel",
            beta * (weight * distances).sum(),
        ),
        ("use |W|, not W²", beta * (weight.pow(2) * distances).sum()),
        (
            "multiply |W| and the distances elementwise (each synapse by its own length), "
            "not as matrices",
            beta * (weight.abs() @ distances).sum(),
        ),
        (
            "multiply each synapse by its own length before summing, not the two sums",
            beta * weight.abs().sum() * distances.sum(),
        ),
        ("sum over all synapses, do not average", beta * (weight.abs() * distances).mean()),
        ("multiply by beta", (weight.abs() * distances).sum()),
        ("the distances are missing: this is the plain L1 penalty", beta * weight.abs().sum()),
    ]


@single_threaded
def check_distance_penalty(distance_penalty, seed: int = 0) -> None:
    """beta Σ |W_ij| d_ij: value, scalar, gradient beta sign(W) d, ValueError for beta < 0."""
    rng = make_generator(seed)
    for _ in range(3):
        n = int(torch.randint(3, 8, (1,), generator=rng))
        weight = _signed((n, n), rng)
        positions = torch.rand(n, 2, generator=rng, dtype=torch.float64) * 3
        distances = reference_distance_matrix(positions)
        beta = round(float(torch.rand(1, generator=rng)) * 0.9 + 0.1, 3)
        leaf = weight.clone().requires_grad_(True)
        what = f"distance_penalty(W of shape ({n}, {n}), D, beta={beta})"
        out = as_tensor(call(distance_penalty, leaf, distances.clone(), beta, what=what), what)
        if out.dim() != 0:
            fail(f"{what} must return a scalar tensor (shape ()), got shape {tuple(out.shape)}.")
        expected = reference_distance_penalty(weight, distances, beta)
        if not close(out.detach(), expected):
            for message, wrong in _penalty_mistakes(weight, distances, beta):
                if close(out.detach(), wrong):
                    fail(f"{what} is {out.item():.5g}: {message}.")
            fail(
                f"{what} is {out.item():.5g} but should be beta Σ|W_ij| d_ij = "
                f"{expected.item():.5g}."
            )
        if not out.requires_grad:
            fail(
                f"{what} carries no gradient: build it from W with torch operations (no .item(), "
                ".detach() or numpy), so it can train the network."
            )
        out.backward()
        if leaf.grad is None or not close(leaf.grad, beta * torch.sign(weight) * distances):
            fail(f"the gradient of {what} should be beta * sign(W) * D.")
    _expect_value_error(
        distance_penalty,
        (torch.ones(2, 2), torch.ones(2, 2), -0.1),
        "distance_penalty(W, D, beta=-0.1)",
        "beta must be >= 0 (a negative coefficient would reward long connections)",
    )


# ---------------------------------------------------------------- part 4: communicability


def _zero_diagonal(matrix):
    return matrix * (1 - torch.eye(matrix.shape[0], dtype=matrix.dtype))


def _normalised(magnitude, strength):
    inv = torch.where(strength > 0, strength.clamp_min(1e-30).rsqrt(), 0.0)
    return inv[:, None] * magnitude * inv[None, :]


def _communicability_mistakes(weight):
    magnitude = weight.abs()
    out_strength = magnitude.sum(dim=0)
    in_strength = magnitude.sum(dim=1)
    good = _normalised(magnitude, out_strength)
    inv = torch.where(out_strength > 0, 1 / out_strength.clamp_min(1e-30), 0.0)
    return [
        (
            "the diagonal (a unit's communication with itself) must be set to 0",
            torch.linalg.matrix_exp(good),
        ),
        (
            "normalise before the exponential: expm(S^-1/2 |W| S^-1/2), not expm(|W|)",
            _zero_diagonal(torch.linalg.matrix_exp(magnitude)),
        ),
        (
            "use the OUT-strength s_j = Σ_i |W_ij|, a column sum in the (post, pre) "
            "convention; you used row sums (the in-strength)",
            _zero_diagonal(torch.linalg.matrix_exp(_normalised(magnitude, in_strength))),
        ),
        (
            "use the matrix exponential torch.linalg.matrix_exp, not the elementwise torch.exp",
            _zero_diagonal(torch.exp(good)),
        ),
        (
            "normalise on both sides by S^-1/2 (|W_ij| / sqrt(s_i s_j)), not once by S^-1",
            _zero_diagonal(torch.linalg.matrix_exp(magnitude * inv[None, :])),
        ),
        (
            "normalise on both sides by S^-1/2 (|W_ij| / sqrt(s_i s_j)), not once by S^-1",
            _zero_diagonal(torch.linalg.matrix_exp(inv[:, None] * magnitude)),
        ),
        (
            "use |W|: communicability counts walks through synapses of either sign",
            _zero_diagonal(torch.linalg.matrix_exp(_normalised(weight, out_strength))),
        ),
        (
            "use |W| everywhere, also in the strengths s_j = Σ_i |W_ij|: with signed sums, "
            "excitation and inhibition cancel",
            _zero_diagonal(torch.linalg.matrix_exp(_normalised(weight, weight.sum(dim=0)))),
        ),
    ]


@single_threaded
def check_communicability(communicability, seed: int = 0) -> None:
    """expm(S^-1/2 |W| S^-1/2), zero diagonal, out-strengths, finite for a silent unit."""
    rng = make_generator(seed)
    cases = []
    for _ in range(3):
        n = int(torch.randint(3, 7, (1,), generator=rng))
        cases.append(_signed((n, n), rng) * (torch.rand(n, n, generator=rng) < 0.7))
    for weight in cases:
        n = weight.shape[0]
        weight = weight.clone()
        weight[0, 1] = 0.9  # at least one synapse in column 1 so the case is not degenerate
        what = f"communicability(W of shape ({n}, {n}))"
        out = as_tensor(call(communicability, weight.clone(), what=what), what)
        expected = reference_communicability(weight)
        if tuple(out.shape) != (n, n):
            fail(f"{what} has shape {tuple(out.shape)} but should be ({n}, {n}).")
        if not torch.isfinite(out).all():
            fail(f"{what} contains NaN or inf; {worst_entry(torch.nan_to_num(out), expected)}.")
        if close(out, expected):
            continue
        for message, wrong in _communicability_mistakes(weight):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(
            f"{what} should be expm(S^-1/2 |W| S^-1/2) with a zero diagonal; "
            f"{worst_entry(out, expected)}."
        )

    # a unit with no outgoing synapse (column of zeros): 0^-1/2 is taken as 0
    weight = _signed((4, 4), rng)
    weight[:, 2] = 0.0
    what = "communicability(W) when unit 2 has no outgoing synapse (W[:, 2] = 0)"
    out = as_tensor(call(communicability, weight.clone(), what=what), what)
    if not torch.isfinite(out).all():
        fail(
            f"{what} contains NaN or inf: its strength s_2 is 0 and 0^-1/2 is undefined. Take "
            "s^-1/2 = 0 where s = 0 (e.g. torch.where(s > 0, s.clamp_min(1e-30).rsqrt(), 0.0))."
        )
    if not close(out, reference_communicability(weight)):
        fail(
            f"{what}: {worst_entry(out, reference_communicability(weight))} (take s^-1/2 = 0 "
            "where s = 0, which treats the unit as isolated)."
        )

    # gradients must flow: the penalty trains through it
    leaf = _signed((3, 3), rng).requires_grad_(True)
    out = call(communicability, leaf, what="communicability(W)")
    if not out.requires_grad:
        fail(
            "communicability(W) carries no gradient: use torch operations only (no .detach(), "
            "numpy or scipy.linalg.expm), so the seRNN penalty can train the network."
        )

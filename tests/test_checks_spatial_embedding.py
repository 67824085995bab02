"""The assignment-05 checkers: the references and correct variants pass at several seeds;
each plausible mistake (written as a student would) is rejected with its message and id."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from catalogue import AlwaysEqual, not_implemented, rejects

from course_lib import regularisers
from course_lib.checks.spatial_embedding import (
    check_communicability,
    check_distance_matrix,
    check_distance_penalty,
    check_grid_positions,
)

SEEDS = (0, 555, 8080, 64, 13)


# ------------------------------------------------------------------ part 1: grid positions


def grid_as_in_the_solution(shape, spacing=1.0):
    return (
        torch.tensor(list(itertools.product(*(range(n) for n in shape))), dtype=torch.float32)
        * spacing
    )


def grid_meshgrid(shape, spacing=1.0):
    axes = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in shape), indexing="ij")
    return torch.stack([a.flatten() for a in axes], dim=1) * spacing


def grid_unravel(shape, spacing=1.0):
    rows = [np.unravel_index(k, shape) for k in range(math.prod(shape))]
    return torch.tensor(np.array(rows), dtype=torch.float32) * spacing


def grid_cartesian_prod(shape, spacing=1.0):
    axes = [torch.arange(n, dtype=torch.float32) * spacing for n in shape]
    return torch.cartesian_prod(*axes).reshape(-1, len(shape))


GRID_CORRECT = [regularisers.grid_positions, grid_as_in_the_solution, grid_meshgrid,
                grid_unravel, grid_cartesian_prod]


@pytest.mark.parametrize("grid", GRID_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_grids_pass(grid, seed):
    check_grid_positions(grid, seed=seed)


def column_major(shape, spacing=1.0):
    coordinates = [
        tuple(reversed(c)) for c in itertools.product(*(range(n) for n in reversed(shape)))
    ]
    return torch.tensor(coordinates, dtype=torch.float32) * spacing


def xy_meshgrid(shape, spacing=1.0):
    if len(shape) != 2:
        return grid_meshgrid(shape, spacing)
    x, y = torch.meshgrid(torch.arange(shape[1]), torch.arange(shape[0]), indexing="xy")
    return torch.stack([y.flatten(), x.flatten()], 1).float().flip(1) * spacing


def only_2d(shape, spacing=1.0):
    rows, cols = shape
    return grid_meshgrid((rows, cols), spacing)


def cartesian_prod_unreshaped(shape, spacing=1.0):
    return torch.cartesian_prod(*(torch.arange(n, dtype=torch.float32) for n in shape)) * spacing


def squeezed(shape, spacing=1.0):
    return grid_meshgrid(shape, spacing).squeeze()


def integer_arange(shape, spacing=1.0):
    axes = torch.meshgrid(*(torch.arange(n) for n in shape), indexing="ij")
    return torch.stack([a.flatten() for a in axes], dim=1) * spacing


def no_default_spacing(shape, spacing):
    return grid_meshgrid(shape, spacing)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (column_major, "spatial_embedding.grid_column_major", "yours is column-major"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).flip(1),
         "spatial_embedding.grid_coordinates_reversed", "the coordinates are in reverse order"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp) + sp, "spatial_embedding.grid_starts_at_one",
         "grid indices start at 0"),
        (lambda s, sp=1.0: grid_meshgrid(s, 1.0), "spatial_embedding.grid_no_spacing",
         "multiply the grid indices by `spacing`"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp * sp), "spatial_embedding.grid_spacing_squared",
         "once, not squared"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).T, "spatial_embedding.grid_wrong_shape",
         "It looks transposed"),
        (lambda s, sp=1.0: grid_meshgrid(s, 1).long(), "spatial_embedding.grid_not_float",
         "must be floating point"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).numpy(), "common.wrong_type",
         "must return a torch.Tensor"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).as_subclass(AlwaysEqual),
         "common.tensor_subclass", "plain torch.Tensor"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp) * (1 + 0.01 * (len(s) == 3)),
         "spatial_embedding.grid_wrong_value", "differs from the row-major grid"),
        (only_2d, "common.raised", r"grid_positions\(\(4,\), spacing=2.0\) raised ValueError"),
        (cartesian_prod_unreshaped, "spatial_embedding.grid_wrong_shape",
         r"\(4,\), spacing=2.0\) has shape \(4,\)"),
        (squeezed, "spatial_embedding.grid_wrong_shape", r"\(4,\), spacing=2.0\) has shape \(4,\)"),
        (no_default_spacing, "common.raised", r"grid_positions\(\(3, 2\)\) raised TypeError"),
        (integer_arange, "spatial_embedding.grid_not_float", r"spacing=3\) has dtype torch.int64"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_grids_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_grid_positions, wrong, mistake, message)


def test_xy_meshgrid_is_reported_as_column_major_or_reversed():
    with pytest.raises(AssertionError, match="column-major|reverse order"):
        check_grid_positions(xy_meshgrid)


# ------------------------------------------------------------------ part 2: distances


def difference(p):
    return p[:, None, :] - p[None, :, :]


def distance_loops(p):
    n = p.shape[0]
    out = torch.zeros(n, n, dtype=p.dtype)
    for i in range(n):
        for j in range(n):
            squares = [(float(a) - float(b)) ** 2 for a, b in zip(p[i], p[j], strict=True)]
            out[i, j] = math.sqrt(sum(squares))
    return out


def gram(p):
    squared = (p * p).sum(dim=1)
    return squared[:, None] + squared[None, :] - 2 * p @ p.T


DISTANCE_CORRECT = [
    regularisers.distance_matrix,
    lambda p: torch.cdist(p, p),
    lambda p: torch.linalg.norm(difference(p), dim=-1),
    lambda p: torch.sqrt(torch.einsum("ijk,ijk->ij", difference(p), difference(p))),
    distance_loops,
]


@pytest.mark.parametrize("distance", DISTANCE_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_distances_pass(distance, seed):
    check_distance_matrix(distance, seed=seed)


def one_sided(p):
    d = torch.linalg.norm(difference(p), dim=-1)
    return torch.triu(d)


def two_d_only(p):
    x, y = p[:, 0], p[:, 1]
    return torch.sqrt((x[:, None] - x[None]) ** 2 + (y[:, None] - y[None]) ** 2)


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        # float64 inside, but the result always float32
        (lambda p: torch.linalg.norm(difference(p.double()), dim=-1).float(),
         "common.wrong_dtype", "dtype torch.float32 but should have dtype torch.float64"),
        (lambda p: difference(p).pow(2).sum(-1), "spatial_embedding.distance_squared",
         "these are SQUARED distances"),
        (lambda p: difference(p).abs().sum(-1), "spatial_embedding.distance_manhattan",
         "Manhattan"),
        (lambda p: difference(p).abs().amax(-1), "spatial_embedding.distance_chebyshev",
         "Chebyshev"),
        (lambda p: torch.cdist(p, p) / torch.cdist(p, p).max(),
         "spatial_embedding.distance_normalised", "do not normalise"),
        (lambda p: difference(p)[..., 0].abs(), "spatial_embedding.distance_first_coordinate_only",
         "the first coordinate only"),
        (lambda p: torch.cdist(p.T, p.T), "spatial_embedding.distance_wrong_shape",
         r"positions is \(n_units, n_dims\): one row per unit"),
        (one_sided, "spatial_embedding.distance_not_symmetric", "is not symmetric"),
        (lambda p: torch.cdist(p, p) + 1e-3, "spatial_embedding.distance_diagonal_not_zero",
         "the distance of a unit to itself must be 0"),
        (lambda p: difference(p).pow(2).sum(-1).add(1e-8).sqrt(),
         "spatial_embedding.distance_diagonal_not_zero", "Add no epsilon under the square root"),
        (lambda p: torch.cdist(p, p) * 1.001, "spatial_embedding.distance_wrong_value",
         "should be sqrt"),
        (lambda p: torch.sqrt(gram(p)), "spatial_embedding.distance_not_finite",
         "contains NaN or inf: a squared distance computed as"),
        (lambda p: torch.sqrt(gram(p).clamp_min(0)), "spatial_embedding.distance_diagonal_not_zero",
         "the Gram trick"),
        (two_d_only, "common.raised", r"shape \(3, 1\) .* raised IndexError"),
        (lambda p: np.zeros((len(p), len(p))), "common.wrong_type", "must return a torch.Tensor"),
        (lambda p: torch.cdist(p, p).to_sparse(), "common.sparse", "sparse"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_distances_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_distance_matrix, wrong, mistake, message)


# ------------------------------------------------------------------ part 3: distance penalty


def _pen(cost):
    def distance_penalty(weight, distances, beta):
        if beta < 0:
            raise ValueError("beta must be >= 0")
        return cost(weight, distances, beta)

    return distance_penalty


PENALTY_CORRECT = [
    regularisers.distance_penalty,
    _pen(lambda w, d, b: b * torch.sum(torch.abs(w) * d)),
    _pen(lambda w, d, b: b * torch.einsum("ij,ij->", w.abs(), d)),
    _pen(lambda w, d, b: b * torch.trace(w.abs() @ d.T)),
    _pen(lambda w, d, b: (b * w.abs() * d).sum()),
]


@pytest.mark.parametrize("penalty", PENALTY_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_penalties_pass(penalty, seed):
    check_distance_penalty(penalty, seed=seed)


def asserts_beta(w, d, b):
    assert b >= 0, "beta must be >= 0"
    return b * (w.abs() * d).sum()


def zero_beta_rejected(w, d, b):
    if b <= 0:
        raise ValueError("beta must be positive")
    return b * (w.abs() * d).sum()


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (_pen(lambda w, d, b: b * (w * d).sum()), "spatial_embedding.penalty_no_abs", "take |W|"),
        # caps the instructions never ask for, reached only by large values
        (_pen(lambda w, d, b: b * (w.abs() * d.clamp(max=10.0)).sum()),
         "spatial_embedding.values_limited", "do not clamp, cap or round"),
        (_pen(lambda w, d, b: b * (w.abs().clamp(max=10.0) * d).sum()),
         "spatial_embedding.values_limited", "do not clamp, cap or round"),
        (_pen(lambda w, d, b: b * (w * w * d).sum()), "spatial_embedding.penalty_squared",
         r"use \|W\|, not W²"),
        (_pen(lambda w, d, b: b * (w.abs() @ d).sum()), "spatial_embedding.penalty_matrix_product",
         "not as matrices"),
        (_pen(lambda w, d, b: b * w.abs().sum() * d.sum()),
         "spatial_embedding.penalty_product_of_sums", "not the two sums"),
        (_pen(lambda w, d, b: b * (w.abs() * d).mean()), "spatial_embedding.penalty_mean",
         "do not average"),
        (_pen(lambda w, d, b: b * (w.abs() * d).sum() / 2), "spatial_embedding.penalty_halved",
         "do not halve the sum"),
        (_pen(lambda w, d, b: (w.abs() * d).sum()), "spatial_embedding.penalty_no_beta",
         "multiply by beta"),
        (_pen(lambda w, d, b: b * w.abs().sum()), "spatial_embedding.penalty_no_distances",
         "the distances are missing"),
        (_pen(lambda w, d, b: b * (w.abs() * d.clamp(max=2.0)).sum()),
         "spatial_embedding.penalty_wrong_value", r"should be beta Σ\|W_ij\| d_ij"),
        (_pen(lambda w, d, b: torch.tensor((b * (w.abs() * d).sum()).item())),
         "spatial_embedding.penalty_no_gradient", "carries no gradient"),
        (_pen(lambda w, d, b: b * (torch.sqrt(w**2) * d).sum()), "common.gradient_not_finite",
         "the gradient contains NaN"),
        (_pen(lambda w, d, b: b * (torch.where(w > 0, w, -w.detach()) * d).sum()),
         "spatial_embedding.penalty_wrong_gradient", r"beta \* sign\(W\) \* D"),
        (_pen(lambda w, d, b: b * (w.abs() * d).sum(0)), "spatial_embedding.penalty_not_scalar",
         "must return a scalar"),
        (zero_beta_rejected, "spatial_embedding.zero_beta_rejected", "beta = 0 is allowed"),
        (lambda w, d, b: abs(b) * (w.abs() * d).sum(), "spatial_embedding.negative_beta_accepted",
         r"beta=-0.1\) should raise ValueError"),
        (asserts_beta, "spatial_embedding.negative_beta_wrong_error",
         "raised AssertionError; it should raise ValueError"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_penalties_are_rejected_with_their_message(wrong, mistake, message):
    rejects(check_distance_penalty, wrong, mistake, message)


# ------------------------------------------------------------------ part 4: communicability


def _comm(
    normalise=True,
    strength_dim=0,
    absolute=True,
    zero_diagonal=True,
    exp=None,
    guard="where_clamped",
    sides="both",
):
    def communicability(weight):
        magnitude = weight.abs() if absolute else weight
        strength = magnitude.sum(dim=strength_dim)
        if guard == "where_clamped":
            inv = torch.where(strength > 0, strength.clamp_min(1e-30).rsqrt(), 0.0)
        elif guard == "where":  # finite values, NaN gradient at a silent unit
            inv = torch.where(strength > 0, strength.rsqrt(), 0.0)
        else:
            inv = strength.rsqrt()
        if not normalise:
            normalised = magnitude
        elif sides == "both":
            normalised = inv[:, None] * magnitude * inv[None, :]
        elif sides == "right":
            normalised = magnitude * (inv**2)[None, :]
        else:
            normalised = (inv**2)[:, None] * magnitude
        comm = (exp or torch.linalg.matrix_exp)(normalised)
        if zero_diagonal:
            comm = comm - torch.diag(torch.diagonal(comm))
        return comm

    return communicability


def comm_as_in_the_solution(weight):
    a = weight.abs()
    s = a.sum(dim=0)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    scale = torch.where(s > 0, safe**-0.5, torch.zeros_like(s))
    c = torch.linalg.matrix_exp(scale.unsqueeze(1) * a * scale.unsqueeze(0))
    return c - torch.diag_embed(torch.diagonal(c))


def comm_diag_matrices(weight):
    a = weight.abs()
    s = a.sum(0)
    s_inv_sqrt = torch.diag(torch.where(s > 0, 1 / torch.sqrt(s.clamp_min(1e-12)), 0.0))
    c = torch.linalg.matrix_exp(s_inv_sqrt @ a @ s_inv_sqrt)
    return c.fill_diagonal_(0)


def comm_scipy(weight):
    from scipy.linalg import expm

    magnitude = weight.detach().abs().numpy()
    s = magnitude.sum(0)
    inv = np.where(s > 0, 1 / np.sqrt(np.where(s > 0, s, 1)), 0)
    c = expm(inv[:, None] * magnitude * inv[None, :])
    np.fill_diagonal(c, 0)
    return torch.from_numpy(c)


COMM_CORRECT = [regularisers.communicability, _comm(), comm_as_in_the_solution,
                comm_diag_matrices]


@pytest.mark.parametrize("comm", COMM_CORRECT)
@pytest.mark.parametrize("seed", SEEDS)
def test_correct_communicability_passes(comm, seed):
    check_communicability(comm, seed=seed)


def test_the_swap_example_is_sinh_1():
    """Ground truth for the checker's example: expm([[0, 1], [1, 0]]) is cosh(1) I + sinh(1) X."""
    swap = torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    expected = torch.tensor([[0.0, math.sinh(1)], [math.sinh(1), 0.0]], dtype=torch.float64)
    assert torch.allclose(regularisers.communicability(swap), expected)


def communicability_clamped_strength(weight):
    """A floor on the strengths: right for ordinary weights, wrong for weak ones."""
    magnitude = weight.abs()
    strength = magnitude.sum(dim=0)
    inv = torch.where(strength > 0, strength.clamp_min(1e-3).rsqrt(), 0.0)
    comm = torch.linalg.matrix_exp(inv[:, None] * magnitude * inv[None, :])
    return comm - torch.diag_embed(comm.diagonal())


@pytest.mark.parametrize(
    ("wrong", "mistake", "message"),
    [
        (_comm(zero_diagonal=False), "spatial_embedding.communicability_diagonal_kept",
         "the diagonal .* must be set to 0"),
        (communicability_clamped_strength, "spatial_embedding.values_limited",
         "weights of size about 0.0001"),
        (_comm(normalise=False), "spatial_embedding.communicability_not_normalised",
         r"normalise before the exponential"),
        (_comm(strength_dim=1), "spatial_embedding.communicability_in_strength",
         "you used row sums"),
        (_comm(exp=torch.exp), "spatial_embedding.communicability_elementwise_exp",
         "not the elementwise torch.exp"),
        (_comm(sides="right"), "spatial_embedding.communicability_normalised_once",
         "not once by S"),
        (_comm(sides="left"), "spatial_embedding.communicability_normalised_once",
         "not once by S"),
        (_comm(absolute=False), "spatial_embedding.communicability_signed_strength",
         r"use \|W\| everywhere"),
        (_comm(absolute=False, guard="none"), "common.not_finite", "contains NaN or inf"),
        (_comm(guard="none"), "spatial_embedding.communicability_silent_unit_not_finite",
         "0\\^-1/2 is undefined"),
        (_comm(guard="where"), "spatial_embedding.communicability_gradient_not_finite",
         "the gradient contains NaN or inf although the values are finite"),
        (comm_scipy, "spatial_embedding.communicability_no_gradient", "carries no gradient"),
        (lambda w: _comm()(w).to_sparse(), "common.sparse", "sparse"),
        (lambda w: _comm()(w).numpy(), "common.wrong_type", "numpy.ndarray"),
        (lambda w: _comm()(w)[:-1], "spatial_embedding.communicability_wrong_shape",
         "has shape"),
        (lambda weight: _comm()(weight.abs_()), "common.in_place",
         "changed its argument weight in place"),
        (not_implemented, "common.not_implemented", "is not implemented yet"),
    ],
)
def test_wrong_communicability_is_rejected_with_its_message(wrong, mistake, message):
    rejects(check_communicability, wrong, mistake, message)


def test_a_patched_matrix_exp_does_not_change_the_expected_values(monkeypatch):
    """An answer cell that replaces torch.linalg.matrix_exp by torch.exp cannot make the
    elementwise exponential pass."""
    monkeypatch.setattr(torch.linalg, "matrix_exp", torch.exp)
    with pytest.raises(AssertionError):
        check_communicability(_comm(exp=torch.exp))

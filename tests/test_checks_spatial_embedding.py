"""The assignment-05 checkers: the references pass; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from course_lib import regularisers
from course_lib.checks.spatial_embedding import (
    check_communicability,
    check_distance_matrix,
    check_distance_penalty,
    check_grid_positions,
)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ part 1: grid positions


def grid_as_in_the_solution(shape, spacing=1.0):
    return (
        torch.tensor(list(itertools.product(*(range(n) for n in shape))), dtype=torch.float32)
        * spacing
    )


def grid_meshgrid(shape, spacing=1.0):
    axes = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in shape), indexing="ij")
    return torch.stack([a.flatten() for a in axes], dim=1) * spacing


@pytest.mark.parametrize(
    "grid", [regularisers.grid_positions, grid_as_in_the_solution, grid_meshgrid]
)
def test_reference_grid_passes(grid):
    check_grid_positions(grid)
    check_grid_positions(grid, seed=12)


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


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (column_major, "yours is column-major"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).flip(1), "the coordinates are in reverse order"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp) + sp, "grid indices start at 0"),
        (lambda s, sp=1.0: grid_meshgrid(s, 1.0), "multiply the grid indices by `spacing`"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp * sp), "once, not squared"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).T, "It looks transposed"),
        (lambda s, sp=1.0: grid_meshgrid(s, 1).long(), "must be floating point"),
        (lambda s, sp=1.0: grid_meshgrid(s, sp).numpy(), "must return a torch.Tensor"),
        (only_2d, r"grid_positions\(\(4,\), spacing=2.0\) raised ValueError"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_grids_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_grid_positions(wrong)


def test_xy_meshgrid_is_reported_as_column_major_or_reversed():
    with pytest.raises(AssertionError, match="column-major|reverse order"):
        check_grid_positions(xy_meshgrid)


# ------------------------------------------------------------------ part 2: distances


def difference(p):
    return p[:, None, :] - p[None, :, :]


@pytest.mark.parametrize(
    "distance",
    [
        regularisers.distance_matrix,
        lambda p: torch.cdist(p, p),
        lambda p: torch.linalg.norm(difference(p), dim=-1),
    ],
)
def test_reference_distances_pass(distance):
    check_distance_matrix(distance)
    check_distance_matrix(distance, seed=8)


def one_sided(p):
    d = torch.linalg.norm(difference(p), dim=-1)
    return torch.triu(d)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda p: difference(p).pow(2).sum(-1), "these are SQUARED distances"),
        (lambda p: difference(p).abs().sum(-1), "Manhattan"),
        (lambda p: difference(p).abs().amax(-1), "Chebyshev"),
        (lambda p: torch.cdist(p, p) / torch.cdist(p, p).max(), "do not normalise"),
        (lambda p: difference(p)[..., 0].abs(), "the first coordinate only"),
        (lambda p: torch.cdist(p.T, p.T), r"positions is \(n_units, n_dims\): one row per unit"),
        (one_sided, "is not symmetric"),
        (lambda p: torch.cdist(p, p) + 1e-3, "should be sqrt"),
        (lambda p: np.zeros((len(p), len(p))), "must return a torch.Tensor"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_distances_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_distance_matrix(wrong)


# ------------------------------------------------------------------ part 3: distance penalty


def _pen(cost):
    def wrapped(weight, distances, beta):
        if beta < 0:
            raise ValueError("beta must be >= 0")
        return cost(weight, distances, beta)

    return wrapped


def test_reference_penalty_passes():
    check_distance_penalty(regularisers.distance_penalty)
    check_distance_penalty(_pen(lambda w, d, b: b * torch.sum(torch.abs(w) * d)), seed=3)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_pen(lambda w, d, b: b * (w * d).sum()), "take |W|"),
        (_pen(lambda w, d, b: b * (w * w * d).sum()), r"use \|W\|, not W²"),
        (_pen(lambda w, d, b: b * (w.abs() @ d).sum()), "not as matrices"),
        (_pen(lambda w, d, b: b * w.abs().sum() * d.sum()), "not the two sums"),
        (_pen(lambda w, d, b: b * (w.abs() * d).mean()), "do not average"),
        (_pen(lambda w, d, b: (w.abs() * d).sum()), "multiply by beta"),
        (_pen(lambda w, d, b: b * w.abs().sum()), "the distances are missing"),
        (
            _pen(lambda w, d, b: torch.tensor((b * (w.abs() * d).sum()).item())),
            "carries no gradient",
        ),
        (_pen(lambda w, d, b: b * (w.abs() * d).sum(0)), "must return a scalar"),
        (lambda w, d, b: abs(b) * (w.abs() * d).sum(), r"beta=-0.1\) should raise ValueError"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_penalties_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_distance_penalty(wrong)


# ------------------------------------------------------------------ part 4: communicability


def _comm(
    normalise=True,
    strength_dim=0,
    absolute=True,
    zero_diagonal=True,
    exp=None,
    guard=True,
    sides="both",
):
    def communicability(weight):
        magnitude = weight.abs() if absolute else weight
        strength = magnitude.sum(dim=strength_dim)
        if guard:
            inv = torch.where(strength > 0, strength.clamp_min(1e-30).rsqrt(), 0.0)
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


def comm_scipy(weight):
    from scipy.linalg import expm

    return torch.from_numpy(
        regularisers.communicability(weight.detach()).numpy() + 0 * expm(np.eye(2))[0, 0]
    )


def test_reference_communicability_passes():
    check_communicability(regularisers.communicability)
    check_communicability(_comm(), seed=21)


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (_comm(zero_diagonal=False), "the diagonal .* must be set to 0"),
        (_comm(normalise=False), r"normalise before the exponential"),
        (_comm(strength_dim=1), "you used row sums"),
        (_comm(exp=torch.exp), "not the elementwise torch.exp"),
        (_comm(sides="right"), "not once by S"),
        (_comm(sides="left"), "not once by S"),
        (_comm(absolute=False, guard=True), r"use \|W\| everywhere"),
        (_comm(absolute=False, guard=False), "contains NaN or inf"),
        (_comm(guard=False), "0\\^-1/2 is undefined"),
        (comm_scipy, "carries no gradient"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_communicability_is_rejected_with_its_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_communicability(wrong)

"""Penalties against hand-computed values, gradients against finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.regularisers import (
    communicability,
    communicability_penalty,
    distance_matrix,
    distance_penalty,
    grid_positions,
    l1_weights,
    l2_rates,
)

SWAP = torch.tensor([[0.0, 1.0], [1.0, 0.0]])


def away_from_zero(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """float64 entries with |w| in [0.2, 1.2]: far from the kink of |w| for gradcheck."""
    g = torch.Generator().manual_seed(seed)
    magnitude = 0.2 + torch.rand(shape, generator=g, dtype=torch.float64)
    sign = torch.where(torch.rand(shape, generator=g) < 0.5, -1.0, 1.0).double()
    return magnitude * sign


# --- L1 -------------------------------------------------------------------------------------


def test_l1_hand_value():
    w = torch.tensor([[1.0, -2.0], [0.0, 3.0]])
    assert l1_weights(w, beta=0.5).item() == pytest.approx(3.0)


def test_l1_sums_over_several_matrices():
    a, b = torch.tensor([[-1.0, 1.0]]), torch.tensor([[2.0], [-4.0]])
    assert l1_weights([a, b], beta=2.0).item() == pytest.approx(16.0)


def test_l1_gradient_is_beta_times_sign():
    w = torch.tensor([[0.5, -2.0]], requires_grad=True)
    l1_weights(w, beta=3.0).backward()
    assert torch.equal(w.grad, torch.tensor([[3.0, -3.0]]))


# --- L2 on rates ----------------------------------------------------------------------------


def test_l2_rates_sums_units():
    rates = torch.tensor([1.0, 2.0, 0.0, 0.0]).reshape(1, 1, 4)  # (T=1, B=1, 4 units)
    assert l2_rates(rates, beta=0.1).item() == pytest.approx(0.5)


def test_l2_rates_averages_time_and_batch():
    over_time = torch.tensor([1.0, 2.0, 0.0, 0.0]).reshape(4, 1, 1)
    over_batch = over_time.reshape(1, 4, 1)
    assert l2_rates(over_time, beta=1.0).item() == pytest.approx(5 / 4)
    assert l2_rates(over_batch, beta=1.0).item() == pytest.approx(5 / 4)


def test_l2_rates_wants_time_batch_units():
    with pytest.raises(ValueError, match="rates must have shape"):
        l2_rates(torch.ones(5, 3), beta=1.0)


# --- Positions and distances ----------------------------------------------------------------


def test_grid_positions_row_major():
    pos = grid_positions((2, 3))
    assert pos.shape == (6, 2)
    assert pos[4].tolist() == [1.0, 1.0]
    assert pos[5].tolist() == [1.0, 2.0]
    assert grid_positions((3,), spacing=0.5).flatten().tolist() == [0.0, 0.5, 1.0]


def test_grid_positions_3d_are_distinct():
    pos = grid_positions((5, 5, 4))
    assert pos.shape == (100, 3)
    assert len({tuple(p) for p in pos.tolist()}) == 100


@pytest.mark.parametrize("shape", [(), (2, 2, 2, 2), (0, 3), (2.5,)])
def test_grid_positions_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="1 to 3 positive integers"):
        grid_positions(shape)


def test_distance_matrix_hand_values():
    d = distance_matrix(torch.tensor([[0.0, 0.0], [3.0, 4.0], [0.0, 1.0]]))
    expected = torch.tensor([[0.0, 5.0, 1.0], [5.0, 0.0, math.sqrt(18)], [1.0, math.sqrt(18), 0.0]])
    assert torch.allclose(d, expected)


def test_distance_matrix_on_a_line_is_index_difference():
    d = distance_matrix(grid_positions((4,)))
    i = torch.arange(4.0)
    assert torch.allclose(d, (i[:, None] - i[None, :]).abs())


def test_distance_penalty_hand_value():
    w = torch.tensor([[0.0, 2.0], [-1.0, 0.0]])
    d = torch.tensor([[0.0, 1.0], [3.0, 0.0]])
    assert distance_penalty(w, d, beta=0.5).item() == pytest.approx(0.5 * (2 * 1 + 1 * 3))


def test_distance_penalty_rejects_mismatched_positions():
    distances = distance_matrix(grid_positions((3, 3)))  # 9 units
    with pytest.raises(ValueError, match=r"one position per unit.*\(9, 9\)"):
        distance_penalty(torch.ones(4, 4), distances, beta=1.0)


# --- seRNN communicability ------------------------------------------------------------------


def test_sernn_swap_matrix_gives_two_sinh_one():
    # strengths 1, S = I, expm([[0,1],[1,0]]) = [[cosh 1, sinh 1], [sinh 1, cosh 1]]
    assert communicability_penalty(SWAP, SWAP, beta=1.0).item() == pytest.approx(2 * math.sinh(1))
    assert communicability_penalty(-SWAP, SWAP, beta=0.5).item() == pytest.approx(math.sinh(1))


def test_communicability_of_a_three_node_path():
    # A = path 0-1-2, strengths (1, 2, 1); S^-1/2 A S^-1/2 has eigenvalues 1, -1, 0 with
    # eigenvectors (1/2, 1/√2, 1/2), (1/2, -1/√2, 1/2), (1/√2, 0, -1/√2).
    a = torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    c = communicability(a)
    assert torch.equal(torch.diagonal(c), torch.zeros(3, dtype=torch.float64))
    assert c[0, 1].item() == pytest.approx(math.sinh(1) / math.sqrt(2))
    assert c[0, 2].item() == pytest.approx((math.cosh(1) - 1) / 2)
    d = distance_matrix(grid_positions((3,))).double()
    # four unit-length edges, each weighted by sinh(1)/√2
    assert communicability_penalty(a, d, beta=1.0).item() == pytest.approx(
        2 * math.sqrt(2) * math.sinh(1)
    )


def test_communicability_of_a_directed_pair():
    # W = [[0, a], [b, 0]]: out-strengths (b, a), normalised M = [[0, p], [1/p, 0]] with
    # p = sqrt(a/b); M² = I so expm(M) = cosh(1) I + sinh(1) M.
    a, b = 4.0, 1.0
    w = torch.tensor([[0.0, a], [b, 0.0]])
    expected = math.sinh(1) * (a * math.sqrt(a / b) + b * math.sqrt(b / a))
    assert communicability_penalty(w, SWAP, beta=1.0).item() == pytest.approx(expected, rel=1e-5)


def _taylor_expm(m: np.ndarray, terms: int = 40) -> np.ndarray:
    result, term = np.eye(len(m)), np.eye(len(m))
    for k in range(1, terms):
        term = term @ m / k
        result = result + term
    return result


def test_communicability_uses_outgoing_strength():
    # Independent path: numpy Taylor series on an asymmetric matrix where in- and
    # out-strengths differ. Strength of presynaptic unit j = sum of column j of |W|.
    rng = np.random.default_rng(3)
    w = rng.uniform(-1, 1, size=(4, 4))
    np.fill_diagonal(w, 0.0)
    s = np.abs(w).sum(axis=0)
    m = np.abs(w) / np.sqrt(s)[:, None] / np.sqrt(s)[None, :]
    expected = _taylor_expm(m)
    np.fill_diagonal(expected, 0.0)
    got = communicability(torch.tensor(w)).numpy()
    assert np.allclose(got, expected, atol=1e-10)


def test_communicability_survives_silent_units():
    # A 2-unit swap plus an isolated third unit: the same value as the swap alone.
    w = torch.zeros(3, 3)
    w[:2, :2] = SWAP
    d = torch.ones(3, 3)
    assert communicability_penalty(w, d, beta=1.0).item() == pytest.approx(2 * math.sinh(1))


def test_communicability_gradient_is_finite_with_zero_rows_and_columns():
    w = torch.tensor([[0.0, 0.5, 0.0], [0.3, 0.0, 0.0], [0.7, 0.2, 0.0]], requires_grad=True)
    # unit 2 sends nothing (column 2 is zero); unit 2 receives from 0 and 1
    penalty = communicability_penalty(w, torch.ones(3, 3), beta=1.0)
    penalty.backward()
    assert torch.isfinite(penalty)
    assert torch.isfinite(w.grad).all()
    zero = torch.zeros(2, 2, requires_grad=True)
    communicability_penalty(zero, SWAP, beta=1.0).backward()
    assert torch.isfinite(zero.grad).all()


@pytest.mark.parametrize("shape", [(2, 3), (4,)])
def test_communicability_wants_a_square_matrix(shape):
    with pytest.raises(ValueError, match="square"):
        communicability(torch.ones(shape))


def test_communicability_penalty_rejects_mismatched_distances():
    with pytest.raises(ValueError, match="distances must have the shape"):
        communicability_penalty(torch.ones(3, 3), torch.ones(2, 2), beta=1.0)


# --- every penalty: negative coefficients, gradients ---------------------------------------

W3 = away_from_zero((3, 3), seed=0)
D3 = distance_matrix(away_from_zero((3, 2), seed=1))
PENALTIES = {
    "l1": (lambda w, beta: l1_weights(w, beta), W3),
    "l2_rates": (lambda r, beta: l2_rates(r, beta), away_from_zero((4, 2, 3), seed=2)),
    "distance": (lambda w, beta: distance_penalty(w, D3, beta), W3),
    "communicability": (lambda w, beta: communicability_penalty(w, D3, beta), W3),
}


@pytest.mark.parametrize("name", PENALTIES)
def test_negative_coefficient_is_rejected(name):
    penalty, x = PENALTIES[name]
    with pytest.raises(ValueError, match="beta must be a non-negative number"):
        penalty(x, -0.1)


@pytest.mark.parametrize("name", PENALTIES)
def test_gradient_matches_finite_differences(name):
    penalty, x = PENALTIES[name]
    x = x.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: penalty(t, 0.7), (x,), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", PENALTIES)
def test_zero_coefficient_gives_zero(name):
    penalty, x = PENALTIES[name]
    assert penalty(x, 0.0).item() == 0.0

"""The helpers that compare spatial costs with their sparsity-matched L1 control
(course_lib.spatial: absent_fraction, wiring_length, beta_for_sparsity, module_patches),
against values computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib import spatial


def test_absent_fraction_counts_small_synapses_between_different_units():
    w = torch.tensor([[5.0, 0.001, 0.5], [0.02, 9.0, -0.005], [0.0, 0.3, 7.0]])
    # off the diagonal: 0.001, 0.5, 0.02, -0.005, 0, 0.3 -> three below 0.01
    assert spatial.absent_fraction(w) == pytest.approx(3 / 6)
    assert spatial.absent_fraction(w, threshold=0.4) == pytest.approx(5 / 6)
    # a zero diagonal (no autapses) is not counted as absent synapses
    assert spatial.absent_fraction(w - torch.diag(torch.diag(w))) == pytest.approx(3 / 6)


def test_absent_fraction_rejects_a_non_positive_threshold_and_a_non_square_matrix():
    with pytest.raises(ValueError, match="threshold"):
        spatial.absent_fraction(torch.ones(2, 2), threshold=0.0)
    with pytest.raises(ValueError, match="square"):
        spatial.absent_fraction(torch.ones(2, 3))


def test_wiring_length_is_the_strength_weighted_mean_distance():
    # three units on a line at 0, 1 and 3: d01 = 1, d02 = 3, d12 = 2
    distances = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]])
    w = torch.zeros(3, 3)
    w[0, 1] = 2.0  # length 1
    w[2, 0] = -1.0  # length 3, sign ignored
    w[1, 1] = 100.0  # an autapse has no length and does not dilute the mean
    assert spatial.wiring_length(w, distances) == pytest.approx((2 * 1 + 1 * 3) / 3)
    assert spatial.wiring_length(torch.zeros(3, 3), distances) == 0.0


def test_beta_for_sparsity_interpolates_in_log_beta_and_clamps():
    betas, sparsities = [1e-3, 1e-4, 1e-2], [0.6, 0.2, 0.9]  # any order
    assert spatial.beta_for_sparsity(betas, sparsities, 0.4) == pytest.approx(math.sqrt(1e-7))
    assert spatial.beta_for_sparsity(betas, sparsities, 0.75) == pytest.approx(10**-2.5)
    assert spatial.beta_for_sparsity(betas, sparsities, 0.6) == pytest.approx(1e-3)
    assert spatial.beta_for_sparsity(betas, sparsities, 0.99) == pytest.approx(1e-2)
    assert spatial.beta_for_sparsity(betas, sparsities, 0.0) == pytest.approx(1e-4)


def test_beta_for_sparsity_rejects_what_cannot_be_interpolated():
    with pytest.raises(ValueError, match="differ"):
        spatial.beta_for_sparsity([1e-4, 1e-3], [0.5, 0.5], 0.5)
    with pytest.raises(ValueError, match="positive"):
        spatial.beta_for_sparsity([0.0, 1e-3], [0.1, 0.5], 0.3)
    with pytest.raises(ValueError, match="at least two"):
        spatial.beta_for_sparsity([1e-3], [0.5], 0.5)


def test_module_patches_counts_separate_pieces_of_each_module():
    line = torch.tensor([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0], [3.0, 0.0]])
    # module 0 at both ends of the line, module 1 in the middle
    assert spatial.module_patches([0, 1, 1, 0], line) == [2, 1]
    assert spatial.module_patches([0, 0, 0, 0], line) == [1]
    assert spatial.module_patches([0, 1, 0, 1], line) == [2, 2]
    # on a 2 x 2 grid diagonal neighbours (distance 1.41 < 1.5) join a patch
    square = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    assert spatial.module_patches([0, 1, 1, 0], square) == [1, 1]
    assert spatial.module_patches([0, 1, 1, 0], square, radius=1.2) == [2, 2]


def test_module_patches_needs_one_label_per_unit():
    with pytest.raises(ValueError, match="one label per unit"):
        spatial.module_patches([0, 1], torch.zeros(3, 2))

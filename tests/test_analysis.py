"""Analysis on synthetic data whose answer is known in advance."""

from __future__ import annotations

import math

import pytest
import torch
from sklearn.decomposition import PCA as SklearnPCA

from course_lib.analysis import decision_accuracy, fit_pca, max_activation, selectivity_index

# Three orthogonal, zero-mean ±1 patterns over 4 samples (rows of a Hadamard matrix):
# each has mean 0 and population variance 1, and they are uncorrelated.
HADAMARD = torch.tensor(
    [[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]],
    dtype=torch.float64,
)


# --- selectivity ------------------------------------------------------------------------------


def test_selectivity_hand_value():
    # a = {1, 3}: mean 2, variance 1;  b = {-1, 1}: mean 0, variance 1
    a = torch.tensor([[1.0], [3.0]])
    b = torch.tensor([[-1.0], [1.0]])
    s = selectivity_index(a, b)
    assert s.shape == (1,)
    assert s.item() == pytest.approx(2 * 2 / math.sqrt(2))
    assert selectivity_index(b, a).item() == pytest.approx(-2 * 2 / math.sqrt(2))


def test_selectivity_of_gaussian_conditions():
    # unit k: condition a ~ N(mu_a[k], sd_a[k]²), condition b ~ N(mu_b[k], sd_b[k]²)
    g = torch.Generator().manual_seed(0)
    mu_a, sd_a = torch.tensor([1.0, 0.0, 2.0]), torch.tensor([1.0, 2.0, 0.5])
    mu_b, sd_b = torch.tensor([0.0, 0.0, -1.0]), torch.tensor([1.0, 1.0, 1.5])
    a = mu_a + sd_a * torch.randn(200, 100, 3, generator=g)  # 20,000 samples in (T, B, n)
    b = mu_b + sd_b * torch.randn(30_000, 3, generator=g)  # a different number of samples
    expected = [2 * 1 / math.sqrt(2), 0.0, 2 * 3 / math.sqrt(0.25 + 2.25)]
    assert selectivity_index(a, b).tolist() == pytest.approx(expected, abs=0.04)


def test_selectivity_of_constant_units_is_never_nan():
    silent = torch.zeros(5, 1)
    one, two = torch.ones(5, 1), 2 * torch.ones(5, 1)
    assert selectivity_index(silent, silent).item() == 0.0  # no information
    assert selectivity_index(two, one).item() == math.inf  # perfectly separated
    assert selectivity_index(one, two).item() == -math.inf
    # one sample per condition: variance 0, not NaN
    assert selectivity_index(torch.ones(1, 1), torch.ones(1, 1)).item() == 0.0


def test_selectivity_needs_matching_units():
    with pytest.raises(ValueError, match="same number of units"):
        selectivity_index(torch.zeros(4, 3), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="at least one sample"):
        selectivity_index(torch.zeros(3), torch.zeros(3))
    with pytest.raises(ValueError, match="at least one sample"):
        selectivity_index(torch.zeros(0, 3), torch.zeros(4, 3))


# --- maximum activation ---------------------------------------------------------------------


def test_max_activation_per_unit():
    hidden = torch.zeros(3, 2, 4)  # (T, B, n)
    hidden[2, 1, 0] = 5.0
    hidden[0, 0, 1] = 0.5
    hidden[:, :, 3] = -1.0
    assert max_activation(hidden).tolist() == [5.0, 0.5, 0.0, -1.0]


# --- PCA --------------------------------------------------------------------------------------


def test_pca_known_variances():
    # coordinates with standard deviations 3, 2, 1 along the axes: variances 9, 4, 1
    x = HADAMARD * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64) + 7.0
    pca = fit_pca(x, n_components=3)
    assert pca.explained_variance_ratio.tolist() == pytest.approx([9 / 14, 4 / 14, 1 / 14])
    assert torch.allclose(pca.components, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert pca.mean.tolist() == pytest.approx([7.0, 7.0, 7.0])


def _plane_data(seed: int = 0, noise: float = 0.0):
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(6, 2, generator=g, dtype=torch.float64))  # (6, 2)
    coords = torch.randn(50, 8, 2, generator=g, dtype=torch.float64) * torch.tensor(
        [3.0, 1.0], dtype=torch.float64
    )
    offset = torch.randn(6, generator=g, dtype=torch.float64)
    x = coords @ basis.T + offset + noise * torch.randn(50, 8, 6, generator=g, dtype=torch.float64)
    return x, basis


def test_pca_recovers_a_plane():
    x, basis = _plane_data(noise=1e-4)  # a long run (T=50, B=8) of 6 units on a plane
    pca = fit_pca(x, n_components=2)
    assert pca.explained_variance_ratio.sum().item() > 0.9999
    # each component lies in the plane: projecting it onto the plane changes nothing
    in_plane = pca.components @ basis @ basis.T
    assert torch.allclose(in_plane, pca.components, atol=1e-4)
    assert torch.allclose(
        pca.components @ pca.components.T, torch.eye(2, dtype=torch.float64), atol=1e-10
    )


def test_pca_projects_single_trials_into_the_fitted_axes():
    x, _ = _plane_data()
    pca = fit_pca(x, n_components=2)
    trial = x[:, 3]  # one trial's trajectory, (T, n_units)
    coords = pca.project(trial)
    assert coords.shape == (50, 2)
    # data on the plane are rebuilt exactly from 2 coordinates
    assert torch.allclose(coords @ pca.components + pca.mean, trial, atol=1e-10)


def test_pca_agrees_with_scikit_learn():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(300, 5, generator=g, dtype=torch.float64) @ torch.randn(
        5, 5, generator=g, dtype=torch.float64
    )
    ours = fit_pca(x, n_components=3)
    theirs = SklearnPCA(n_components=3).fit(x.numpy())
    assert ours.explained_variance_ratio.tolist() == pytest.approx(
        theirs.explained_variance_ratio_.tolist(), abs=1e-10
    )
    reference = torch.from_numpy(theirs.components_)
    signs = (ours.components * reference).sum(dim=1).sign()  # axes are defined up to sign
    assert torch.allclose(ours.components, signs[:, None] * reference, atol=1e-8)


def test_pca_sign_convention_is_deterministic():
    x = HADAMARD * torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64)
    a, b = fit_pca(x, 2), fit_pca(-x, 2)  # flipping the data must not flip the axes
    assert torch.equal(a.components, b.components)
    for component in a.components:
        assert component[component.abs().argmax()] > 0


def test_pca_bad_arguments():
    x = torch.zeros(10, 4)
    with pytest.raises(ValueError, match=r"n_components must be an integer in \[1, .*4\]"):
        fit_pca(x, n_components=5)
    with pytest.raises(ValueError, match="n_components"):
        fit_pca(x, n_components=0)
    with pytest.raises(ValueError, match=r"activity must be \(\.\.\., 4\)"):
        fit_pca(torch.randn(10, 4), 2).project(torch.zeros(3, 5))


# --- decision accuracy is reused per trial --------------------------------------------------


def test_decision_accuracy_scores_trials_not_steps():
    # two trials in column 0 (decision at steps 2-3 and 6), the network gets the first right
    targets = torch.tensor([[0], [0], [1], [1], [0], [0], [2], [0]])
    outputs = torch.zeros(8, 1, 3)
    outputs[:, 0, 0] = 1.0  # fixate everywhere ...
    outputs[3, 0, 1] = 9.0  # ... except choice 1 at the last step of trial 1 (right)
    outputs[2, 0, 2] = 9.0  # a wrong choice earlier in trial 1 does not count
    assert decision_accuracy(outputs, targets) == pytest.approx(0.5)

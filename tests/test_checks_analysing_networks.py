"""The assignment-10 checkers: the references pass; each plausible mistake is rejected
with its own message, in the student's terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from course_lib import analysis
from course_lib.checks.analysing_networks import (
    check_max_activation,
    check_pca_projection,
    check_selectivity_index,
)


def not_implemented(*args, **kwargs):
    raise NotImplementedError()


def flat(x):
    return x.reshape(-1, x.shape[-1])


# ------------------------------------------------------------------ part 1: selectivity


def sel_with(numerator, denominator, handle_constant=True):
    def fn(a, b):
        xa, xb = flat(a).double(), flat(b).double()
        num = numerator(xa, xb)
        out = num / denominator(xa, xb)
        return torch.where(num == 0, 0.0, out) if handle_constant else out

    return fn


MEAN_DIFF = lambda xa, xb: 2 * (xa.mean(0) - xb.mean(0))  # noqa: E731
SPREAD = lambda xa, xb: (xa.var(0, correction=0) + xb.var(0, correction=0)).sqrt()  # noqa: E731


def sel_no_pooling(a, b):
    return 2 * (a.mean(0) - b.mean(0)) / (a.var(0, correction=0) + b.var(0, correction=0)).sqrt()


def sel_over_units(a, b):
    xa, xb = flat(a), flat(b)
    return 2 * (xa.mean(1).mean() - xb.mean(1).mean()) / (xa.var(1).mean() + xb.var(1).mean())


def sel_nan_for_silent(a, b):
    return sel_with(MEAN_DIFF, SPREAD, handle_constant=False)(a, b)


def sel_zero_for_all_constant(a, b):
    xa, xb = flat(a).double(), flat(b).double()
    spread = SPREAD(xa, xb)
    return torch.where(spread == 0, 0.0, MEAN_DIFF(xa, xb) / spread)


def sel_epsilon(a, b):
    xa, xb = flat(a).double(), flat(b).double()
    return MEAN_DIFF(xa, xb) / (SPREAD(xa, xb) + 1e-8)


def sel_numpy(a, b):
    return analysis.selectivity_index(a, b).numpy()


def sel_in_place(a, b):
    out = analysis.selectivity_index(a, b)
    a.zero_()
    return out


def sel_shifted(a, b):
    return analysis.selectivity_index(a, b) + 0.05


def test_reference_selectivity_passes():
    check_selectivity_index(analysis.selectivity_index)
    check_selectivity_index(analysis.selectivity_index, seed=555)


def test_a_float32_selectivity_passes():
    check_selectivity_index(lambda a, b: analysis.selectivity_index(a.float(), b.float()).float())


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (sel_with(lambda xa, xb: xa.mean(0) - xb.mean(0), SPREAD), "the factor 2 is missing"),
        (
            sel_with(MEAN_DIFF, lambda xa, xb: xa.std(0, correction=0) + xb.std(0, correction=0)),
            "not by the sum of the standard deviations",
        ),
        (
            sel_with(
                MEAN_DIFF,
                lambda xa, xb: ((xa.var(0, correction=0) + xb.var(0, correction=0)) / 2).sqrt(),
            ),
            "not by their average",
        ),
        (
            sel_with(MEAN_DIFF, lambda xa, xb: xa.var(0, correction=0) + xb.var(0, correction=0)),
            "take the square root of the summed variances",
        ),
        (
            sel_with(MEAN_DIFF, lambda xa, xb: (xa.var(0) + xb.var(0)).sqrt()),
            "population variances",
        ),
        (sel_with(lambda xa, xb: -MEAN_DIFF(xa, xb), SPREAD), "the sign is reversed"),
        (lambda a, b: analysis.selectivity_index(a, b).abs(), "keep the sign of s"),
        (
            sel_with(MEAN_DIFF, lambda xa, xb: torch.cat([xa, xb]).var(0, correction=0).sqrt()),
            "standard deviation of the pooled samples",
        ),
        (sel_no_pooling, "Pool every leading dimension as samples first"),
        (sel_over_units, "returned shape \\(\\)"),
        (sel_nan_for_silent, "unit 0 never activates.*got nan"),
        (sel_zero_for_all_constant, "unit 1 is constant in each condition.*must be \\+inf, got 0"),
        (sel_epsilon, "unit 1 is constant in each condition.*got 2e\\+08"),
        (sel_numpy, "must return a torch.Tensor, got numpy.ndarray"),
        (sel_in_place, "changed its argument activity_a in place"),
        (sel_shifted, "differs from s = 2"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_selectivities_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_selectivity_index(wrong)


# ------------------------------------------------------------------ part 2: max activation


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (lambda h: flat(h).abs().max(0).values, "not the largest absolute value"),
        (lambda h: flat(h).mean(0), "not the mean"),
        (lambda h: flat(h).argmax(0), "not its position"),
        (lambda h: flat(h).min(0).values, "not the minimum"),
        (lambda h: flat(h).max(0).values.clamp(min=0), "do not clip the maximum at 0"),
        (lambda h: flat(h).max(0), "returned a tuple"),
        (lambda h: h.max(0).values, "Take the maximum over all time steps and trials"),
        (lambda h: flat(h).max(1).values, "not over the units"),
        (lambda h: h.amax(dim=(0, 1)), "may have any number of leading dimensions"),
        (lambda h: flat(h).max(0).values.numpy(), "got numpy.ndarray"),
        (
            lambda h: h.clamp_(min=-100).reshape(-1, h.shape[-1]).max(0).values + 1,
            "in place|largest activation",
        ),
        (lambda h: flat(h).max(0).values + 0.01, "is not each unit's largest activation"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_max_activations_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_max_activation(wrong)


def test_reference_max_activation_passes():
    check_max_activation(analysis.max_activation)
    check_max_activation(analysis.max_activation, seed=8)
    check_max_activation(lambda h: flat(h).max(dim=0).values)  # an ordinary solution


# ------------------------------------------------------------------ part 3: PCA projection


def reference_pca_project(fit, trajectory, k):
    pca = analysis.fit_pca(fit, k)
    return pca.project(trajectory), pca.explained_variance_ratio


def pca_parts(fit, k, centre=True):
    x = flat(fit).double()
    mean = x.mean(0) if centre else torch.zeros(x.shape[1], dtype=x.dtype)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    return mean, s, vt


def sign_fix(vt):
    biggest = vt.abs().argmax(dim=1, keepdim=True)
    return vt * vt.gather(1, biggest).sign()


def pca_variant(centre_fit=True, centre_traj="fit", sign=True, ratio="ok", columns=False):
    def fn(fit, trajectory, k):
        mean, s, vt = pca_parts(fit, k, centre_fit)
        comps = vt[:, :k].T if columns else vt[:k]
        if sign:
            comps = sign_fix(comps)
        if centre_traj == "fit":
            centred = trajectory - mean
        elif centre_traj == "own":
            centred = trajectory - trajectory.mean(0)
        else:
            centred = trajectory
        variance = s.pow(2)
        r = {
            "ok": variance[:k] / variance.sum(),
            "unsquared": s[:k] / s.sum(),
            "first_k": variance[:k] / variance[:k].sum(),
        }[ratio]
        return centred @ comps.T, r

    return fn


def pca_fit_on_trajectory(fit, trajectory, k):
    return reference_pca_project(trajectory, trajectory, k)


def pca_eigh_ascending(fit, trajectory, k):
    x = flat(fit).double()
    mean = x.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((x - mean).T, correction=0))
    comps = sign_fix(evecs[:, :k].T)
    return (trajectory - mean) @ comps.T, evals[:k] / evals.sum()


def pca_sklearn(fit, trajectory, k):
    """scikit-learn's PCA with the course's sign convention: an acceptable solution."""
    from sklearn.decomposition import PCA

    x = flat(fit).double().numpy()
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    comps = sign_fix(torch.as_tensor(pca.components_))
    coords = (trajectory - torch.as_tensor(pca.mean_)) @ comps.T
    return coords, torch.as_tensor(pca.explained_variance_ratio_)


def test_reference_pca_passes():
    check_pca_projection(reference_pca_project)
    check_pca_projection(reference_pca_project, seed=31)
    check_pca_projection(pca_sklearn)
    check_pca_projection(pca_variant())


@pytest.mark.parametrize(
    ("wrong", "message"),
    [
        (pca_variant(centre_fit=False, centre_traj="none"), "subtract the mean of the fitted"),
        (pca_variant(centre_traj="none"), "subtract the long run's mean from the trajectory"),
        (pca_variant(centre_traj="own"), "not with its own mean"),
        (pca_fit_on_trajectory, "you fitted them on the trajectory itself"),
        (pca_variant(columns=True), "the components are the rows of Vᵀ"),
        (pca_eigh_ascending, "eigenvalues in ascending order"),
        (pca_variant(sign=False), "have the wrong sign"),
        (pca_variant(ratio="unsquared"), "the square of its singular value"),
        (pca_variant(ratio="first_k"), "not of the first n_components only"),
        (
            lambda fit, traj, k: (
                reference_pca_project(fit, traj, k)[0].T,
                reference_pca_project(fit, traj, k)[1],
            ),
            "Transpose it",
        ),
        (lambda fit, traj, k: reference_pca_project(fit, traj, k)[0], "must return the pair"),
        (
            lambda fit, traj, k: (reference_pca_project(fit, traj, k)[0], torch.ones(k + 1)),
            "explained_variance_ratio of shape",
        ),
        (
            lambda fit, traj, k: (reference_pca_project(fit, traj, k)[0].numpy(), np.ones(k)),
            "must return a torch.Tensor",
        ),
        (
            lambda fit, traj, k: (
                reference_pca_project(fit, traj, k)[0],
                reference_pca_project(fit, traj, k)[1] * 0.9,
            ),
            "the coordinates are right but the explained-variance ratio is not",
        ),
        (
            lambda fit, traj, k: (
                reference_pca_project(fit, traj, k)[0] * 1.1,
                reference_pca_project(fit, traj, k)[1],
            ),
            "the coordinates differ from the projection",
        ),
        (
            lambda fit, traj, k: reference_pca_project(fit.sub_(fit.mean()), traj, k),
            "changed its argument fit_activity in place",
        ),
        (lambda fit, traj, k: torch.linalg.svd(fit), "raised RuntimeError|must return the pair"),
        (not_implemented, "is not implemented yet"),
    ],
)
def test_wrong_pca_projections_are_rejected_with_their_message(wrong, message):
    with pytest.raises(AssertionError, match=message):
        check_pca_projection(wrong)


def test_checkers_write_nothing_to_stderr(capfd):
    check_selectivity_index(analysis.selectivity_index)
    check_max_activation(analysis.max_activation)
    check_pca_projection(reference_pca_project)
    assert capfd.readouterr().err == ""

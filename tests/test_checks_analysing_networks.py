"""The assignment-10 checkers: the references and correct variants pass at several seeds;
each plausible mistake, written as a student would write it, is rejected with its own
message and mistake id."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from catalogue import not_implemented, rejects

from course_lib import analysis
from course_lib.checks.analysing_networks import (
    check_max_activation,
    check_pca_projection,
    check_selectivity_index,
)

SEEDS = (0, 1, 2003, 512)


class Agreeable(torch.Tensor):
    """A tensor subclass that claims to equal everything."""

    def __eq__(self, other):
        return True

    __hash__ = torch.Tensor.__hash__


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


def sel_float32(a, b):
    xa, xb = flat(a).float(), flat(b).float()
    difference = 2 * (xa.mean(0) - xb.mean(0))
    spread = torch.sqrt(xa.var(0, unbiased=False) + xb.var(0, unbiased=False))
    return torch.where(difference == 0, torch.zeros_like(spread), difference / spread)


def sel_nan_replaced(a, b):
    """Divide first, then replace the NaN of 0 / 0 (the inf of x / 0 stays)."""
    xa, xb = flat(a), flat(b)
    mean_a, mean_b = xa.sum(0) / xa.shape[0], xb.sum(0) / xb.shape[0]
    var_a = ((xa - mean_a) ** 2).mean(0)
    var_b = ((xb - mean_b) ** 2).mean(0)
    s = 2 * (mean_a - mean_b) / (var_a + var_b) ** 0.5
    s[torch.isnan(s)] = 0.0
    return s


def sel_numpy_inside(a, b):
    xa, xb = flat(a).numpy(), flat(b).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 2 * (xa.mean(0) - xb.mean(0)) / np.sqrt(xa.var(0) + xb.var(0))
    return torch.from_numpy(np.nan_to_num(s, nan=0.0, posinf=np.inf, neginf=-np.inf))


def sel_numpy_float32(a, b):
    """NumPy's two-pass variance in float32, the input's own dtype."""
    xa, xb = flat(a).numpy(), flat(b).numpy()
    difference = 2 * (xa.mean(0) - xb.mean(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(difference == 0, 0.0, difference / np.sqrt(xa.var(0) + xb.var(0)))
    return torch.from_numpy(s)


CORRECT_SELECTIVITIES = [analysis.selectivity_index, sel_float32, sel_nan_replaced,
                         sel_numpy_inside, sel_numpy_float32]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", CORRECT_SELECTIVITIES, ids=lambda f: f.__name__)
def test_correct_selectivities_pass(fn, seed):
    check_selectivity_index(fn, seed=seed)


def sel_no_pooling(a, b):
    return 2 * (a.mean(0) - b.mean(0)) / (a.var(0, correction=0) + b.var(0, correction=0)).sqrt()


def sel_over_units(a, b):
    xa, xb = flat(a), flat(b)
    return 2 * (xa.mean(1).mean() - xb.mean(1).mean()) / (xa.var(1).mean() + xb.var(1).mean())


def sel_zero_for_all_constant(a, b):
    xa, xb = flat(a).double(), flat(b).double()
    spread = SPREAD(xa, xb)
    return torch.where(spread == 0, 0.0, MEAN_DIFF(xa, xb) / spread)


def sel_zero_for_silent_only(a, b):
    xa, xb = flat(a).double(), flat(b).double()
    silent = (xa.abs().max(0).values == 0) & (xb.abs().max(0).values == 0)
    return torch.where(silent, 0.0, MEAN_DIFF(xa, xb) / SPREAD(xa, xb))


def sel_epsilon(a, b):
    xa, xb = flat(a).double(), flat(b).double()
    return MEAN_DIFF(xa, xb) / (SPREAD(xa, xb) + 1e-8)


def sel_nan_to_num(a, b):
    xa, xb = flat(a).double(), flat(b).double()
    return torch.nan_to_num(MEAN_DIFF(xa, xb) / SPREAD(xa, xb))


def sel_in_place(a, b):
    out = analysis.selectivity_index(a, b)
    a.zero_()
    return out


def sel_global_variance(a, b):
    xa, xb = flat(a), flat(b)
    out = 2 * (xa.mean(0) - xb.mean(0)) / (xa.var(correction=0) + xb.var(correction=0)).sqrt()
    return torch.where(out == 0, 0.0, out)


def sel_one_pass_variance(a, b):
    """var = mean(x²) − mean(x)², in the input's dtype: cancellation for steady units."""
    xa, xb = flat(a), flat(b)

    def variance(x):
        return (x * x).mean(0) - x.mean(0) ** 2

    difference = 2 * (xa.mean(0) - xb.mean(0))
    s = difference / torch.sqrt(variance(xa) + variance(xb))
    return torch.where(difference == 0, torch.zeros_like(s), s)


def sel_whole_tensor(a, b):
    s = 2 * (a.mean() - b.mean()) / torch.sqrt(a.var(correction=0) + b.var(correction=0))
    return s.expand(a.shape[-1])


WRONG_SELECTIVITIES = [
    (sel_one_pass_variance, "mean\\(x²\\) − mean\\(x\\)² subtracts two nearly equal",
     "unstable_variance"),
    (sel_with(MEAN_DIFF, lambda xa, xb: (xa.std(0, correction=0) + xb.std(0, correction=0))
              .sqrt()), "you summed the standard deviations σ_a \\+ σ_b under the square root",
     "standard_deviations_under_root"),
    (sel_whole_tensor, "for each unit separately, over the samples",
     "statistics_over_all_units"),
    (sel_with(lambda xa, xb: xa.mean(0) - xb.mean(0), SPREAD), "the factor 2 is missing",
     "factor_two_missing"),
    (sel_with(MEAN_DIFF, lambda xa, xb: xa.std(0, correction=0) + xb.std(0, correction=0)),
     "not by the sum of the standard deviations", "sum_of_standard_deviations"),
    (sel_with(MEAN_DIFF,
              lambda xa, xb: ((xa.var(0, correction=0) + xb.var(0, correction=0)) / 2).sqrt()),
     "not by their average", "average_variance"),
    (sel_with(MEAN_DIFF, lambda xa, xb: xa.var(0, correction=0) + xb.var(0, correction=0)),
     "take the square root of the summed variances", "no_square_root"),
    (sel_with(MEAN_DIFF, lambda xa, xb: (xa.var(0) + xb.var(0)).sqrt()), "population variances",
     "sample_variance"),
    (sel_with(lambda xa, xb: -MEAN_DIFF(xa, xb), SPREAD), "the sign is reversed", "sign_reversed"),
    (lambda a, b: analysis.selectivity_index(a, b).abs(), "keep the sign of s", "absolute_value"),
    (sel_with(MEAN_DIFF, lambda xa, xb: torch.cat([xa, xb]).var(0, correction=0).sqrt()),
     "standard deviation of the pooled samples", "pooled_standard_deviation"),
    (sel_global_variance, "not the variance of the whole tensor", "variance_over_all_units"),
    (sel_no_pooling, "Pool every leading dimension as samples first", "leading_dims_not_pooled"),
    (sel_with(MEAN_DIFF, SPREAD, handle_constant=False), "unit 0 never activates.*got nan",
     "silent_unit_not_zero"),
    (sel_zero_for_silent_only, "unit 3 is constant at the same value.*got nan",
     "equal_constant_unit_not_zero"),
    (sel_zero_for_all_constant, "unit 1 is constant in each condition.*must be \\+inf, got 0",
     "constant_unit_not_inf"),
    (sel_epsilon, "unit 1 is constant in each condition.*got 2e\\+08", "constant_unit_not_inf"),
    (sel_nan_to_num, "unit 1 is constant in each condition.*got 1.798e\\+308",
     "constant_unit_not_inf"),
    (lambda a, b: analysis.selectivity_index(a, b) + 0.05, "differs from s = 2", "wrong"),
    (lambda a, b: analysis.selectivity_index(a, b).clamp(-20, 20), "must be \\+inf, got 20",
     "constant_unit_not_inf"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), WRONG_SELECTIVITIES)
def test_wrong_selectivities_are_rejected_with_their_message(wrong, message, mistake):
    rejects(check_selectivity_index, wrong, f"analysing_networks.selectivity_{mistake}", message)


COMMON_SELECTIVITIES = [
    (sel_over_units, "returned shape \\(\\)", "wrong_shape"),
    (sel_in_place, "changed its argument a in place", "in_place"),
    (lambda a, b: analysis.selectivity_index(a, b).numpy(), "got numpy.ndarray", "wrong_type"),
    (lambda a, b: analysis.selectivity_index(a, b).tolist(), "got builtins.list", "wrong_type"),
    (lambda a, b: None, "got None", "wrong_type"),
    (lambda a, b: analysis.selectivity_index(a, b).as_subclass(Agreeable), "subclass",
     "tensor_subclass"),
    (lambda a, b: analysis.selectivity_index(a, b).to_sparse(), "sparse", "sparse"),
    (lambda a, b: analysis.selectivity_index(a, b).to("meta"), "on meta", "device"),
    (lambda a, b: analysis.selectivity_index(a + 0 * torch.rand(1), b), "global random",
     "global_rng"),
    (not_implemented, "is not implemented yet", "not_implemented"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), COMMON_SELECTIVITIES)
def test_selectivity_results_of_the_wrong_kind_are_rejected(wrong, message, mistake):
    rejects(check_selectivity_index, wrong, f"common.{mistake}", message)


# ------------------------------------------------------------------ part 2: max activation


CORRECT_MAXIMA = [
    analysis.max_activation,
    lambda h: flat(h).max(dim=0).values,
    lambda h: torch.amax(h, dim=tuple(range(h.dim() - 1))),
    lambda h: h.flatten(end_dim=-2).max(0)[0],
    lambda h: torch.stack([h[..., j].max() for j in range(h.shape[-1])]),
]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", CORRECT_MAXIMA)
def test_correct_max_activations_pass(fn, seed):
    check_max_activation(fn, seed=seed)


WRONG_MAXIMA = [
    (lambda h: h.max().expand(h.shape[-1]), "not the maximum of the whole tensor",
     "over_whole_tensor"),
    (lambda h: flat(h).abs().max(0).values, "not the largest absolute value", "absolute_value"),
    (lambda h: flat(h).mean(0), "not the mean", "mean_not_max"),
    (lambda h: flat(h).argmax(0), "not its position", "argmax"),
    (lambda h: flat(h).min(0).values, "not the minimum", "minimum"),
    (lambda h: flat(h).max(0).values.clamp(min=0), "do not clip the maximum at 0",
     "clipped_at_zero"),
    (lambda h: flat(h).max(0), "returned a tuple", "returns_values_and_indices"),
    (lambda h: h.max(0).values, "Take the maximum over all time steps and trials",
     "leading_dims_not_pooled"),
    (lambda h: flat(h).max(1).values, "not over the units", "over_units"),
    (lambda h: h.amax(dim=(0, 1)), "may have any number of leading dimensions",
     "fixed_leading_dims"),
    (lambda h: flat(h).max(0).values + 0.01, "is not each unit's largest activation", "wrong"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), WRONG_MAXIMA)
def test_wrong_max_activations_are_rejected_with_their_message(wrong, message, mistake):
    rejects(check_max_activation, wrong, f"analysing_networks.max_{mistake}", message)


COMMON_MAXIMA = [
    (lambda h: flat(h).max(0).values.numpy(), "got numpy.ndarray", "wrong_type"),
    (lambda h: flat(h.clamp_(min=-0.5)).max(0).values, "changed its argument h in place",
     "in_place"),
    (lambda h: flat(h).max(0).values.as_subclass(Agreeable), "subclass", "tensor_subclass"),
    (lambda h: None, "got None", "wrong_type"),
    (not_implemented, "is not implemented yet", "not_implemented"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), COMMON_MAXIMA)
def test_max_activation_results_of_the_wrong_kind_are_rejected(wrong, message, mistake):
    rejects(check_max_activation, wrong, f"common.{mistake}", message)


# ------------------------------------------------------------------ part 3: PCA projection


def reference_pca_project(fit, trajectory, k):
    pca = analysis.fit_pca(fit, k)
    return pca.project(trajectory), pca.explained_variance_ratio


def sign_fix(vt):
    biggest = vt.abs().argmax(dim=1, keepdim=True)
    return vt * vt.gather(1, biggest).sign()


def pca_variant(centre_fit=True, centre_traj="fit", sign=True, ratio="ok", columns=False,
                dtype=torch.float64):
    def fn(fit, trajectory, k):
        x = flat(fit).to(dtype)
        mean = x.mean(0) if centre_fit else torch.zeros(x.shape[1], dtype=dtype)
        _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
        comps = vt[:, :k].T if columns else vt[:k]
        if sign:
            comps = sign_fix(comps)
        trajectory = trajectory.to(dtype)
        centred = {"fit": trajectory - mean, "own": trajectory - trajectory.mean(0),
                   "none": trajectory}[centre_traj]
        variance = s.pow(2)
        r = {
            "ok": variance[:k] / variance.sum(),
            "unsquared": s[:k] / s.sum(),
            "first_k": variance[:k] / variance[:k].sum(),
            "variance": variance[:k] / (x.shape[0] - 1),
        }[ratio]
        return centred @ comps.T, r

    return fn


def pca_eigh(fit, trajectory, k):
    """Eigenvectors of the covariance, largest first: an acceptable solution."""
    x = flat(fit)
    mean = x.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((x - mean).T))
    order = evals.argsort(descending=True)
    comps = sign_fix(evecs[:, order[:k]].T)
    return torch.einsum("tn,kn->tk", trajectory - mean, comps), evals[order[:k]] / evals.sum()


def pca_loops(fit, trajectory, k):
    x = flat(fit)
    mean = x.mean(0)
    _, s, vh = torch.linalg.svd(x - mean, full_matrices=False)
    coords = torch.zeros(trajectory.shape[0], k, dtype=x.dtype)
    for j in range(k):
        axis = vh[j] if vh[j][vh[j].abs().argmax()] > 0 else -vh[j]
        coords[:, j] = (trajectory - mean) @ axis
    return coords, (s**2)[:k] / (s**2).sum()


def pca_sklearn(fit, trajectory, k):
    """scikit-learn's PCA with the course's sign convention: an acceptable solution."""
    from sklearn.decomposition import PCA

    x = flat(fit).double().numpy()
    pca = PCA(n_components=k, svd_solver="full").fit(x)
    comps = sign_fix(torch.as_tensor(pca.components_))
    coords = (trajectory.double() - torch.as_tensor(pca.mean_)) @ comps.T
    return coords, torch.as_tensor(pca.explained_variance_ratio_)


def pca_fit_on_trajectory(fit, trajectory, k):
    return reference_pca_project(trajectory, trajectory, k)


def pca_eigh_ascending(fit, trajectory, k):
    x = flat(fit).double()
    mean = x.mean(0)
    evals, evecs = torch.linalg.eigh(torch.cov((x - mean).T, correction=0))
    comps = sign_fix(evecs[:, :k].T)
    return (trajectory - mean) @ comps.T, evals[:k] / evals.sum()


def pca_standardised(fit, trajectory, k):
    x = flat(fit).double()
    mean, std = x.mean(0), x.std(0)
    _, s, vt = torch.linalg.svd((x - mean) / std, full_matrices=False)
    return ((trajectory - mean) / std) @ sign_fix(vt[:k]).T, s[:k] ** 2 / (s**2).sum()


def pca_first_entry_sign(fit, trajectory, k):
    x = flat(fit).double()
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:k] * vt[:k, :1].sign()
    return (trajectory - mean) @ comps.T, s[:k] ** 2 / (s**2).sum()


def pca_sum_sign(fit, trajectory, k):
    """Signs the axes so that their entries sum to a positive number."""
    x = flat(fit).double()
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:k] * vt[:k].sum(1, keepdim=True).sign()
    return (trajectory - mean) @ comps.T, s[:k] ** 2 / (s**2).sum()


def pca_largest_entry_sign(fit, trajectory, k):
    """Signs the axes by their largest entry, not their largest-magnitude entry."""
    x = flat(fit).double()
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    comps = vt[:k] * vt[:k].max(1, keepdim=True).values.sign()
    return (trajectory - mean) @ comps.T, s[:k] ** 2 / (s**2).sum()


def pca_first_axis_skipped(fit, trajectory, k):
    x = flat(fit).double()
    mean = x.mean(0)
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    return (trajectory - mean) @ sign_fix(vt[1:k + 1]).T, s[:k] ** 2 / (s**2).sum()


def pca_matrix_only(fit, trajectory, k):
    """Written for a (samples, n_units) fit only: a batched SVD of a 3-D fit."""
    mean = fit.mean(0)
    _, s, vt = torch.linalg.svd(fit - mean, full_matrices=False)
    return (trajectory - mean) @ sign_fix(vt[:k]).T, s[:k] ** 2 / (s**2).sum()


def pca_ratio_from_projection(fit, trajectory, k):
    """The ratio as the variance of the projected long run over the total variance."""
    x = flat(fit).double()
    centred = x - x.mean(0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    comps = sign_fix(vt[:k])
    ratio = (centred @ comps.T).var(0) / centred.var(0).sum()
    return (trajectory.double() - x.mean(0)) @ comps.T, ratio


def pca_fit_scores(fit, trajectory, k):
    """The long run's own coordinates, U S, instead of the trajectory's."""
    x = flat(fit).double()
    u, s, _ = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    return u[:, :k] * s[:k], s[:k] ** 2 / (s**2).sum()


def pca_global_mean(fit, trajectory, k):
    x = flat(fit).double()
    mean = x.mean()
    _, s, vt = torch.linalg.svd(x - mean, full_matrices=False)
    return (trajectory - mean) @ sign_fix(vt[:k]).T, s[:k] ** 2 / (s**2).sum()


CORRECT_PCAS = [reference_pca_project, pca_variant(), pca_variant(dtype=torch.float32),
                pca_eigh, pca_loops, pca_sklearn, pca_ratio_from_projection]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", CORRECT_PCAS)
def test_correct_pca_projections_pass(fn, seed):
    check_pca_projection(fn, seed=seed)


def ref_coords(fit, traj, k):
    return reference_pca_project(fit, traj, k)[0]


def ref_ratio(fit, traj, k):
    return reference_pca_project(fit, traj, k)[1]


WRONG_PCAS = [
    (pca_variant(centre_fit=False, centre_traj="none"), "subtract the mean of the fitted",
     "not_centred"),
    (pca_variant(centre_traj="none"), "subtract the long run's mean from the trajectory",
     "trajectory_not_centred"),
    (pca_variant(centre_traj="own"), "not with its own mean", "trajectory_own_mean"),
    (pca_fit_on_trajectory, "you fitted them on the trajectory itself", "fitted_on_trajectory"),
    (pca_variant(columns=True), "the components are the rows of Vᵀ", "columns_of_vh"),
    (pca_eigh_ascending, "eigenvalues in ascending order", "eigh_ascending"),
    (pca_standardised, "do not divide each unit by its standard deviation", "standardised"),
    (pca_variant(sign=False), "have the wrong sign", "sign_not_fixed"),
    (pca_first_entry_sign, "have the wrong sign", "sign_not_fixed"),
    (pca_sum_sign, "have the wrong sign", "sign_not_fixed"),
    (pca_fit_scores, "one row per sample of fit_activity: project the trajectory",
     "projected_fit_activity"),
    (pca_global_mean, "not the single mean of the whole tensor", "global_mean"),
    (pca_largest_entry_sign, "have the wrong sign", "sign_not_fixed"),
    (pca_first_axis_skipped, "not vt\\[1:n_components \\+ 1\\]", "first_axis_skipped"),
    (pca_variant(ratio="unsquared"), "the square of its singular value", "ratio_not_squared"),
    (pca_variant(ratio="first_k"), "not of the first n_components only", "ratio_of_kept_only"),
    (pca_variant(ratio="variance"), "divide the variances S\\[:k\\]² by the total variance",
     "ratio_not_normalised"),
    (lambda fit, traj, k: (ref_coords(fit, traj, k), ref_ratio(fit, traj, k) + 0.01),
     "the coordinates are right but the explained-variance ratio", "ratio_wrong"),
    (lambda fit, traj, k: (ref_coords(fit, traj, k) * 1.1, ref_ratio(fit, traj, k)),
     "the coordinates differ from the projection", "coordinates_wrong"),
    (lambda fit, traj, k: (ref_coords(fit, traj, k).T, ref_ratio(fit, traj, k)),
     "Transpose it", "coordinates_transposed"),
    (ref_coords, "must return the pair", "not_a_pair"),
    (lambda fit, traj, k: torch.linalg.svd(fit), "must return the pair", "not_a_pair"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), WRONG_PCAS)
def test_wrong_pca_projections_are_rejected_with_their_message(wrong, message, mistake):
    rejects(check_pca_projection, wrong, f"analysing_networks.pca_{mistake}", message)


COMMON_PCAS = [
    (lambda fit, traj, k: (ref_coords(fit, traj, k), torch.ones(k + 1)),
     "explained_variance_ratio of shape", "wrong_shape"),
    (lambda fit, traj, k: (ref_coords(fit, traj, k).numpy(), np.ones(k)), "got numpy.ndarray",
     "wrong_type"),
    (lambda fit, traj, k: (ref_coords(fit, traj, k), ref_ratio(fit, traj, k).tolist()),
     "got builtins.list", "wrong_type"),
    (lambda fit, traj, k: (ref_coords(fit, traj, k).as_subclass(Agreeable),
                           ref_ratio(fit, traj, k)), "subclass", "tensor_subclass"),
    (lambda fit, traj, k: reference_pca_project(fit.sub_(fit.mean()), traj, k),
     "changed its argument fit in place", "in_place"),
    (lambda fit, traj, k: torch.pca_lowrank(flat(fit), q=k), "global random", "global_rng"),
    (not_implemented, "is not implemented yet", "not_implemented"),
]


@pytest.mark.parametrize(("wrong", "message", "mistake"), COMMON_PCAS)
def test_pca_results_of_the_wrong_kind_are_rejected(wrong, message, mistake):
    rejects(check_pca_projection, wrong, f"common.{mistake}", message)


def test_other_sign_rules_fail_the_released_test_already():
    """The first case's first axis has a negative largest-magnitude entry but a positive
    sum, first entry and largest entry, so the visible seed rejects every other rule."""
    for wrong in (pca_first_entry_sign, pca_sum_sign, pca_largest_entry_sign):
        rejects(check_pca_projection, wrong, "analysing_networks.pca_sign_not_fixed",
                "n_components=2.*have the wrong sign")


def test_code_for_one_matrix_only_is_told_to_pool_leading_dimensions():
    rejects(check_pca_projection, pca_matrix_only, "analysing_networks.leading_dims_not_pooled",
            "any number of leading dimensions")


def reseeding(fn):
    """fn after torch.manual_seed(0), as a student might write "for reproducibility"."""

    def reseeded(*args):
        torch.manual_seed(0)
        return fn(*args)

    return reseeded


VISIBLE_CALLS = [  # (checker, reference, the call of the visible test before the checker)
    (check_selectivity_index, analysis.selectivity_index,
     (torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.zeros(3, 2))),
    (check_max_activation, analysis.max_activation, (torch.zeros(2, 1, 3),)),
    (check_pca_projection, reference_pca_project, (torch.randn(4, 3), torch.randn(2, 3), 2)),
]


@pytest.mark.parametrize(("check", "reference", "visible_args"), VISIBLE_CALLS)
def test_reseeding_the_global_generator_is_caught_after_the_visible_call(
        check, reference, visible_args):
    """The visible test calls the function first, which leaves the global generator at
    seed 0's state; a second torch.manual_seed(0) alone would not change it."""
    student = reseeding(reference)
    student(*visible_args)
    rejects(check, student, "common.global_rng", "global random generator")


def test_checkers_write_nothing_to_stderr(capfd):
    check_selectivity_index(analysis.selectivity_index)
    check_max_activation(analysis.max_activation)
    check_pca_projection(reference_pca_project)
    assert capfd.readouterr().err == ""


def test_patching_torch_in_an_answer_cell_changes_nothing(monkeypatch):
    """Expected values and data come from private references: patched torch functions
    neither make a wrong answer right nor change the checker's cases."""
    monkeypatch.setattr(torch, "allclose", lambda *a, **k: True)
    monkeypatch.setattr(torch, "equal", lambda *a, **k: True)
    monkeypatch.setattr(torch, "randn", lambda *a, **k: torch.zeros(a[0]))
    monkeypatch.setattr(torch, "where", lambda c, x, y: y)
    with pytest.raises(AssertionError, match="unit 0 never activates"):
        check_selectivity_index(analysis.selectivity_index)

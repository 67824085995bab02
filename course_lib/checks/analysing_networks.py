"""Checkers for assignment 10_analysing_networks.

The references are in `course_lib.analysis`:

- `selectivity_index(a, b)`: per unit, ``s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²)`` with
  population variances, all leading dimensions pooled as samples; ``0`` for a unit that
  is constant and equal in both conditions, ``±inf`` for one constant at different values;
- `max_activation(hidden)`: each unit's largest activation over every sample, ``(n,)``;
- `fit_pca(fit, k).project(trajectory)` and ``.explained_variance_ratio``: PCA by SVD of
  the centred long run, axes signed so that each one's largest-magnitude loading is
  positive, a trajectory centred with the long run's mean.

The data are seeded random "hidden activity" tensors shaped like a network's,
``(T, B, n_units)``, and every other number of leading dimensions the instructions allow;
float64 and float32 (a network's own dtype). The expected values are computed here, in
float64, from private references to torch's functions (an answer cell that patches
``torch.where`` or ``torch.linalg.svd`` changes nothing).
"""

from __future__ import annotations

import torch

from course_lib.checks._common import call, close, fail, single_threaded, tensor, worst_entry
from course_lib.checks._common import generator as _generator

# Private references (see `_common`).
_randn, _rand, _cat = torch.randn, torch.rand, torch.cat
_where, _sqrt, _isnan, _isinf, _sign = torch.where, torch.sqrt, torch.isnan, torch.isinf, torch.sign
_svd, _qr, _eigh, _cov = torch.linalg.svd, torch.linalg.qr, torch.linalg.eigh, torch.cov
_tensor = torch.tensor
_float32, _float64 = torch.float32, torch.float64

TOL = {_float64: 1e-5, _float32: 1e-4}  # a float32 computation must pass on float64 data too


def _call(fn, *args, what: str, pooling_hint: bool = False):
    """`call`; with ``pooling_hint`` (an input that is not a plain (samples, n_units)
    matrix), an error gets the commonest cause as a hint: leading dimensions not pooled."""
    try:
        return call(fn, *args, what=what)
    except AssertionError as failure:
        if pooling_hint and getattr(failure, "mistake", "") == "common.raised":
            fail("analysing_networks.leading_dims_not_pooled",
                 f"{failure.message}. The activity may have any number of leading dimensions, "
                 "(..., n_units): pool them into a (n_samples, n_units) matrix first, "
                 "x.reshape(-1, x.shape[-1]).")
        raise


def _samples(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]).to(_float64)


def _result(value, what: str, n: int, shape_hint) -> torch.Tensor:
    """A plain tensor of shape ``(n,)`` (NaN and inf allowed: compared later), as float64
    (its dtype is not checked: an integer result cannot equal random real values)."""
    out = tensor(value, what, finite=False)
    if tuple(out.shape) != (n,):
        mistake, hint = shape_hint(out)
        fail(mistake, f"{what} returned shape {tuple(out.shape)}; it should be (n_units,) = "
             f"({n},), one value per unit.{hint}")
    return out.to(_float64)


# ---------------------------------------------------------------- part 1: selectivity


def _selectivity(a, b):
    """s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²), 0 / 0 -> 0, computed here."""
    xa, xb = _samples(a), _samples(b)
    difference = 2 * (xa.mean(0) - xb.mean(0))
    spread = _sqrt(xa.var(0, correction=0) + xb.var(0, correction=0))
    return _where(difference == 0, 0.0, difference / spread)


def _selectivity_mistakes(a, b):
    xa, xb = _samples(a), _samples(b)
    ma, mb = xa.mean(0), xb.mean(0)
    va, vb = xa.var(0, correction=0), xb.var(0, correction=0)
    return [
        ("analysing_networks.selectivity_factor_two_missing",
         "the factor 2 is missing: s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²)",
         (ma - mb) / _sqrt(va + vb)),
        ("analysing_networks.selectivity_sum_of_standard_deviations",
         "divide by the square root of the summed variances, sqrt(σ_a² + σ_b²), not by the "
         "sum of the standard deviations σ_a + σ_b",
         2 * (ma - mb) / (_sqrt(va) + _sqrt(vb))),
        ("analysing_networks.selectivity_average_variance",
         "divide by sqrt(σ_a² + σ_b²), not by their average sqrt((σ_a² + σ_b²) / 2)",
         2 * (ma - mb) / _sqrt((va + vb) / 2)),
        ("analysing_networks.selectivity_no_square_root",
         "take the square root of the summed variances: sqrt(σ_a² + σ_b²)",
         2 * (ma - mb) / (va + vb)),
        ("analysing_networks.selectivity_sample_variance",
         "use population variances (divide by n: var(dim=0, correction=0)); torch's default "
         "var divides by n − 1",
         2 * (ma - mb) / _sqrt(xa.var(0) + xb.var(0))),
        ("analysing_networks.selectivity_sign_reversed",
         "the sign is reversed: s = 2(μ_a − μ_b) / ..., positive when the unit is more "
         "active in condition a",
         2 * (mb - ma) / _sqrt(va + vb)),
        ("analysing_networks.selectivity_absolute_value",
         "keep the sign of s (which condition drives the unit more): do not take |s|",
         (2 * (ma - mb) / _sqrt(va + vb)).abs()),
        ("analysing_networks.selectivity_pooled_standard_deviation",
         "use the variances σ_a² and σ_b² of each condition separately and combine them as "
         "sqrt(σ_a² + σ_b²); you divided by the standard deviation of the pooled samples",
         2 * (ma - mb) / _sqrt(_cat([xa, xb]).var(0, correction=0))),
        ("analysing_networks.selectivity_standard_deviations_under_root",
         "divide by sqrt(σ_a² + σ_b²), the root of the summed variances: you summed the "
         "standard deviations σ_a + σ_b under the square root",
         2 * (ma - mb) / _sqrt(_sqrt(va) + _sqrt(vb))),
        ("analysing_networks.selectivity_statistics_over_all_units",
         "compute μ and σ² for each unit separately, over the samples (dim 0 of the pooled "
         "samples), not over the whole tensor: s has one value per unit",
         (2 * (xa.mean() - xb.mean()) / _sqrt(xa.var(correction=0) + xb.var(correction=0)))
         .expand(xa.shape[1])),
        ("analysing_networks.selectivity_variance_over_all_units",
         "σ² is each unit's own variance over samples (var(dim=0) of the pooled samples), "
         "not the variance of the whole tensor",
         2 * (ma - mb) / _sqrt(xa.var(correction=0) + xb.var(correction=0))),
    ]


def _selectivity_shape_hint(out):
    if out.dim() >= 2:
        return ("analysing_networks.selectivity_leading_dims_not_pooled",
                " Pool every leading dimension as samples first: "
                "activity.reshape(-1, n_units), then take statistics over dim 0.")
    return "common.wrong_shape", " Statistics are taken over samples (dim 0), one per unit."


def _selectivity_case(fn, a, b, what):
    out = _call(fn, a.clone(), b.clone(), what=what, pooling_hint=a.dim() != 2 or b.dim() != 2)
    return _result(out, what, a.shape[-1], _selectivity_shape_hint)


def _ordinary_activity(rng, shape_a, shape_b, dtype):
    n = shape_a[-1]
    scale = _rand(n, generator=rng, dtype=_float64) + 0.3
    a = (_randn(shape_a, generator=rng, dtype=_float64) * scale + 0.5).clamp(min=0)
    b = (_randn(shape_b, generator=rng, dtype=_float64) * scale).clamp(min=0)
    return a.to(dtype), b.to(dtype)


@single_threaded
def check_selectivity_index(selectivity_index_fn, seed: int = 0) -> None:
    """Compare with s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²) on seeded activity of several
    shapes and dtypes, then on units that never vary (s = 0 or ±inf)."""
    rng = _generator(seed)
    base = "selectivity_index(activity_a, activity_b)"
    cases = [((12, 3, 5), (7, 3, 5), _float64), ((20, 6), (9, 6), _float64),
             ((4, 5, 2, 4), (6, 2, 4), _float64), ((10, 2, 3), (8, 3), _float32),
             ((6, 4), (1, 4), _float64)]
    for shape_a, shape_b, dtype in cases:
        a, b = _ordinary_activity(rng, shape_a, shape_b, dtype)
        what = f"{base} with {dtype} activity of shapes {shape_a} and {shape_b}"
        out = _selectivity_case(selectivity_index_fn, a, b, what)
        expected = _selectivity(a, b)
        if close(out, expected, TOL[dtype]):
            continue
        for mistake, message, wrong in _selectivity_mistakes(a, b):
            if close(out, wrong, TOL[dtype]):
                fail(mistake, f"{what}: {message}.")
        if _isnan(out).any():
            unit = int(_isnan(out).nonzero()[0])
            fail("analysing_networks.selectivity_nan_for_varying_unit",
                 f"{what} returned NaN for unit {unit}, whose activity varies: check the "
                 "formula (a variance over a single sample must be 0, not NaN).")
        fail("analysing_networks.selectivity_wrong",
             f"{what} differs from s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²): "
             f"{worst_entry(out, expected)}.")
    _check_constant_units(selectivity_index_fn, rng, base)
    _check_steady_units(selectivity_index_fn, rng, base)


def _check_constant_units(fn, rng, base):
    """Units 0: never active; 1: constant 1 in a, 0 in b; 2: 0 in a, 0.5 in b; 3: constant
    0.75 in both; 4: constant 0.5 in a, varying in b; 5: ordinary; 6: narrow and far apart,
    so s is finite but about 50 (a clamp of s would show). The constants are exact in
    binary, so their variances are exactly 0."""
    a = _rand(10, 4, 7, generator=rng, dtype=_float64)
    b = _rand(8, 4, 7, generator=rng, dtype=_float64)
    for unit, (in_a, in_b) in enumerate(((0.0, 0.0), (1.0, 0.0), (0.0, 0.5), (0.75, 0.75))):
        a[..., unit], b[..., unit] = in_a, in_b
    a[..., 4] = 0.5
    a[..., 6], b[..., 6] = 1 + 0.1 * a[..., 6], 0.1 * b[..., 6]
    what = f"{base} for units that never vary"
    out = _selectivity_case(fn, a, b, what)
    for unit, mistake, kind in (
        (0, "analysing_networks.selectivity_silent_unit_not_zero",
         "never activates (all zeros in both conditions)"),
        (3, "analysing_networks.selectivity_equal_constant_unit_not_zero",
         "is constant at the same value, 0.75, in both conditions"),
    ):
        if _isnan(out[unit]) or out[unit] != 0:
            fail(mistake,
                 f"{what}: unit {unit} {kind}, so it carries no information and its "
                 f"selectivity must be 0, got {out[unit].item():.4g}. Handle 0 / 0 explicitly "
                 "where the difference of the means is 0 (e.g. torch.where(difference == 0, "
                 "0.0, ...)), whatever the constant.")
    for unit, sign in ((1, 1.0), (2, -1.0)):
        if not (_isinf(out[unit]) and _sign(out[unit]) == sign):
            fail("analysing_networks.selectivity_constant_unit_not_inf",
                 f"{what}: unit {unit} is constant in each condition but at different values "
                 f"(it separates them perfectly), so s must be {'+' if sign > 0 else '-'}inf, "
                 f"got {out[unit].item():.4g}. Only 0 / 0 becomes 0: no epsilon, no clamp, "
                 "no nan_to_num (which turns inf into the largest float).")
    expected = _selectivity(a, b)
    if not close(out[4:], expected[4:], TOL[_float64]):
        fail("analysing_networks.selectivity_wrong",
             f"{what}: units 4 (constant in condition a only), 5 (ordinary) and 6 (narrow "
             "and far apart) have a non-zero variance in total, so "
             "s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²) is finite, and not limited (no clamp): "
             f"{worst_entry(out[4:], expected[4:])} (counting from unit 4).")


def _check_steady_units(fn, rng, base):
    """float32 activity (a network's own dtype) of units firing at a high, steady rate,
    about 30 ± 0.1: the variance as mean(x²) − mean(x)² subtracts two nearly equal numbers
    of about 900 and loses the digits that matter, while any two-pass formula (mean first,
    then mean((x − μ)²)) in float32 stays well inside the tolerance."""
    rates = _tensor([30.0, 30.2, 45.0, 44.8, 25.0, 25.1], dtype=_float64)
    a = rates[0::2] + 0.1 * _randn(12, 4, 3, generator=rng, dtype=_float64)
    b = rates[1::2] + 0.1 * _randn(9, 4, 3, generator=rng, dtype=_float64)
    a, b = a.to(_float32), b.to(_float32)
    what = f"{base} with float32 activity of units firing at a high, steady rate (about 30 ± 0.1)"
    out = _selectivity_case(fn, a, b, what)
    expected = _selectivity(a, b)
    if not close(out, expected, TOL[_float32]):
        fail("analysing_networks.selectivity_unstable_variance",
             f"{what}: {worst_entry(out, expected)}. Your formula is right on ordinary "
             "activity, so look at how you compute the variance: mean(x²) − mean(x)² "
             "subtracts two nearly equal large numbers and loses the digits that matter. "
             "Subtract the mean first, mean((x − μ)²), or use var(dim=0, correction=0).")


# ---------------------------------------------------------------- part 2: max activation


def _max_mistakes(hidden):
    x = _samples(hidden)
    return [
        ("analysing_networks.max_absolute_value",
         "take the largest activation, not the largest absolute value: a unit whose "
         "activity is always negative has a negative maximum",
         x.abs().max(0).values),
        ("analysing_networks.max_mean_not_max", "take the maximum over samples, not the mean",
         x.mean(0)),
        ("analysing_networks.max_argmax", "return the largest value, not its position (argmax)",
         x.argmax(0).to(_float64)),
        ("analysing_networks.max_minimum", "take the maximum, not the minimum", x.min(0).values),
        ("analysing_networks.max_over_whole_tensor",
         "take one maximum per unit, over the samples (dim 0 of the pooled samples), not the "
         "maximum of the whole tensor",
         x.max().expand(x.shape[1])),
        ("analysing_networks.max_clipped_at_zero",
         "do not clip the maximum at 0: return each unit's largest activation as it is",
         x.max(0).values.clamp(min=0)),
    ]


def _max_shape_hint(out):
    if out.dim() >= 2:
        return ("analysing_networks.max_leading_dims_not_pooled",
                " Take the maximum over all time steps and trials: pool every leading "
                "dimension (reshape(-1, n_units)) first.")
    if out.dim() == 1:
        return ("analysing_networks.max_over_units",
                " Take the maximum over the samples, not over the units.")
    return ("analysing_networks.max_fixed_leading_dims",
            " hidden may have any number of leading dimensions, (..., n_units): "
            "(T, B, n_units), (samples, n_units), ...; reduce all of them, not a fixed number.")


@single_threaded
def check_max_activation(max_activation_fn, seed: int = 0) -> None:
    """Compare with each unit's largest activation on seeded activity of several shapes:
    a unit always negative, a silent unit, one sample only, float32 and float64."""
    rng = _generator(seed)
    cases = [((15, 4, 6), _float64), ((30, 5), _float64), ((3, 4, 5, 7), _float64),
             ((1, 4), _float64), ((8, 2, 3), _float32)]
    for shape, dtype in cases:
        hidden = _randn(shape, generator=rng, dtype=_float64) - 0.3
        hidden[..., 0] = -_rand(shape[:-1], generator=rng, dtype=_float64) - 0.1
        hidden[..., 1] = 0.0  # a silent unit
        hidden = hidden.to(dtype)
        what = f"max_activation(hidden) with {dtype} hidden of shape {shape}"
        out = _call(max_activation_fn, hidden.clone(), what=what, pooling_hint=len(shape) != 2)
        if isinstance(out, tuple):
            fail("analysing_networks.max_returns_values_and_indices",
                 f"{what} returned a tuple (torch.max(dim=...) gives values and indices): "
                 "return only the values, e.g. hidden.max(dim=0).values.")
        out = _result(out, what, shape[-1], _max_shape_hint)
        expected = _samples(hidden).max(0).values
        if close(out, expected, TOL[dtype]):
            continue
        for mistake, message, wrong in _max_mistakes(hidden):
            if close(out, wrong, TOL[dtype]):
                fail(mistake, f"{what}: {message}.")
        fail("analysing_networks.max_wrong",
             f"{what} is not each unit's largest activation: {worst_entry(out, expected)}.")


# ---------------------------------------------------------------- part 3: PCA projection


def _sign_test_axis(n_units):
    """A first principal axis whose largest-magnitude entry is negative while its sum, its
    first entry and its largest entry are positive: every other sign rule flips it."""
    axis = _tensor([0.35] * (n_units - 1) + [-0.7], dtype=_float64)
    return axis / axis.norm()


def _low_rank_activity(shape, n_units, rng, offset, first_axis=None):
    """Activity of decreasing variance along the columns of a random orthonormal basis
    (the first column ``first_axis`` if given), around ``offset``."""
    columns = _randn(n_units, n_units, generator=rng, dtype=_float64)
    if first_axis is not None:
        columns[:, 0] = first_axis
    basis = _qr(columns)[0]
    scales = _tensor([3.0, 2.0, 1.2, 0.5, 0.25] + [0.1] * (n_units - 5), dtype=_float64)
    latent = _randn(*shape, n_units, generator=rng, dtype=_float64) * scales[:n_units]
    return latent @ basis.T + offset


def _sign_fixed(vt):
    biggest = vt.abs().argmax(dim=1, keepdim=True)
    return vt * vt.gather(1, biggest).sign()


def _pca(fit, k):
    """(mean, signed axes (k, n), singular values) of the centred long run."""
    x = _samples(fit)
    mean = x.mean(0)
    _, singular, vt = _svd(x - mean, full_matrices=False)
    return mean, _sign_fixed(vt[:k]), singular


def _pca_mistakes(fit, trajectory, k):
    """(mistake id, message, coordinates) of plausible wrong projections."""
    x, trajectory = _samples(fit), trajectory.to(_float64)
    mean, axes, _ = _pca(fit, k)
    _, _, vt0 = _svd(x, full_matrices=False)
    own = trajectory.mean(0)
    _, _, vtt = _svd(trajectory - own, full_matrices=False)
    _, _, vt = _svd(x - mean, full_matrices=False)
    evecs = _eigh(_cov((x - mean).T, correction=0))[1]
    standardised = []
    for correction in (0, 1):  # either standard deviation gives the same wrong axes
        std = x.std(0, correction=correction)
        vts = _svd((x - mean) / std, full_matrices=False)[2]
        standardised.append(
            ("analysing_networks.pca_standardised",
             "do not divide each unit by its standard deviation: PCA of the covariance keeps "
             "the units' own scales (only the mean is removed)",
             ((trajectory - mean) / std) @ _sign_fixed(vts[:k]).T))
    overall = x.mean()
    _, _, vtg = _svd(x - overall, full_matrices=False)
    return standardised + [
        ("analysing_networks.pca_global_mean",
         "subtract each unit's own mean (x.mean(dim=0), one per unit), not the single mean of "
         "the whole tensor",
         (trajectory - overall) @ _sign_fixed(vtg[:k]).T),
        ("analysing_networks.pca_not_centred",
         "subtract the mean of the fitted activity before the SVD (and from the trajectory "
         "before projecting): PCA describes variation around the mean",
         trajectory @ _sign_fixed(vt0[:k]).T),
        ("analysing_networks.pca_trajectory_not_centred",
         "the axes are right, but subtract the long run's mean from the trajectory before "
         "projecting it",
         trajectory @ axes.T),
        ("analysing_networks.pca_trajectory_own_mean",
         "centre the trajectory with the mean of the long run (the fitted data), not with "
         "its own mean: every trial must land in the same coordinates",
         (trajectory - own) @ axes.T),
        ("analysing_networks.pca_fitted_on_trajectory",
         "fit the axes on the long run (fit_activity), then project the trajectory onto "
         "them; you fitted them on the trajectory itself",
         (trajectory - own) @ _sign_fixed(vtt[:k]).T),
        ("analysing_networks.pca_columns_of_vh",
         "the components are the rows of Vᵀ (torch.linalg.svd returns U, S, Vᵀ): project "
         "onto vt[:k], not onto the columns vt[:, :k]",
         (trajectory - mean) @ _sign_fixed(vt[:, :k].T).T),
        ("analysing_networks.pca_first_axis_skipped",
         "keep the first n_components axes, vt[:n_components] (most variance first), not "
         "vt[1:n_components + 1]",
         (trajectory - mean) @ _sign_fixed(vt[1:k + 1]).T),
        ("analysing_networks.pca_eigh_ascending",
         "order the components by decreasing variance: torch.linalg.eigh returns the "
         "eigenvalues in ascending order, so you took the least important axes",
         (trajectory - mean) @ _sign_fixed(evecs[:, :k].T).T),
    ]


def _columns_match_up_to_sign(out, right, tol):
    if out.shape != right.shape:
        return False
    return all(close(out[:, j], right[:, j], tol) or close(out[:, j], -right[:, j], tol)
               for j in range(right.shape[1]))


# (leading dimensions of the fit, n_units, trajectory length, n_components, size of the
# offset from the origin, dtype): 1 to 3 leading dimensions, k from 1 to n_units.
PCA_CASES = [((40, 6), 8, 15, 2, 2.0, _float64), ((120,), 10, 25, 3, 20.0, _float64),
             ((10, 3, 4), 6, 12, 1, 2.0, _float64), ((50,), 5, 10, 5, 2.0, _float64),
             ((30, 4), 7, 20, 2, 2.0, _float32)]


@single_threaded
def check_pca_projection(pca_project, seed: int = 0) -> None:
    """Compare ``pca_project(fit_activity, trajectory, n_components)`` with the projection
    of the centred trajectory onto the signed principal axes of the centred long run, and
    its explained-variance ratio; fit activity of 1 to 3 leading dimensions, every number
    of components up to n_units, float64 and float32."""
    rng = _generator(seed)
    for number, (fit_shape, n_units, t_traj, k, offset_size, dtype) in enumerate(PCA_CASES):
        offset = _randn(n_units, generator=rng, dtype=_float64) * offset_size
        first_axis = _sign_test_axis(n_units) if number == 0 else None
        fit = _low_rank_activity(fit_shape, n_units, rng, offset, first_axis).to(dtype)
        trajectory = _low_rank_activity((t_traj,), n_units, rng, offset + 1.0).to(dtype)
        tol = TOL[dtype]
        what = (f"pca_project(fit_activity, trajectory, n_components={k}) with {dtype} "
                f"fit_activity of shape {tuple(fit.shape)} and trajectory of shape "
                f"{tuple(trajectory.shape)}")
        result = _call(pca_project, fit.clone(), trajectory.clone(), k, what=what,
                       pooling_hint=fit.dim() != 2)
        if not (type(result) in (tuple, list) and len(result) == 2):
            fail("analysing_networks.pca_not_a_pair",
                 f"{what} must return the pair (coordinates, explained_variance_ratio).")
        coords = tensor(result[0], f"{what}: coordinates", finite=False).to(_float64)
        ratio = tensor(result[1], f"{what}: explained_variance_ratio", finite=False)
        ratio = ratio.to(_float64)
        n_fit = fit.numel() // n_units
        if tuple(coords.shape) == (n_fit, k) and n_fit != t_traj:
            fail("analysing_networks.pca_projected_fit_activity",
                 f"{what} returned coordinates of shape {tuple(coords.shape)}, one row per "
                 "sample of fit_activity: project the trajectory (centred with the long run's "
                 f"mean) onto the axes, one row per time step, shape ({t_traj}, {k}).")
        if tuple(coords.shape) != (t_traj, k):
            transposed = tuple(coords.shape) == (k, t_traj)
            fail("analysing_networks.pca_coordinates_transposed" if transposed else
                 "common.wrong_shape",
                 f"{what} returned coordinates of shape {tuple(coords.shape)}; they should be "
                 f"(T, n_components) = ({t_traj}, {k})."
                 + (" Transpose it: one row per time step." if transposed else ""))
        if tuple(ratio.shape) != (k,):
            fail("common.wrong_shape",
                 f"{what} returned explained_variance_ratio of shape {tuple(ratio.shape)}; it "
                 f"should be (n_components,) = ({k},).")
        mean, axes, singular = _pca(fit, k)
        expected = (trajectory.to(_float64) - mean) @ axes.T
        _compare_coordinates(coords, expected, fit, trajectory, k, tol, what)
        _compare_ratio(ratio, singular, k, tol, what)


def _compare_coordinates(coords, expected, fit, trajectory, k, tol, what):
    if close(coords, expected, tol):
        return
    for mistake, message, wrong in _pca_mistakes(fit, trajectory, k):
        if close(coords, wrong, tol) or (_columns_match_up_to_sign(coords, wrong, tol)
                                         and not _columns_match_up_to_sign(coords, expected, tol)):
            fail(mistake, f"{what}: {message}.")
    if _columns_match_up_to_sign(coords, expected, tol):
        flipped = [j for j in range(k) if not close(coords[:, j], expected[:, j], tol)]
        fail("analysing_networks.pca_sign_not_fixed",
             f"{what}: the coordinates on component(s) {flipped} have the wrong sign. An SVD "
             "axis is only defined up to its sign: flip each axis so that its "
             "largest-magnitude entry is positive, as the instructions say.")
    fail("analysing_networks.pca_coordinates_wrong",
         f"{what}: the coordinates differ from the projection of the trajectory, centred with "
         f"the long run's mean, onto the fitted axes: {worst_entry(coords, expected)}.")


def _compare_ratio(ratio, singular, k, tol, what):
    variance = singular.pow(2)
    expected = variance[:k] / variance.sum()
    if close(ratio, expected, tol):
        return
    if close(ratio, singular[:k] / singular.sum(), tol):
        fail("analysing_networks.pca_ratio_not_squared",
             f"{what}: the variance along an axis is the square of its singular value: "
             "ratio = S[:k]² / sum(S²).")
    if k < len(singular) and close(ratio, variance[:k] / variance[:k].sum(), tol):
        fail("analysing_networks.pca_ratio_of_kept_only",
             f"{what}: the explained-variance ratio is each axis' share of the total variance "
             "(all singular values), not of the first n_components only.")
    if ratio.abs().sum() > 0 and close(ratio / ratio.sum(), expected / expected.sum(), tol):
        fail("analysing_networks.pca_ratio_not_normalised",
             f"{what}: the explained-variance ratio is a share: divide the variances S[:k]² by "
             "the total variance, sum(S²) over all singular values, so that the ratios of all "
             "axes sum to 1.")
    fail("analysing_networks.pca_ratio_wrong",
         f"{what}: the coordinates are right but the explained-variance ratio "
         f"S[:k]² / sum(S²) is not: {worst_entry(ratio, expected)}.")

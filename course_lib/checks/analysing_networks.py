"""Checkers for assignment 10_analysing_networks.

The references are in `course_lib.analysis`:

- `selectivity_index(a, b)`: per unit, ``s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²)`` with
  population variances, all leading dimensions pooled as samples; ``0`` for a unit that
  is constant and equal in both conditions, ``±inf`` for one constant at different values;
- `max_activation(hidden)`: each unit's largest activation over every sample, ``(n,)``;
- `fit_pca(fit, k).project(trajectory)` and ``.explained_variance_ratio``: PCA by SVD of
  the centred long run, axes signed so that each one's largest-magnitude loading is
  positive, a trajectory centred with the long run's mean.

The data are seeded random "hidden activity" tensors shaped like a network's:
``(T, B, n_units)``.
"""

from __future__ import annotations

import torch

from course_lib._validate import make_generator
from course_lib.analysis import fit_pca, max_activation, selectivity_index
from course_lib.checks._common import as_tensor, call, close, fail, single_threaded, worst_entry


def _unchanged(before, after, names, what):
    for name, b, a in zip(names, before, after, strict=True):
        if not torch.equal(b, a):
            fail(f"{what} changed its argument {name} in place: compute new tensors instead.")


def _samples(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(-1, x.shape[-1]).double()


# ---------------------------------------------------------------- part 1: selectivity


def _selectivity_mistakes(a, b):
    xa, xb = _samples(a), _samples(b)
    ma, mb = xa.mean(0), xb.mean(0)
    va, vb = xa.var(0, correction=0), xb.var(0, correction=0)
    return [
        (
            "the factor 2 is missing: s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²)",
            (ma - mb) / (va + vb).sqrt(),
        ),
        (
            "divide by the square root of the summed variances, sqrt(σ_a² + σ_b²), not by the "
            "sum of the standard deviations σ_a + σ_b",
            2 * (ma - mb) / (va.sqrt() + vb.sqrt()),
        ),
        (
            "divide by sqrt(σ_a² + σ_b²), not by their average sqrt((σ_a² + σ_b²) / 2)",
            2 * (ma - mb) / ((va + vb) / 2).sqrt(),
        ),
        (
            "take the square root of the summed variances: sqrt(σ_a² + σ_b²)",
            2 * (ma - mb) / (va + vb),
        ),
        (
            "use population variances (divide by n: var(dim=0, correction=0)); torch's default "
            "var divides by n − 1",
            2 * (ma - mb) / (xa.var(0) + xb.var(0)).sqrt(),
        ),
        (
            "the sign is reversed: s = 2(μ_a − μ_b) / ..., positive when the unit is more "
            "active in condition a",
            2 * (mb - ma) / (va + vb).sqrt(),
        ),
        (
            "keep the sign of s (which condition drives the unit more): do not take |s|",
            (2 * (ma - mb) / (va + vb).sqrt()).abs(),
        ),
        (
            "use the standard deviations σ (square roots of the variances) of each condition "
            "separately and combine them as sqrt(σ_a² + σ_b²); you divided by the standard "
            "deviation of the pooled samples",
            2 * (ma - mb) / torch.cat([xa, xb]).var(0, correction=0).sqrt(),
        ),
    ]


def _check_selectivity_case(fn, a, b, what):
    copies = [a.clone(), b.clone()]
    out = as_tensor(call(fn, *copies, what=what), what)
    _unchanged([a, b], copies, ["activity_a", "activity_b"], what)
    n = a.shape[-1]
    if tuple(out.shape) != (n,):
        hint = ""
        if out.dim() >= 2 and out.shape[-1] == n:
            hint = (
                " Pool every leading dimension as samples first: "
                "activity.reshape(-1, n_units), then take statistics over dim 0."
            )
        elif out.dim() == 1 and out.shape[0] != n:
            hint = " Statistics are taken over samples (dim 0), one value per unit."
        fail(
            f"{what} returned shape {tuple(out.shape)}; it should be (n_units,) = ({n},), "
            f"one selectivity per unit, for inputs of shapes {tuple(a.shape)} and "
            f"{tuple(b.shape)}.{hint}"
        )
    return out.detach().double()


@single_threaded
def check_selectivity_index(selectivity_index_fn, seed: int = 0) -> None:
    """Compare with `analysis.selectivity_index` on seeded activity, then on units that are
    silent (s = 0) or constant at different values (s = ±inf)."""
    rng = make_generator(seed)
    what_base = "selectivity_index(activity_a, activity_b)"
    shapes = [((12, 3, 5), (7, 3, 5)), ((20, 6), (9, 6)), ((4, 5, 2, 4), (6, 2, 4))]
    for shape_a, shape_b in shapes:
        n = shape_a[-1]
        scale = torch.rand(n, generator=rng, dtype=torch.float64) + 0.3
        a = torch.relu(torch.randn(shape_a, generator=rng, dtype=torch.float64) * scale + 0.5)
        b = torch.relu(torch.randn(shape_b, generator=rng, dtype=torch.float64) * scale)
        what = f"{what_base} with shapes {shape_a} and {shape_b}"
        out = _check_selectivity_case(selectivity_index_fn, a, b, what)
        expected = selectivity_index(a, b)
        if close(out, expected):
            continue
        if torch.isnan(out).any():
            unit = int(torch.isnan(out).nonzero()[0])
            fail(f"{what} returned NaN for unit {unit}, whose activity varies: check the formula.")
        for message, wrong in _selectivity_mistakes(a, b):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(
            f"{what} differs from s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²): "
            f"{worst_entry(out, expected)}."
        )

    # Special units: 0 silent (never activates), 1 constant 1 in a and 0 in b, 2 the
    # reverse, 3 an ordinary unit.
    a = torch.relu(torch.randn(10, 4, 4, generator=rng, dtype=torch.float64))
    b = torch.relu(torch.randn(8, 4, 4, generator=rng, dtype=torch.float64))
    a[..., 0], b[..., 0] = 0.0, 0.0
    a[..., 1], b[..., 1] = 1.0, 0.0
    a[..., 2], b[..., 2] = 0.0, 0.5
    what = f"{what_base} for units that never vary"
    out = _check_selectivity_case(selectivity_index_fn, a, b, what)
    if torch.isnan(out[0]) or out[0] != 0:
        fail(
            f"{what}: unit 0 never activates (all zeros in both conditions), so it carries no "
            f"information and its selectivity must be 0, got {out[0].item():.4g}. Handle "
            "0 / 0 explicitly (e.g. torch.where(difference == 0, 0.0, ...))."
        )
    for unit, sign in ((1, 1.0), (2, -1.0)):
        if not (torch.isinf(out[unit]) and torch.sign(out[unit]) == sign):
            fail(
                f"{what}: unit {unit} is constant in each condition but at different values "
                f"(it separates them perfectly), so s must be {'+' if sign > 0 else '-'}inf, "
                f"got {out[unit].item():.4g}. Only 0 / 0 becomes 0."
            )
    expected = selectivity_index(a, b)
    if not close(out[3:], expected[3:]):
        fail(f"{what}: unit 3 is an ordinary unit; {worst_entry(out[3:], expected[3:])}.")


# ---------------------------------------------------------------- part 2: max activation


def _max_mistakes(hidden):
    x = _samples(hidden)
    return [
        (
            "take the largest activation, not the largest absolute value: a unit whose "
            "activity is always negative has a negative maximum",
            x.abs().max(0).values,
        ),
        ("take the maximum over samples, not the mean", x.mean(0)),
        ("return the largest value, not its position (argmax)", x.argmax(0).double()),
        ("take the maximum, not the minimum", x.min(0).values),
        (
            "do not clip the maximum at 0: return each unit's largest activation as it is",
            x.max(0).values.clamp(min=0),
        ),
    ]


@single_threaded
def check_max_activation(max_activation_fn, seed: int = 0) -> None:
    """Compare with `analysis.max_activation` on seeded activity of several shapes."""
    rng = make_generator(seed)
    for shape in ((15, 4, 6), (30, 5), (3, 4, 5, 7)):
        hidden = torch.randn(shape, generator=rng, dtype=torch.float64) - 0.3
        hidden[..., 0] = -torch.rand(shape[:-1], generator=rng, dtype=torch.float64) - 0.1
        hidden[..., 1] = 0.0  # a silent unit
        what = f"max_activation(hidden) with hidden of shape {shape}"
        copy = hidden.clone()
        out = call(max_activation_fn, copy, what=what)
        if isinstance(out, tuple):
            fail(
                f"{what} returned a tuple (torch.max(dim=...) gives values and indices): "
                "return only the values, e.g. hidden.max(dim=0).values."
            )
        out = as_tensor(out, what)
        _unchanged([hidden], [copy], ["hidden"], what)
        n = shape[-1]
        if tuple(out.shape) != (n,):
            hint = ""
            if out.dim() >= 2 and out.shape[-1] == n:
                hint = " Take the maximum over all time steps and trials: pool every leading "
                hint += "dimension (reshape(-1, n_units)) first."
            elif out.dim() == 1:
                hint = " Take the maximum over the samples, not over the units."
            elif out.dim() == 0:
                hint = (
                    " hidden may have any number of leading dimensions, (..., n_units): "
                    "(T, B, n_units), (samples, n_units), ...; reduce all of them, not a "
                    "fixed number."
                )
            fail(
                f"{what} returned shape {tuple(out.shape)}; it should be (n_units,) = ({n},).{hint}"
            )
        expected = max_activation(hidden).double()
        out = out.detach().double()
        if close(out, expected):
            continue
        for message, wrong in _max_mistakes(hidden):
            if close(out, wrong):
                fail(f"{what}: {message}.")
        fail(f"{what} is not each unit's largest activation: {worst_entry(out, expected)}.")


# ---------------------------------------------------------------- part 3: PCA projection


def _low_rank_activity(shape, n_units, rng, offset):
    basis = torch.linalg.qr(torch.randn(n_units, n_units, generator=rng, dtype=torch.float64))[0]
    scales = torch.tensor([3.0, 2.0, 1.2, 0.5] + [0.1] * (n_units - 4), dtype=torch.float64)
    latent = torch.randn(*shape, n_units, generator=rng, dtype=torch.float64) * scales
    return latent @ basis.T + offset


def _sign_fixed(vt):
    biggest = vt.abs().argmax(dim=1, keepdim=True)
    return vt * vt.gather(1, biggest).sign()


def _pca_mistakes(fit, trajectory, k):
    x = _samples(fit)
    mean = x.mean(0)
    _, sing, vt = torch.linalg.svd(x - mean, full_matrices=False)
    comps = _sign_fixed(vt[:k])
    ratio = sing[:k].pow(2) / sing.pow(2).sum()
    right = (trajectory - mean) @ comps.T
    mistakes = []
    # not centred at all
    _, s0, vt0 = torch.linalg.svd(x, full_matrices=False)
    c0 = _sign_fixed(vt0[:k])
    mistakes.append(
        (
            "subtract the mean of the fitted activity before the SVD (and from the trajectory "
            "before projecting): PCA describes variation around the mean",
            trajectory @ c0.T,
            s0[:k].pow(2) / s0.pow(2).sum(),
        )
    )
    mistakes.append(
        (
            "the axes are right, but subtract the long run's mean from the trajectory before "
            "projecting it",
            trajectory @ comps.T,
            ratio,
        )
    )
    mistakes.append(
        (
            "centre the trajectory with the mean of the long run (the fitted data), not with "
            "its own mean: every trial must land in the same coordinates",
            (trajectory - trajectory.mean(0)) @ comps.T,
            ratio,
        )
    )
    tm = trajectory.mean(0)
    _, st, vtt = torch.linalg.svd(trajectory - tm, full_matrices=False)
    ct = _sign_fixed(vtt[:k])
    mistakes.append(
        (
            "fit the axes on the long run (fit_activity), then project the trajectory onto "
            "them; you fitted them on the trajectory itself",
            (trajectory - tm) @ ct.T,
            st[:k].pow(2) / st.pow(2).sum(),
        )
    )
    mistakes.append(
        (
            "the components are the rows of Vᵀ (torch.linalg.svd returns U, S, Vᵀ): project "
            "onto vt[:k], not onto the columns vt[:, :k]",
            (trajectory - mean) @ _sign_fixed(vt[:, :k].T).T,
            ratio,
        )
    )
    evals, evecs = torch.linalg.eigh(torch.cov((x - mean).T, correction=0))
    asc = _sign_fixed(evecs[:, :k].T)
    mistakes.append(
        (
            "order the components by decreasing variance: torch.linalg.eigh returns the "
            "eigenvalues in ascending order, so you took the least important axes",
            (trajectory - mean) @ asc.T,
            evals[:k] / evals.sum(),
        )
    )
    return right, ratio, mistakes


def _columns_match_up_to_sign(out, right):
    if out.shape != right.shape:
        return False
    for j in range(right.shape[1]):
        if not (close(out[:, j], right[:, j], 1e-5) or close(out[:, j], -right[:, j], 1e-5)):
            return False
    return True


@single_threaded
def check_pca_projection(pca_project, seed: int = 0) -> None:
    """Compare ``pca_project(fit_activity, trajectory, n_components)`` with
    `analysis.fit_pca(...).project(...)` and its explained-variance ratio."""
    rng = make_generator(seed)
    for (t_fit, batch), n_units, t_traj, k in (((40, 6), 8, 15, 2), ((60, 4), 10, 25, 3)):
        offset = torch.randn(n_units, generator=rng, dtype=torch.float64) * 2
        fit = _low_rank_activity((t_fit, batch), n_units, rng, offset)
        trajectory = _low_rank_activity((t_traj,), n_units, rng, offset + 1.0)
        what = (
            f"pca_project(fit_activity, trajectory, n_components={k}) with fit_activity of "
            f"shape {tuple(fit.shape)} and trajectory of shape {tuple(trajectory.shape)}"
        )
        copies = [fit.clone(), trajectory.clone()]
        result = call(pca_project, copies[0], copies[1], k, what=what)
        _unchanged([fit, trajectory], copies, ["fit_activity", "trajectory"], what)
        if not (isinstance(result, tuple | list) and len(result) == 2):
            fail(f"{what} must return the pair (coordinates, explained_variance_ratio).")
        coords = as_tensor(result[0], f"{what}[0]").detach().double()
        ratio = as_tensor(result[1], f"{what}[1]").detach().double()
        pca = fit_pca(fit, k)
        expected = pca.project(trajectory)
        expected_ratio = pca.explained_variance_ratio
        if tuple(coords.shape) != (t_traj, k):
            hint = " Transpose it: one row per time step." if coords.shape == (k, t_traj) else ""
            fail(
                f"{what} returned coordinates of shape {tuple(coords.shape)}; they should be "
                f"(T, n_components) = ({t_traj}, {k}).{hint}"
            )
        if tuple(ratio.shape) != (k,):
            fail(
                f"{what} returned explained_variance_ratio of shape {tuple(ratio.shape)}; it "
                f"should be (n_components,) = ({k},)."
            )
        if close(coords, expected, 1e-5) and close(ratio, expected_ratio, 1e-5):
            continue
        right, _, mistakes = _pca_mistakes(fit, trajectory, k)
        for message, wrong_coords, _ratio in mistakes:
            if close(coords, wrong_coords, 1e-5) or (
                _columns_match_up_to_sign(coords, wrong_coords)
                and not _columns_match_up_to_sign(coords, right)
            ):
                fail(f"{what}: {message}.")
        if _columns_match_up_to_sign(coords, expected) and not close(coords, expected, 1e-5):
            flipped = [j for j in range(k) if not close(coords[:, j], expected[:, j], 1e-5)]
            fail(
                f"{what}: the coordinates on component(s) {flipped} have the wrong sign. An SVD "
                "axis is only defined up to its sign: flip each component so that its "
                "largest-magnitude loading is positive, as the instructions say."
            )
        if close(coords, expected, 1e-5):
            x = _samples(fit)
            sing = torch.linalg.svd(x - x.mean(0), full_matrices=False)[1]
            if close(ratio, sing[:k] / sing.sum(), 1e-5):
                fail(
                    f"{what}: the variance along a component is the square of its singular "
                    "value: ratio = S[:k]² / sum(S²)."
                )
            if close(ratio, sing[:k].pow(2) / sing[:k].pow(2).sum(), 1e-5):
                fail(
                    f"{what}: the explained-variance ratio is each component's share of the "
                    "total variance (all components), not of the first n_components only."
                )
            fail(
                f"{what}: the coordinates are right but the explained-variance ratio is not: "
                f"{worst_entry(ratio, expected_ratio)}."
            )
        fail(
            f"{what}: the coordinates differ from the projection of the centred trajectory "
            f"onto the fitted components: {worst_entry(coords, expected)}."
        )

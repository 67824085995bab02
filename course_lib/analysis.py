"""Measurements of what a trained network does.

Accuracy is measured per *trial*, at the decision period: neurogym targets are 0
("fixate") except while the network must answer, so the steps with a non-zero target
make up each trial's decision period. A trial counts as correct when the network's choice
at the last step of that period is the target. Scoring every time step instead would
reward a network that simply fixates all the time (most steps are fixation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from course_lib._validate import check_shape


def decision_periods(targets: torch.Tensor) -> list[tuple[int, int, int]]:
    """Complete decision periods in a ``(T, B)`` target tensor.

    Returns ``(column, first_step, last_step)`` for every run of non-zero targets that
    ends inside the window (a run cut by the end of the window is not a whole trial).
    """
    check_shape("targets", targets, (-1, -1))
    deciding = (targets != 0).cpu()
    steps = deciding.shape[0]
    periods = []
    for column in range(deciding.shape[1]):
        d = deciding[:, column].tolist()
        t = 0
        while t < steps:
            if d[t]:
                start = t
                while t + 1 < steps and d[t + 1]:
                    t += 1
                if t + 1 < steps:  # the period ended inside the window
                    periods.append((column, start, t))
            t += 1
    return periods


def decision_accuracy(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of complete trials answered correctly at the end of the decision period.

    ``outputs``: ``(T, B, n_actions)`` scores; ``targets``: ``(T, B)`` action indices.
    """
    check_shape("outputs", outputs, (targets.shape[0], targets.shape[1], -1))
    periods = decision_periods(targets)
    if not periods:
        raise ValueError(
            "targets contain no complete decision period (non-zero run ending inside the "
            "window): use a longer seq_len"
        )
    choices = outputs.argmax(dim=-1)
    correct = [choices[last, col] == targets[last, col] for col, _, last in periods]
    return float(torch.stack(correct).float().mean())


# --- What single units encode -------------------------------------------------------------


def _as_samples(name: str, activity: torch.Tensor) -> torch.Tensor:
    """``(..., n_units)`` -> ``(n_samples, n_units)``: every leading index is a sample."""
    if activity.dim() < 2 or activity.shape[:-1].numel() == 0:
        raise ValueError(
            f"{name} must be (..., n_units) with at least one sample, e.g. (T, B, n_units), "
            f"got shape {tuple(activity.shape)}"
        )
    return activity.detach().reshape(-1, activity.shape[-1]).double()


def selectivity_index(activity_a: torch.Tensor, activity_b: torch.Tensor) -> torch.Tensor:
    """Per-unit selectivity between two conditions, ``s = 2(μ_a − μ_b) / sqrt(σ_a² + σ_b²)``.

    ``activity_a`` and ``activity_b`` are ``(..., n_units)``: hidden activity collected in
    condition a and in condition b (e.g. time steps with and without a stimulus, or
    accept and reject trials); all leading dimensions are pooled as samples, so the two
    conditions may have different numbers of samples. ``s`` is a d'-like distance
    between the two distributions of each unit's activity: 0 means the unit does not
    tell them apart, and the sign says which condition drives it more.

    Variances are population variances (divide by n), so a condition with one sample has
    variance 0 rather than NaN. **Zero total variance** (the unit is constant within each
    condition): ``s = 0`` if the two constants are equal, e.g. a unit that never
    activates (no information); ``s = ±inf`` if they differ, since the unit then
    separates the conditions perfectly. Never NaN. Returns ``(n_units,)`` float64.
    """
    a = _as_samples("activity_a", activity_a)
    b = _as_samples("activity_b", activity_b)
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            "activity_a and activity_b must have the same number of units (last dimension), "
            f"got {a.shape[1]} and {b.shape[1]}"
        )
    difference = 2 * (a.mean(dim=0) - b.mean(dim=0))
    spread = (a.var(dim=0, correction=0) + b.var(dim=0, correction=0)).sqrt()
    # 0/0 -> 0 (constant and equal); x/0 -> ±inf by IEEE division (perfect separation)
    return torch.where(difference == 0, 0.0, difference / spread)


def max_activation(hidden: torch.Tensor) -> torch.Tensor:
    """Each unit's largest activation over all time steps and trials: ``(..., n) -> (n,)``.

    A unit whose maximum is 0 (ReLU networks) never activated: drop it before comparing
    selectivity across units.
    """
    return _as_samples("hidden", hidden).max(dim=0).values.to(hidden.dtype)


# --- Population trajectories -----------------------------------------------------------------


@dataclass
class PCA:
    """A fitted PCA: ``components`` ``(k, n_units)`` (orthonormal rows, most variance first),
    the ``mean`` ``(n_units,)`` removed before projecting, and ``explained_variance_ratio``
    ``(k,)``: each component's share of the *total* variance of the fitted activity."""

    components: torch.Tensor
    mean: torch.Tensor
    explained_variance_ratio: torch.Tensor

    def project(self, activity: torch.Tensor) -> torch.Tensor:
        """``(..., n_units) -> (..., k)``: coordinates of activity on the components,
        e.g. one trial's ``(T, n_units)`` trajectory."""
        if activity.shape[-1] != self.mean.shape[0]:
            raise ValueError(
                f"activity must be (..., {self.mean.shape[0]}) like the fitted data, "
                f"got shape {tuple(activity.shape)}"
            )
        centred = activity.detach().to(self.mean.dtype) - self.mean
        return centred @ self.components.T


def fit_pca(hidden: torch.Tensor, n_components: int) -> PCA:
    """PCA of hidden activity ``(..., n_units)`` (e.g. a long run ``(T, B, n)``), by SVD.

    Centre the samples, ``X - mean = U Σ Vᵀ``: the rows of ``Vᵀ`` are the principal axes
    and ``Σ² / Σ Σ²`` the explained-variance ratios. Each axis' sign is fixed so that its
    largest-magnitude loading is positive (the same data give the same picture). Fit once
    on a long run, then `PCA.project` single trials into the same axes.
    """
    x = _as_samples("hidden", hidden)
    n_samples, n_units = x.shape
    if not (isinstance(n_components, int) and 1 <= n_components <= min(n_samples, n_units)):
        raise ValueError(
            f"n_components must be an integer in [1, min(n_samples, n_units)] = "
            f"[1, {min(n_samples, n_units)}], got {n_components!r}"
        )
    mean = x.mean(dim=0)
    _, singular, vt = torch.linalg.svd(x - mean, full_matrices=False)
    components = vt[:n_components]
    biggest = components.abs().argmax(dim=1, keepdim=True)
    components = components * components.gather(1, biggest).sign()
    variance = singular.pow(2)
    total = variance.sum()
    ratio = variance[:n_components] / total if total > 0 else torch.zeros(n_components)
    return PCA(components=components, mean=mean, explained_variance_ratio=ratio.double())


def summed_evidence_accuracy(batches) -> float:
    """Accuracy of the observer that sums ``stimulus 1 - stimulus 2`` over each whole stimulus.

    For ``PerceptualDecisionMaking-v0`` (inputs: fixation, stimulus 1, stimulus 2; actions:
    fixate, choose 1, choose 2). The two stimuli carry independent noise of equal size, so
    the sign of the summed difference is the best guess from the trial's evidence. A trial's
    stimulus is the run of steps with non-zero stimulus inputs just before its decision
    period; an exact tie counts as half a correct trial.
    """
    correct = []
    for batch in batches:
        stimuli = batch.inputs[:, :, 1:]
        for column, first, last in decision_periods(batch.targets):
            start = first
            while start > 0 and bool(stimuli[start - 1, column].ne(0).any()):
                start -= 1
            stimulus = stimuli[start:first, column]
            evidence = float((stimulus[:, 0] - stimulus[:, 1]).sum())
            answer = int(batch.targets[last, column])
            correct.append(0.5 if evidence == 0 else float((evidence > 0) == (answer == 1)))
    if not correct:
        raise ValueError("the batches hold no complete trial: use a longer seq_len")
    return sum(correct) / len(correct)
